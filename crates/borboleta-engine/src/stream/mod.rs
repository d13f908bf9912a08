//! The micro-batch streaming runtime.
//!
//! Each epoch: plan the input range of every streaming reader (bounded by max rows) and record
//! it (`offsets/N`), read exactly that range, publish it as the reader's table, run the same
//! feature-set plan, hand the rows to every writer with the epoch id, write the dead-letter
//! output of the epoch, then record `commits/N`. A restart replays an epoch that has offsets and
//! no commit over exactly its recorded range. See [`crate::stream::checkpoint`].
//!
//! Over 600 lines: the epoch protocol (plan, record, read, write, dead-letter, commit, compact, replay) is one state machine.

pub mod checkpoint;
mod status;

pub use status::{EpochCallback, EpochMetrics, StreamStatus};

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, is_not_null, not};
use borboleta_core::OnBadRecord;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use chrono::{DateTime, Utc};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::connector::{BadRecord, StreamChunk};
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::memory::MemoryTable;
use crate::pipeline::FeatureSetPipeline;
use crate::pipeline::StreamParts;
use crate::sink::latest::{batch_to_json_rows, event_micros};
use crate::stream::checkpoint::{Checkpoint, CommitRecord, CompactRecord, OffsetsRecord, write_atomic};

/// How a streaming run behaves.
#[derive(Clone)]
pub struct StreamOptions {
    /// The checkpoint folder (`<root>/<entity>/<feature set>`); `None` keeps positions in memory.
    pub checkpoint_dir: Option<PathBuf>,
    /// Where dead-letter files go (`epoch=<N>.jsonl`).
    pub dead_letter_dir: PathBuf,
    /// Process what is there, then stop.
    pub available_now: bool,
    /// Time between the starts of two epochs (zero: as soon as data is there).
    pub processing_time: Duration,
    /// Most rows per epoch (a file is never split).
    pub max_rows_per_batch: Option<u64>,
    /// Reload static readers this often.
    pub static_refresh: Option<Duration>,
    /// Dead-letter or fail on a bad record.
    pub on_bad_record: OnBadRecord,
    /// Feature rows whose event time is further ahead of the clock are dead-lettered.
    pub max_future_skew: Duration,
    /// Called after each committed epoch.
    pub on_epoch: Option<EpochCallback>,
}

impl Debug for StreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOptions")
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("dead_letter_dir", &self.dead_letter_dir)
            .field("available_now", &self.available_now)
            .field("processing_time", &self.processing_time)
            .field("max_rows_per_batch", &self.max_rows_per_batch)
            .finish_non_exhaustive()
    }
}

/// A running streaming pipeline. Dropping it aborts the stream (the current epoch is
/// abandoned whole: it is replayed on restart); [`StreamHandle::stop`] stops gracefully.
#[derive(Debug)]
pub struct StreamHandle {
    pipeline: Arc<FeatureSetPipeline>,
    stop: watch::Sender<bool>,
    status: Arc<Mutex<StreamStatus>>,
    task: Option<tokio::task::JoinHandle<Result<StreamStatus>>>,
}

