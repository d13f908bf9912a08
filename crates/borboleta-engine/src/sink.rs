//! The writer contract, and the debug-mode (memory) writers.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use borboleta_core::FeatureSetSpec;
use borboleta_core::naming::{PARTITION_COLUMNS, TIMESTAMP_COLUMN};
use chrono::Datelike;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::latest::{LatestPerKey, Rejected};
use crate::memory::MemoryTable;

/// What every writer knows about the rows it gets.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The feature set.
    pub feature_set: Arc<FeatureSetSpec>,
    /// Schema of the feature rows: keys, `timestamp`, features.
    pub schema: SchemaRef,
    /// Key columns.
    pub keys: Vec<String>,
}

/// What a writer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteMetrics {
    /// Rows written (for online writers: keys upserted).
    pub rows_written: u64,
    /// Rows not written because of their event time.
    pub rejected: Rejected,
    /// One line for the run summary (where, what).
    pub detail: String,
}

/// A destination for feature rows (Butterfree's `Writer`).
///
/// For each run, [`Writer::begin`] is called once, the session gets every non-empty batch, and
/// [`WriterSession::commit`] makes the write visible. A run with no rows begins no session.
#[async_trait]
pub trait Writer: Debug + Send + Sync {
    /// Display name for logs and summaries.
    fn name(&self) -> String;
    /// Called once when the pipeline is built, with the schema of the rows. A debug writer
    /// registers its table in `ctx` here. A check that fails here fails before any data moves.
    fn prepare(&self, _ctx: &SessionContext, _wctx: &WriteContext) -> Result<()> {
        Ok(())
    }
    /// Starts writing one run.
    async fn begin(&self, wctx: &WriteContext) -> Result<Box<dyn WriterSession>>;
}

/// One run of a [`Writer`].
#[async_trait]
pub trait WriterSession: Send {
    /// Takes a batch of feature rows.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Makes everything written visible, atomically where the backend allows.
    async fn commit(self: Box<Self>) -> Result<WriteMetrics>;
}

/// Adds `year`, `month`, `day` (UTC calendar date of `timestamp`) to a batch.
pub fn with_partition_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    let idx = batch.schema().index_of(TIMESTAMP_COLUMN)?;
    let micros = crate::latest::event_micros(batch.column(idx))?;
    let n = micros.len();
    let (mut y, mut m, mut d) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for v in micros.iter() {
        match v.and_then(chrono::DateTime::from_timestamp_micros) {
            Some(t) => {
                y.push(Some(t.year()));
                m.push(Some(t.month() as i32));
                d.push(Some(t.day() as i32));
            }
            None => {
                y.push(None);
                m.push(None);
                d.push(None);
            }
        }
    }
    let schema = partitioned_schema(&batch.schema());
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols.push(Arc::new(Int32Array::from(y)));
    cols.push(Arc::new(Int32Array::from(m)));
    cols.push(Arc::new(Int32Array::from(d)));
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// `schema` + `year`, `month`, `day` (int).
pub fn partitioned_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for p in PARTITION_COLUMNS {
        fields.push(Field::new(p, DataType::Int32, true));
    }
    Arc::new(Schema::new(fields))
}

/// What a memory writer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMode {
    /// Every row, with `year`/`month`/`day` (historical semantics).
    Historical,
    /// The latest row per key (online semantics).
    LatestPerKey,
}

/// Debug mode: writes to an in-memory table registered as `name` in the pipeline's session.
#[derive(Debug)]
pub struct MemoryWriter {
    name: String,
    mode: MemoryMode,
    table: std::sync::OnceLock<Arc<MemoryTable>>,
}

impl MemoryWriter {
    /// A memory writer whose table is `table_name`.
    pub fn new(table_name: impl Into<String>, mode: MemoryMode) -> Self {
        Self {
            name: table_name.into(),
            mode,
            table: std::sync::OnceLock::new(),
        }
    }
    /// The table, once prepared.
    pub fn table(&self) -> Option<Arc<MemoryTable>> {
        self.table.get().cloned()
    }
}

#[async_trait]
impl Writer for MemoryWriter {
    fn name(&self) -> String {
        format!("debug table {}", self.name)
    }
    fn prepare(&self, ctx: &SessionContext, wctx: &WriteContext) -> Result<()> {
        let schema = match self.mode {
            MemoryMode::Historical => partitioned_schema(&wctx.schema),
            MemoryMode::LatestPerKey => Arc::clone(&wctx.schema),
        };
        let table = Arc::new(MemoryTable::new(schema));
        ctx.register_table(self.name.as_str(), table.clone())?;
        self.table
            .set(table)
            .map_err(|_| Error::Internal("memory writer prepared twice".into()))?;
        Ok(())
    }
    async fn begin(&self, wctx: &WriteContext) -> Result<Box<dyn WriterSession>> {
        let table = self
            .table()
            .ok_or_else(|| Error::Internal("memory writer not prepared".into()))?;
        let latest = match self.mode {
            MemoryMode::LatestPerKey => Some(LatestPerKey::new(
                Arc::clone(&wctx.schema),
                &wctx.keys,
                TIMESTAMP_COLUMN,
                None,
            )?),
            MemoryMode::Historical => None,
        };
        Ok(Box::new(MemorySession {
            table,
            name: self.name.clone(),
            rows: Vec::new(),
            latest,
            rejected: Rejected::default(),
        }))
    }
}

struct MemorySession {
    table: Arc<MemoryTable>,
    name: String,
    rows: Vec<RecordBatch>,
    latest: Option<LatestPerKey>,
    rejected: Rejected,
}

#[async_trait]
impl WriterSession for MemorySession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match &mut self.latest {
            Some(l) => l.push(batch),
            None => {
                // Like the historical writer: a row without a timestamp has no partition.
                let ts = batch.column(batch.schema().index_of(TIMESTAMP_COLUMN)?);
                let batch = if ts.null_count() > 0 {
                    self.rejected.null_timestamp += ts.null_count() as u64;
                    arrow::compute::filter_record_batch(&batch, &arrow::compute::is_not_null(ts)?)?
                } else {
                    batch
                };
                self.rows.push(with_partition_columns(&batch)?);
                Ok(())
            }
        }
    }
    async fn commit(self: Box<Self>) -> Result<WriteMetrics> {
        let (batches, rejected) = match self.latest {
            Some(l) => {
                let rejected = l.rejected;
                (vec![l.finish()?.batch], rejected)
            }
            None => (self.rows, self.rejected),
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        self.table.publish(batches);
        Ok(WriteMetrics {
            rows_written: rows as u64,
            rejected,
            detail: format!("table {}", self.name),
        })
    }
}
