//! The sink driver: one run, or one epoch of a stream, through every writer.
//!
//! Batch runs and stream epochs both go through [`SinkRun`]: the writers' sessions begin with the
//! first non-empty batch (a run without rows writes nothing), every batch goes to every session,
//! then the sessions commit in the writers' order. [`FeatureSink::write_all`] takes a whole
//! stream of batches, the shape of DataFusion's `DataSink::write_all`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use futures::{Stream, StreamExt};
use tracing::info;

use crate::connector::{WriteContext, WriteMetrics, Writer, WriterSession};
use crate::error::Result;
use crate::failpoint::failpoint;

/// The writers of a pipeline and what they know about its rows.
#[derive(Debug, Clone)]
pub struct FeatureSink {
    writers: Vec<Arc<dyn Writer>>,
    wctx: WriteContext,
}

impl FeatureSink {
    /// A sink over `writers`, for rows described by `wctx`.
    pub fn new(writers: Vec<Arc<dyn Writer>>, wctx: WriteContext) -> Self {
        Self { writers, wctx }
    }

    /// The writers, in order.
    pub fn writers(&self) -> &[Arc<dyn Writer>] {
        &self.writers
    }

    /// What the writers know about the rows.
    pub fn write_context(&self) -> &WriteContext {
        &self.wctx
    }

    /// Starts one run (`epoch: None`) or one epoch of a stream.
    pub fn run(&self, epoch: Option<u64>) -> SinkRun<'_> {
        SinkRun {
            sink: self,
            epoch,
            sessions: None,
        }
    }

    /// Writes every batch of `data` to every writer and commits: `None` when `data` had no rows
    /// (no session began, nothing was written).
    pub async fn write_all(
        &self,
        data: impl Stream<Item = Result<RecordBatch>>,
        epoch: Option<u64>,
    ) -> Result<Option<Vec<(String, WriteMetrics)>>> {
        let mut run = self.run(epoch);
        let mut data = std::pin::pin!(data);
        while let Some(batch) = data.next().await {
            run.write(batch?).await?;
        }
        run.commit().await
    }
}

/// One run (or epoch) in progress: see [`FeatureSink::run`].
pub struct SinkRun<'a> {
    sink: &'a FeatureSink,
    epoch: Option<u64>,
    sessions: Option<Vec<Box<dyn WriterSession>>>,
}

impl std::fmt::Debug for SinkRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkRun")
            .field("epoch", &self.epoch)
            .field("begun", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

impl SinkRun<'_> {
    /// Hands a batch to every writer (their sessions begin with the first non-empty batch).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let sessions = match &mut self.sessions {
            Some(s) => s,
            None => {
                let mut s = Vec::with_capacity(self.sink.writers.len());
                for w in &self.sink.writers {
                    s.push(w.begin(&self.sink.wctx, self.epoch).await?);
                }
                self.sessions.insert(s)
            }
        };
        for s in sessions.iter_mut() {
            s.write(batch.clone()).await?;
        }
        Ok(())
    }

    /// Commits every session in the writers' order: per writer, its name and metrics; `None`
    /// when no batch had rows (nothing began, nothing was written).
    pub async fn commit(self) -> Result<Option<Vec<(String, WriteMetrics)>>> {
        let Some(sessions) = self.sessions else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(sessions.len());
        for (i, (s, w)) in sessions.into_iter().zip(&self.sink.writers).enumerate() {
            let m = s.commit().await?;
            match self.epoch {
                // a crash between two writers' commits (tests of recovery)
                Some(epoch) if i == 0 => failpoint("during_writers", epoch),
                Some(_) => {}
                None => info!(writer = %w.name(), rows = m.rows_written, "committed"),
            }
            out.push((w.name(), m));
        }
        Ok(Some(out))
    }
}