impl StreamHandle {
    /// Asks the stream to stop after the current epoch.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
    /// Counters so far.
    pub fn status(&self) -> StreamStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// A function that reads the counters, for another task (e.g. a metrics endpoint).
    pub fn status_source(&self) -> impl Fn() -> StreamStatus + Send + Sync + 'static {
        let status = Arc::clone(&self.status);
        move || status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Runs SQL in the pipeline's session while the stream runs (debug tables included; each
    /// query sees whole epochs only).
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        self.pipeline.sql(query).await
    }
    /// The pipeline.
    pub fn pipeline(&self) -> &Arc<FeatureSetPipeline> {
        &self.pipeline
    }
    /// Whether the loop ended (stopped, finished or failed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
    /// Waits until the stream ends (with `available_now`, or after [`Self::stop`]).
    pub async fn join(mut self) -> Result<StreamStatus> {
        match self.task.take() {
            Some(t) => t.await.map_err(|e| Error::Internal(format!("stream task: {e}")))?,
            None => Ok(self.status()),
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Starts the micro-batch loop of a streaming pipeline (one with a `stream: true` reader).
/// The checkpoint is opened and restored, and the static readers loaded, before this
/// returns; the loop then runs on its own task, owned by the handle.
pub async fn start(pipeline: &Arc<FeatureSetPipeline>, opts: StreamOptions) -> Result<StreamHandle> {
    let parts = pipeline
        .stream_parts()
        .ok_or_else(|| Error::spec("readers", "the pipeline has no streaming reader (`stream: true`)"))?;
    let df = pipeline.plan_stream().await?;
    let ckpt = match &opts.checkpoint_dir {
        Some(dir) => Some(Checkpoint::open(dir, &pipeline.fingerprint())?),
        None => None,
    };
    let mut pending = Vec::new();
    let mut next_epoch = 0;
    let mut last_committed = None;
    if let Some(ck) = &ckpt {
        let state = ck.state()?;
        if let Some(c) = &state.compact {
            for (r, _) in &parts.streams {
                if let Some(p) = c.positions.get(r.id()) {
                    r.restore(p)?;
                }
            }
        }
        for (o, _) in &state.epochs {
            for (r, _) in &parts.streams {
                if let Some(range) = o.ranges.get(r.id()) {
                    r.advance(range)?;
                }
            }
        }
        pending = state.pending();
        next_epoch = state.next_epoch();
        last_committed = state.last_committed();
        info!(
            checkpoint = %ck.dir().display(),
            last_committed = ?last_committed,
            replay = ?pending.iter().map(|p| p.epoch).collect::<Vec<_>>(),
            "checkpoint restored"
        );
    }
    let stream_id = match &ckpt {
        Some(ck) => ck.id()?,
        None => crate::stream::checkpoint::new_stream_id(),
    };
    for w in pipeline.writers() {
        w.recover(pipeline.write_context(), &stream_id, last_committed).await?;
    }
    for (raw, table) in &parts.statics {
        load_static(pipeline.session(), raw, table).await?;
    }
    let (stop, stop_rx) = watch::channel(false);
    let status = Arc::new(Mutex::new(StreamStatus {
        last_committed,
        last_epoch_written: last_committed,
        running: true,
        ..Default::default()
    }));
    let mut lp = StreamLoop {
        p: Arc::clone(pipeline),
        df,
        parts,
        ckpt,
        opts,
        status: Arc::clone(&status),
        stop: stop_rx,
        pending: pending.into(),
        next_epoch,
        committed: last_committed,
        uncommitted: BTreeMap::new(),
        in_flight: None,
        stream_id,
        last_compact: last_committed.unwrap_or(0),
        last_refresh: Instant::now(),
    };
    let task = tokio::spawn(async move {
        let r = lp.run().await;
        lp.status.lock().unwrap_or_else(|e| e.into_inner()).running = false;
        r.map(|()| lp.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    });
    Ok(StreamHandle {
        pipeline: Arc::clone(pipeline),
        stop,
        status,
        task: Some(task),
    })
}

async fn load_static(
    ctx: &SessionContext,
    raw: &Arc<dyn datafusion::catalog::TableProvider>,
    table: &MemoryTable,
) -> Result<()> {
    let batches = ctx.read_table(Arc::clone(raw))?.collect().await?;
    table.publish(batches);
    Ok(())
}

struct StreamLoop {
    p: Arc<FeatureSetPipeline>,
    df: DataFrame,
    parts: StreamParts,
    ckpt: Option<Checkpoint>,
    opts: StreamOptions,
    status: Arc<Mutex<StreamStatus>>,
    stop: watch::Receiver<bool>,
    pending: std::collections::VecDeque<OffsetsRecord>,
    next_epoch: u64,
    /// The last epoch recorded in `commits/`.
    committed: Option<u64>,
    /// Epochs written but not yet durable in every writer: epoch → (feature rows, its range).
    uncommitted: BTreeMap<u64, (u64, OffsetsRecord)>,
    /// The epoch being run.
    in_flight: Option<OffsetsRecord>,
    stream_id: String,
    last_compact: u64,
    last_refresh: Instant,
}

/// Epochs between two compactions of the checkpoint.
const COMPACT_EVERY: u64 = 10;

impl StreamLoop {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn run(&mut self) -> Result<()> {
        info!("the duplicate-row filter is off on streams (as in Butterfree)");
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.step().await {
                Ok(true) => backoff = Duration::from_secs(1),
                Ok(false) => return Ok(()),
                Err(e) if matches!(e, Error::External { retryable: true, .. }) && !self.stopping() => {
                    warn!(
                        "{e}; retrying in {}s (uncommitted epochs are replayed)",
                        backoff.as_secs()
                    );
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    self.replay_uncommitted().await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After a failure that a retry may fix: every epoch written but not committed (and the
    /// one that failed) is run again over its recorded range, after the writers drop what they
    /// gathered for them (the same as a restart, without one).
    async fn replay_uncommitted(&mut self) {
        let mut replay: BTreeMap<u64, OffsetsRecord> = std::mem::take(&mut self.uncommitted)
            .into_iter()
            .map(|(e, (_, o))| (e, o))
            .collect();
        if let Some(o) = self.in_flight.take() {
            replay.insert(o.epoch, o);
        }
        for o in self.pending.drain(..) {
            replay.insert(o.epoch, o);
        }
        for w in self.p.writers() {
            if let Err(e) = w.recover(self.p.write_context(), &self.stream_id, self.committed).await {
                warn!("{}: {e}", w.name());
            }
        }
        self.pending = replay.into_values().collect();
    }

    /// One epoch, or one wait for data. `Ok(false)`: the stream is done.
    async fn step(&mut self) -> Result<bool> {
        {
            if self.stopping() {
                self.flush_writers(true).await?;
                info!("stream stopped");
                return Ok(false);
            }
            let started = Instant::now();
            if let Some(every) = self.opts.static_refresh
                && self.last_refresh.elapsed() >= every
            {
                for (raw, table) in &self.parts.statics {
                    load_static(self.p.session(), raw, table).await?;
                }
                self.last_refresh = Instant::now();
                info!("static readers reloaded");
            }
            let (record, replayed) = match self.pending.pop_front() {
                Some(o) => (o, true),
                None => match self.plan_epoch().await? {
                    Some(o) => (o, false),
                    None => {
                        if self.opts.available_now {
                            self.flush_writers(true).await?;
                            info!("available_now: no new data, stopping");
                            return Ok(false);
                        }
                        self.flush_writers(false).await?;
                        self.wait_for_data().await;
                        return Ok(true);
                    }
                },
            };
            let epoch = record.epoch;
            self.in_flight = Some(record.clone());
            let metrics = self.run_epoch(&record, replayed, started).await?;
            self.in_flight = None;
            {
                let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
                s.epochs += 1;
                s.last_epoch_written = Some(epoch);
                s.input_rows += metrics.input_rows;
                s.output_rows += metrics.output_rows;
                s.dead_lettered += metrics.dead_lettered;
                s.debug_rows_evicted += metrics.debug_rows_evicted;
                for (w, n) in &metrics.writers {
                    *s.writer_rows.entry(w.clone()).or_default() += n;
                }
                s.last_epoch = Some(metrics.clone());
            }
            info!(
                epoch,
                replayed,
                input = metrics.input_rows,
                output = metrics.output_rows,
                dead_lettered = metrics.dead_lettered,
                seconds = format!("{:.3}", metrics.duration_seconds),
                freshness = ?metrics.freshness_seconds.map(|f| format!("{f:.3}s")),
                "epoch committed"
            );
            if let Some(cb) = &self.opts.on_epoch {
                cb(&metrics);
            }
            if !self.opts.processing_time.is_zero() {
                let next = started + self.opts.processing_time;
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(true)
        }
    }

    async fn wait_for_data(&mut self) {
        let waits = self
            .parts
            .streams
            .iter()
            .map(|(r, _)| r.wait_for_data(Duration::from_secs(1)))
            .collect::<Vec<_>>();
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = futures::future::select_all(waits.into_iter().map(Box::pin)) => {}
            _ = stop.changed() => {}
        }
    }

    /// Plans the next epoch and records it; `None` when no reader has new data.
    async fn plan_epoch(&mut self) -> Result<Option<OffsetsRecord>> {
        let mut ranges = BTreeMap::new();
        for (r, _) in &self.parts.streams {
            if let Some(range) = r.next_range(self.opts.max_rows_per_batch).await? {
                ranges.insert(r.id().to_string(), range);
            }
        }
        if ranges.is_empty() {
            return Ok(None);
        }
        let record = OffsetsRecord {
            epoch: self.next_epoch,
            planned_at: Utc::now().to_rfc3339(),
            ranges,
        };
        if let Some(ck) = &self.ckpt {
            ck.write_offsets(&record)?;
        }
        failpoint("after_offsets", record.epoch);
        for (r, _) in &self.parts.streams {
            if let Some(range) = record.ranges.get(r.id()) {
                r.advance(range)?;
            }
        }
        Ok(Some(record))
    }

    async fn run_epoch(&mut self, record: &OffsetsRecord, replayed: bool, started: Instant) -> Result<EpochMetrics> {
        let epoch = record.epoch;
        let mut m = EpochMetrics {
            epoch,
            replayed,
            ..Default::default()
        };
        let mut bad = Vec::new();
        for (r, table) in &self.parts.streams {
            let chunk = match record.ranges.get(r.id()) {
                Some(range) => r.read(range).await?,
                None => StreamChunk::default(),
            };
            m.input_rows += chunk.batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            bad.extend(chunk.bad_records);
            table.publish(chunk.batches);
        }
        if self.opts.on_bad_record == OnBadRecord::Fail
            && let Some(b) = bad.first()
        {
            return Err(Error::Validation(format!(
                "bad record in {} ({}{}): {} (on_bad_record: fail)",
                b.reader,
                b.source,
                b.position.map(|p| format!(" at {p}")).unwrap_or_default(),
                b.reason
            )));
        }

        // The same logical plan every epoch; a fresh physical plan, so nothing (a hash join's
        // build side, a scan's snapshot) carries over from the previous epoch.
        let plan = self.df.clone().create_physical_plan().await?;
        let mut stream = execute_stream(plan, self.p.session().task_ctx())?;
        let schema = self.p.schema();
        let ts_idx = schema.index_of(TIMESTAMP_COLUMN)?;
        let key_idx: Vec<usize> = self
            .p
            .write_context()
            .keys
            .iter()
            .map(|k| schema.index_of(k))
            .collect::<std::result::Result<_, _>>()?;
        let max_micros = Utc::now().timestamp_micros() + self.opts.max_future_skew.as_micros() as i64;
        let mut sink = self.p.sink().run(Some(epoch));
        let mut newest: Option<i64> = None;
        while let Some(batch) = stream.next().await {
            let batch = RecordBatch::try_new(Arc::clone(&schema), batch?.columns().to_vec())?;
            let (good, rejected) = split_unwritable(&batch, ts_idx, &key_idx, max_micros)?;
            bad.extend(rejected);
            if good.num_rows() == 0 {
                continue;
            }
            let ts = event_micros(good.column(ts_idx))?;
            newest = newest.max(arrow::compute::max(&ts));
            m.output_rows += good.num_rows() as u64;
            sink.write(good).await?;
        }
        for (_, table) in &self.parts.streams {
            table.publish(Vec::new());
        }

        for (name, wm) in sink.commit().await?.unwrap_or_default() {
            m.writers.push((name, wm.rows_written));
            m.debug_rows_evicted += wm.evicted;
        }
        m.dead_lettered = bad.len() as u64;
        self.write_dead_letters(epoch, &bad)?;
        self.next_epoch = epoch + 1;
        self.uncommitted.insert(epoch, (m.output_rows, record.clone()));
        self.flush_writers(false).await?;
        m.duration_seconds = started.elapsed().as_secs_f64();
        m.freshness_seconds = newest.map(|n| (Utc::now().timestamp_micros() - n) as f64 / 1e6);
        Ok(m)
    }

    /// Lets the writers make gathered epochs durable (when due, or now with `force`), then
    /// records `commits/M` for every epoch M that every writer has made durable.
    async fn flush_writers(&mut self, force: bool) -> Result<()> {
        let Some(&processed) = self.uncommitted.keys().next_back() else {
            return Ok(());
        };
        let writers = self.p.writers();
        for w in writers {
            w.flush(force).await?;
        }
        let durable = writers
            .iter()
            .map(|w| w.durable_through(processed))
            .min()
            .unwrap_or(Some(processed));
        let Some(durable) = durable else { return Ok(()) };
        if self.uncommitted.range(..=durable).next().is_none() {
            return Ok(());
        }
        // One record commits every epoch up to `durable` at once: a writer that gathered
        // epochs a..=b made them durable together, so they are committed together.
        let rows: u64 = self.uncommitted.range(..=durable).map(|(_, (r, _))| r).sum();
        failpoint("before_commit", durable);
        if let Some(ck) = &self.ckpt {
            ck.write_commit(&CommitRecord {
                epoch: durable,
                committed_at: Utc::now().to_rfc3339(),
                rows,
            })?;
        }
        failpoint("after_commit", durable);
        for (r, _) in &self.parts.streams {
            let ranges: Vec<&Value> = self
                .uncommitted
                .range(..=durable)
                .filter_map(|(_, (_, rec))| rec.ranges.get(r.id()))
                .collect();
            if !ranges.is_empty() {
                r.committed(&ranges).await;
            }
        }
        self.uncommitted.retain(|e, _| *e > durable);
        self.committed = Some(durable);
        self.status.lock().unwrap_or_else(|e| e.into_inner()).last_committed = Some(durable);
        // Compact when every written epoch is committed (the readers' positions are exactly
        // those after the last commit).
        if let (Some(ck), Some(c)) = (&self.ckpt, self.committed)
            && self.uncommitted.is_empty()
            && c >= self.last_compact + COMPACT_EVERY
        {
            let positions = self
                .parts
                .streams
                .iter()
                .map(|(r, _)| (r.id().to_string(), r.position()))
                .collect();
            ck.compact(&CompactRecord { epoch: c, positions })?;
            self.last_compact = c;
        }
        Ok(())
    }

    /// `epoch=<N>.jsonl` in the dead-letter folder (rewritten whole by a replay).
    fn write_dead_letters(&self, epoch: u64, bad: &[BadRecord]) -> Result<()> {
        let path = self.opts.dead_letter_dir.join(format!("epoch={epoch}.jsonl"));
        if bad.is_empty() {
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
            return Ok(());
        }
        warn!(epoch, records = bad.len(), path = %path.display(), "records sent to the dead-letter output");
        let mut text = String::new();
        for b in bad {
            let mut v = serde_json::to_value(b).map_err(|e| Error::Internal(e.to_string()))?;
            v["epoch"] = epoch.into();
            text.push_str(&v.to_string());
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())
    }
}

/// Splits feature rows into those that can be written and those that cannot (a null key, a
/// null event time, an event time too far in the future), the latter as bad records.
fn split_unwritable(
    batch: &RecordBatch,
    ts_idx: usize,
    key_idx: &[usize],
    max_micros: i64,
) -> Result<(RecordBatch, Vec<BadRecord>)> {
    let ts = event_micros(batch.column(ts_idx))?;
    let ok: BooleanArray = (0..batch.num_rows())
        .map(|i| {
            Some(key_idx.iter().all(|k| batch.column(*k).is_valid(i)) && ts.is_valid(i) && ts.value(i) <= max_micros)
        })
        .collect();
    if ok.true_count() == batch.num_rows() {
        return Ok((batch.clone(), Vec::new()));
    }
    let rejected = filter_record_batch(batch, &not(&ok)?)?;
    let rts = event_micros(rejected.column(ts_idx))?;
    let json = batch_to_json_rows(&rejected)?;
    let keys_ok = key_idx
        .iter()
        .map(|k| is_not_null(rejected.column(*k)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let bad = json
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let reason = if keys_ok.iter().any(|k| !k.value(i)) {
                "a key is null".to_string()
            } else if rts.is_null(i) {
                "the event time (timestamp) is null".to_string()
            } else {
                format!(
                    "the event time {} is too far in the future (after {})",
                    DateTime::from_timestamp_micros(rts.value(i)).map_or_else(String::new, |t| t.to_rfc3339()),
                    DateTime::from_timestamp_micros(max_micros).map_or_else(String::new, |t| t.to_rfc3339()),
                )
            };
            BadRecord {
                reader: "feature_set".into(),
                source: "feature rows".into(),
                position: None,
                reason,
                record,
            }
        })
        .collect();
    Ok((filter_record_batch(batch, &ok)?, bad))
}
