//! Writers: one session per run (or per epoch of a stream); commit makes the write visible.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use borboleta_core::FeatureSetSpec;
use datafusion::prelude::SessionContext;

use super::description::ConnectorDescription;
use crate::error::Result;

/// What every writer knows about the rows it gets.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The feature set.
    pub feature_set: Arc<FeatureSetSpec>,
    /// Schema of the feature rows: keys, `timestamp`, features.
    pub schema: SchemaRef,
    /// Key columns.
    pub keys: Vec<String>,
    /// Whether the rows come from a stream (one session per epoch).
    pub streaming: bool,
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
    /// Rows a capped streaming debug table evicted (its oldest).
    pub evicted: u64,
}

/// A destination for feature rows (Butterfree's `Writer`).
///
/// For each run, [`Writer::begin`] is called once, the session gets every non-empty batch, and
/// [`WriterSession::commit`] makes the write visible. A run with no rows begins no session.
#[async_trait]
pub trait Writer: Debug + Send + Sync {
    /// Display name for logs and summaries.
    fn name(&self) -> String;
    /// What `explain` and `describe` say about the writer.
    fn describe(&self) -> ConnectorDescription {
        ConnectorDescription {
            kind: self.name(),
            location: String::new(),
            detail: self.name(),
        }
    }
    /// Called once when the pipeline is built, with the schema of the rows. A debug writer
    /// registers its table in `ctx` here. A check that fails here fails before any data moves.
    fn prepare(&self, _ctx: &SessionContext, _wctx: &WriteContext) -> Result<()> {
        Ok(())
    }
    /// Streams: called once before the first epoch with the stream's id (the checkpoint's, or
    /// a new one without a checkpoint) and the last committed epoch, so the writer can drop
    /// what this stream's later, uncommitted epochs left behind (they are replayed).
    async fn recover(&self, _wctx: &WriteContext, _stream_id: &str, _last_committed: Option<u64>) -> Result<()> {
        Ok(())
    }
    /// Streams: the last epoch (at most `processed`, the last one written) whose rows are
    /// durable. A writer that gathers epochs (the historical writer's commit interval) lags;
    /// the checkpoint commits an epoch only when every writer has made it durable.
    fn durable_through(&self, processed: u64) -> Option<u64> {
        Some(processed)
    }
    /// Streams: makes the gathered rows durable when due, or now with `force` (on stop).
    async fn flush(&self, _force: bool) -> Result<()> {
        Ok(())
    }
    /// Starts writing one run, or one epoch of a stream (`epoch`: its id). Writing an epoch
    /// again (a replay after a crash) must leave the same state as writing it once.
    async fn begin(&self, wctx: &WriteContext, epoch: Option<u64>) -> Result<Box<dyn WriterSession>>;
}

/// One run of a [`Writer`].
#[async_trait]
pub trait WriterSession: Send {
    /// Takes a batch of feature rows.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Makes everything written visible, atomically where the backend allows.
    async fn commit(self: Box<Self>) -> Result<WriteMetrics>;
}

/// Rows that are not written, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Rows with a null event time.
    pub null_timestamp: u64,
    /// Rows whose event time is too far in the future.
    pub future_timestamp: u64,
}
