//! Debug mode: the memory writers, whose tables are queryable with SQL while a stream runs.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use async_trait::async_trait;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use datafusion::prelude::SessionContext;

use super::latest::LatestPerKey;
use super::partition::{partitioned_schema, with_partition_columns};
use crate::connector::{ConnectorDescription, Rejected, WriteContext, WriteMetrics, Writer, WriterSession};
use crate::error::{Error, Result};
use crate::memory::MemoryTable;

/// What a memory writer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMode {
    /// Every row, with `year`/`month`/`day` (historical semantics).
    Historical,
    /// The latest row per key (online semantics).
    LatestPerKey,
    /// Every row as it comes (Butterfree's online debug table on a stream).
    Append,
}

/// Debug mode: writes to an in-memory table registered as `name` in the pipeline's session.
///
/// In a batch run each run replaces the table. On a stream each epoch adds to it (the latest
/// row per key is merged with the earlier ones), and it keeps at most `max_rows` rows: the
/// oldest are evicted and counted.
#[derive(Debug)]
pub struct MemoryWriter {
    name: String,
    mode: MemoryMode,
    max_rows: Option<usize>,
    evicted: Arc<std::sync::atomic::AtomicU64>,
    table: std::sync::OnceLock<Arc<MemoryTable>>,
    description: Option<ConnectorDescription>,
}

impl MemoryWriter {
    /// A memory writer whose table is `table_name`.
    pub fn new(table_name: impl Into<String>, mode: MemoryMode) -> Self {
        Self {
            name: table_name.into(),
            mode,
            max_rows: None,
            evicted: Arc::default(),
            table: std::sync::OnceLock::new(),
            description: None,
        }
    }
    /// Keeps at most `max_rows` rows on a stream.
    pub fn with_max_rows(mut self, max_rows: usize) -> Self {
        self.max_rows = Some(max_rows);
        self
    }
    /// Describes itself as the writer it stands in for (debug mode of a spec's writer).
    pub fn with_description(mut self, description: ConnectorDescription) -> Self {
        self.description = Some(description);
        self
    }
    /// Rows evicted so far by the row cap.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(std::sync::atomic::Ordering::Relaxed)
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
    fn describe(&self) -> ConnectorDescription {
        self.description.clone().unwrap_or_else(|| ConnectorDescription {
            kind: "Debug Table Writer".into(),
            location: self.name.clone(),
            detail: self.name(),
        })
    }
    fn prepare(&self, ctx: &SessionContext, wctx: &WriteContext) -> Result<()> {
        let schema = match self.mode {
            MemoryMode::Historical => partitioned_schema(&wctx.schema),
            MemoryMode::LatestPerKey | MemoryMode::Append => Arc::clone(&wctx.schema),
        };
        let table = Arc::new(MemoryTable::new(schema));
        ctx.register_table(self.name.as_str(), table.clone())?;
        self.table
            .set(table)
            .map_err(|_| Error::Internal("memory writer prepared twice".into()))?;
        Ok(())
    }
    async fn begin(&self, wctx: &WriteContext, epoch: Option<u64>) -> Result<Box<dyn WriterSession>> {
        let table = self
            .table()
            .ok_or_else(|| Error::Internal("memory writer not prepared".into()))?;
        let mut latest = match self.mode {
            MemoryMode::LatestPerKey => Some(LatestPerKey::new(
                Arc::clone(&wctx.schema),
                &wctx.keys,
                TIMESTAMP_COLUMN,
                None,
            )?),
            MemoryMode::Historical | MemoryMode::Append => None,
        };
        // On a stream, an epoch adds to what earlier epochs wrote.
        let mut rows = Vec::new();
        if epoch.is_some() {
            let prior = table.snapshot();
            match &mut latest {
                Some(l) => {
                    for b in prior.iter() {
                        l.push(b.clone())?;
                    }
                }
                None => rows.extend(prior.iter().cloned()),
            }
        }
        Ok(Box::new(MemorySession {
            table,
            name: self.name.clone(),
            mode: self.mode,
            rows,
            latest,
            rejected: Rejected::default(),
            written: 0,
            max_rows: if epoch.is_some() { self.max_rows } else { None },
            evicted: Arc::clone(&self.evicted),
        }))
    }
}

struct MemorySession {
    table: Arc<MemoryTable>,
    name: String,
    mode: MemoryMode,
    rows: Vec<RecordBatch>,
    latest: Option<LatestPerKey>,
    rejected: Rejected,
    written: u64,
    max_rows: Option<usize>,
    evicted: Arc<std::sync::atomic::AtomicU64>,
}

/// Drops the oldest rows of `batches` beyond `max_rows`; returns how many.
fn evict_oldest(batches: &mut Vec<RecordBatch>, max_rows: usize) -> u64 {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut excess = total.saturating_sub(max_rows);
    let evicted = excess as u64;
    while excess > 0 && !batches.is_empty() {
        let n = batches[0].num_rows();
        if n <= excess {
            batches.remove(0);
            excess -= n;
        } else {
            batches[0] = batches[0].slice(excess, n - excess);
            excess = 0;
        }
    }
    evicted
}

#[async_trait]
impl WriterSession for MemorySession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.written += batch.num_rows() as u64;
        match &mut self.latest {
            Some(l) => l.push(batch),
            None if self.mode == MemoryMode::Append => {
                self.rows.push(batch);
                Ok(())
            }
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
        let (mut batches, rejected) = match self.latest {
            Some(l) => {
                let rejected = l.rejected;
                (vec![l.finish()?.batch], rejected)
            }
            None => (self.rows, self.rejected),
        };
        let mut evicted = 0;
        if let Some(max) = self.max_rows {
            evicted = evict_oldest(&mut batches, max);
            self.evicted.fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        self.table.publish(batches);
        let rejected_rows = rejected.null_timestamp + rejected.future_timestamp;
        Ok(WriteMetrics {
            // a batch run: the table's rows; an epoch: the rows it added
            rows_written: if self.max_rows.is_some() || self.mode == MemoryMode::Append {
                self.written - rejected_rows
            } else {
                rows as u64
            },
            rejected,
            detail: format!("table {} ({rows} rows)", self.name),
            evicted,
        })
    }
}
