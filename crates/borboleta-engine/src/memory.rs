//! `MemoryTable`: the debug-mode sink's table, queryable with SQL. Each commit publishes an
//! immutable snapshot; a query pins one snapshot and never sees half a write.

use std::sync::{Arc, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// An in-memory table whose content is replaced atomically by [`MemoryTable::publish`].
#[derive(Debug)]
pub struct MemoryTable {
    schema: SchemaRef,
    snapshot: RwLock<Arc<Vec<RecordBatch>>>,
}

impl MemoryTable {
    /// An empty table.
    pub fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            snapshot: RwLock::new(Arc::new(Vec::new())),
        }
    }
    /// Replaces the content.
    pub fn publish(&self, batches: Vec<RecordBatch>) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(batches);
    }
    /// The current content.
    pub fn snapshot(&self) -> Arc<Vec<RecordBatch>> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }
    /// Rows in the current snapshot.
    pub fn num_rows(&self) -> usize {
        self.snapshot().iter().map(RecordBatch::num_rows).sum()
    }
}

#[async_trait]
impl TableProvider for MemoryTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Temporary
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let snapshot = self.snapshot();
        let exec = MemorySourceConfig::try_new_exec(&[snapshot.as_ref().clone()], self.schema(), projection.cloned())?;
        Ok(exec)
    }
}
