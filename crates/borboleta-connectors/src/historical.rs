//! `HistoricalWriter`: Butterfree's historical feature store as Parquet files partitioned by
//! `year=/month=/day=` (not zero-padded) under `<root>/historical/<entity>/<feature set>`.
//!
//! A run writes into a staging folder; commit moves the partitions into place. With
//! `interval_mode` only the partitions the run touched are replaced, so re-running a date range
//! is idempotent; otherwise `overwrite` replaces the table and `append` adds files.
//!
//! Over 600 lines: the historical writer is one protocol (staging, partition overwrite, commit interval, locks, recovery of uncommitted epochs); splitting it would scatter the invariants it keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use async_trait::async_trait;
use borboleta_core::{HistoricalWriterSpec, WriteMode};
use borboleta_engine::Rejected;
use borboleta_engine::{Error, Result, WriteContext, WriteMetrics, Writer, WriterSession};
use chrono::Datelike;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader as _, SerializedFileReader};

/// See the module docs.
#[derive(Debug)]
pub struct HistoricalWriter {
    spec: HistoricalWriterSpec,
    root: PathBuf,
    /// Held while a stream writes the table (`<table>/.stream.lock`).
    stream_lock: std::sync::OnceLock<File>,
    /// Streams: the epochs gathered but not yet committed.
    interval: Arc<Mutex<IntervalState>>,
    /// Streams: the stream's id, in its file names.
    stream_id: std::sync::OnceLock<String>,
}

/// Streams: epochs are gathered into one file per partition (`part-epochs-<first>-<last>`)
/// and moved into place every `commit_interval_seconds` or `commit_interval_mb`.
#[derive(Default)]
struct IntervalState {
    open: Option<OpenInterval>,
}

struct OpenInterval {
    stream_id: String,
    first: u64,
    last: u64,
    staging: PathBuf,
    table: PathBuf,
    writers: BTreeMap<Partition, ArrowWriter<File>>,
    bytes: u64,
    started: std::time::Instant,
}

impl std::fmt::Debug for IntervalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalState")
            .field("open", &self.open.as_ref().map(|o| (o.first, o.last)))
            .finish()
    }
}

impl OpenInterval {
    /// Closes the files and moves them into their partitions, named by the epochs they hold.
    fn commit(self) -> Result<()> {
        let name = format!(
            "part-{}-epochs-{:010}-{:010}.parquet",
            self.stream_id, self.first, self.last
        );
        for (p, w) in self.writers {
            w.close().map_err(|e| io("cannot finish parquet file", e))?;
            let target = partition_dir(&self.table, p);
            fs::create_dir_all(&target).map_err(|e| io("cannot create partition", e))?;
            fs::rename(partition_dir(&self.staging, p).join("part.parquet"), target.join(&name))
                .map_err(|e| io("cannot move file", e))?;
        }
        fs::remove_dir_all(&self.staging).map_err(|e| io("cannot remove staging", e))
    }
}

/// The epochs of a file `part-<stream id>-epochs-<first>-<last>.parquet` of stream `id`.
fn file_epochs(name: &str, id: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("part-")?.strip_prefix(id)?.strip_prefix("-epochs-")?;
    let (a, b) = rest.strip_suffix(".parquet")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn lock_interval(m: &Mutex<IntervalState>) -> std::sync::MutexGuard<'_, IntervalState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HistoricalWriter {
    /// Writes under `root` (the feature store root, already resolved).
    pub fn new(spec: HistoricalWriterSpec, root: PathBuf) -> Self {
        Self {
            spec,
            root,
            stream_lock: std::sync::OnceLock::new(),
            interval: Arc::default(),
            stream_id: std::sync::OnceLock::new(),
        }
    }

    /// `<root>/historical/<entity>/<feature set>`.
    pub fn table_dir(&self, wctx: &WriteContext) -> PathBuf {
        table_dir(&self.root, &wctx.feature_set.entity, &wctx.feature_set.name)
    }

    /// Takes `<table>/.stream.lock`: a running stream holds it (a second stream on the same
    /// table is refused); a batch run that would replace partitions only checks it.
    fn lock_table(&self, wctx: &WriteContext) -> Result<()> {
        if wctx.streaming && self.stream_lock.get().is_some() {
            return Ok(()); // this stream holds it already (a replay after an outage)
        }
        let table = self.table_dir(wctx);
        fs::create_dir_all(&table).map_err(|e| io(&format!("cannot create {}", table.display()), e))?;
        let lock_path = table.join(".stream.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("cannot open the stream lock", e))?;
        match f.try_lock() {
            Ok(()) if wctx.streaming => {
                let _ = self.stream_lock.set(f);
                Ok(())
            }
            Ok(()) => Ok(()), // no stream runs: released on drop
            Err(fs::TryLockError::WouldBlock) => Err(Error::spec(
                "writers",
                format!(
                    "the historical table {} is being written by a running stream; {}",
                    table.display(),
                    if wctx.streaming {
                        "two streams cannot write one table"
                    } else {
                        "a batch run may not replace its partitions (use `mode: append`, or stop the stream)"
                    }
                ),
            )),
            Err(fs::TryLockError::Error(e)) => Err(io("cannot lock the table", e)),
        }
    }
}

/// `<root>/historical/<entity>/<name>`.
pub fn table_dir(root: &Path, entity: &str, name: &str) -> PathBuf {
    root.join("historical").join(entity).join(name)
}

/// The file with the table's declared schema, written by `borboleta migrate apply` (a Parquet
/// file with no rows; readers skip names starting with `_`).
pub const SCHEMA_FILE: &str = "_borboleta_schema.parquet";

/// How feature rows of a schema differ from an existing historical table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HistoricalSchemaDiff {
    /// Columns of the rows that the table does not have (name, type).
    pub added: Vec<(String, DataType)>,
    /// Columns with another type: (name, in the table, in the rows).
    pub retyped: Vec<(String, DataType, DataType)>,
}

/// The existing table's schema: its schema file if a migration wrote one, else the schema of
/// its first Parquet file; `None` for a table with no file yet.
pub fn table_schema(table: &Path) -> Result<Option<SchemaRef>> {
    fn first_parquet(dir: &Path) -> Option<PathBuf> {
        let mut entries: Vec<_> = fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if p.is_dir() {
                if let Some(f) = first_parquet(&p) {
                    return Some(f);
                }
            } else if name.ends_with(".parquet") {
                return Some(p);
            }
        }
        None
    }
    let declared = table.join(SCHEMA_FILE);
    let Some(file) = declared.is_file().then_some(declared).or_else(|| first_parquet(table)) else {
        return Ok(None);
    };
    let f = File::open(&file).map_err(|e| io("cannot open parquet file", e))?;
    let schema = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| io("cannot read parquet schema", e))?
        .schema()
        .clone();
    Ok(Some(schema))
}

/// How `schema` differs from the existing table (`None`: no table yet).
pub fn schema_diff(table: &Path, schema: &Schema) -> Result<Option<HistoricalSchemaDiff>> {
    let Some(existing) = table_schema(table)? else {
        return Ok(None);
    };
    let mut diff = HistoricalSchemaDiff::default();
    for f in schema.fields() {
        match existing.field_with_name(f.name()) {
            Ok(e) if e.data_type() == f.data_type() => {}
            Ok(e) => diff
                .retyped
                .push((f.name().clone(), e.data_type().clone(), f.data_type().clone())),
            Err(_) => diff.added.push((f.name().clone(), f.data_type().clone())),
        }
    }
    Ok(Some(diff))
}

/// Records `schema` as the table's declared schema (what `migrate apply` does when the feature
/// set gained columns): later runs check their rows against it.
pub fn write_table_schema(table: &Path, schema: &SchemaRef) -> Result<()> {
    fs::create_dir_all(table).map_err(|e| io(&format!("cannot create {}", table.display()), e))?;
    let tmp = table.join(format!(".{SCHEMA_FILE}.tmp"));
    let f = File::create(&tmp).map_err(|e| io("cannot write the schema file", e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(f, Arc::clone(schema), None)
        .map_err(|e| io("cannot write the schema file", e))?;
    w.write(&RecordBatch::new_empty(Arc::clone(schema)))
        .map_err(|e| io("cannot write the schema file", e))?;
    w.close().map_err(|e| io("cannot write the schema file", e))?;
    fs::rename(&tmp, table.join(SCHEMA_FILE)).map_err(|e| io("cannot write the schema file", e))?;
    Ok(())
}

/// Butterfree's `SparkTableSchemaCompatibilityHook`: every column of `schema` must be in the
/// existing table with the same type. A table with no file yet accepts anything.
fn check_schema(table: &Path, schema: &SchemaRef) -> Result<()> {
    let Some(diff) = schema_diff(table, schema)? else {
        return Ok(());
    };
    let mut problems: Vec<String> = diff
        .retyped
        .iter()
        .map(|(n, have, want)| format!("`{n}` is {have} in the table, {want} here"))
        .collect();
    problems.extend(diff.added.iter().map(|(n, _)| format!("`{n}` is not in the table")));
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::spec(
        "writers",
        format!(
            "the feature rows do not fit the existing historical table {}: {} (`borboleta migrate \
             apply` records new columns; otherwise write a new table, overwrite it with `mode: \
             overwrite`, or set `check_schema: false`)",
            table.display(),
            problems.join("; ")
        ),
    ))
}

fn io(context: &str, e: impl Into<borboleta_engine::error::BoxError>) -> Error {
    Error::external_caused("file system", false, context, e)
}

#[async_trait]
impl Writer for HistoricalWriter {
    fn name(&self) -> String {
        "historical_feature_store".into()
    }
    fn describe(&self) -> borboleta_engine::ConnectorDescription {
        borboleta_engine::ConnectorDescription {
            kind: "Historical Feature Store Writer".into(),
            location: self.name(),
            detail: "Historical Feature Store Writer".into(),
        }
    }

    /// A batch run that would replace partitions (`interval_mode` or `overwrite`) of a table a
    /// running stream writes is refused before writing anything.
    fn prepare(&self, _ctx: &datafusion::prelude::SessionContext, wctx: &WriteContext) -> Result<()> {
        let adds = wctx.streaming || self.spec.interval_mode || self.spec.mode == WriteMode::Append;
        if self.spec.check_schema && adds {
            check_schema(&self.table_dir(wctx), &wctx.schema)?;
        }
        let replaces = self.spec.interval_mode || self.spec.mode == WriteMode::Overwrite;
        if wctx.streaming || !replaces || !self.table_dir(wctx).join(".stream.lock").exists() {
            return Ok(());
        }
        self.lock_table(wctx)
    }

    /// Removes files of epochs after `last_committed` (a crashed process moved them in
    /// before its checkpoint commit; those epochs are replayed) and stale staging folders.
    async fn recover(&self, wctx: &WriteContext, stream_id: &str, last_committed: Option<u64>) -> Result<()> {
        self.lock_table(wctx)?;
        let _ = self.stream_id.set(stream_id.to_string());
        // gathered epochs are dropped: they are replayed (their staging folder goes below)
        lock_interval(&self.interval).open = None;
        fn walk(dir: &Path, id: &str, last: Option<u64>, top: bool) -> Result<()> {
            for e in fs::read_dir(dir).map_err(|e| io("cannot list table", e))? {
                let path = e.map_err(|e| io("cannot list table", e))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if top && name.starts_with(&format!(".staging-{id}-")) {
                    fs::remove_dir_all(&path).map_err(|e| io("cannot remove staging", e))?;
                } else if path.is_dir() && name.contains('=') {
                    walk(&path, id, last, false)?;
                } else if let Some((_, b)) = file_epochs(&name, id)
                    && last.is_none_or(|l| b > l)
                {
                    tracing::info!(file = %path.display(), "removing a file of an uncommitted epoch (replayed)");
                    fs::remove_file(&path).map_err(|e| io("cannot remove file", e))?;
                }
            }
            Ok(())
        }
        let table = self.table_dir(wctx);
        if table.exists() {
            walk(&table, stream_id, last_committed, true)?;
        }
        Ok(())
    }

    fn durable_through(&self, processed: u64) -> Option<u64> {
        match &lock_interval(&self.interval).open {
            Some(o) => o.first.checked_sub(1),
            None => Some(processed),
        }
    }

    async fn flush(&self, force: bool) -> Result<()> {
        let mut state = lock_interval(&self.interval);
        let due = state.open.as_ref().is_some_and(|o| {
            force
                || o.started.elapsed().as_secs() >= self.spec.commit_interval_seconds.unwrap_or(60)
                || o.bytes >= self.spec.commit_interval_mb.unwrap_or(128) * 1024 * 1024
        });
        if due && let Some(o) = state.open.take() {
            o.commit()?;
        }
        Ok(())
    }

    async fn begin(&self, wctx: &WriteContext, epoch: Option<u64>) -> Result<Box<dyn WriterSession>> {
        let table = self.table_dir(wctx);
        if let Some(epoch) = epoch {
            let stream_id = self
                .stream_id
                .get()
                .cloned()
                .ok_or_else(|| Error::Internal("historical writer: stream epoch before recover".into()))?;
            return Ok(Box::new(StreamSession {
                stream_id,
                interval: Arc::clone(&self.interval),
                epoch,
                table,
                schema: Arc::clone(&wctx.schema),
                rows: 0,
                rejected: Rejected::default(),
            }));
        }
        let spec = self.spec.clone();
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let staging = table.join(format!(".staging-{run_id}"));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| io(&format!("cannot clear {}", staging.display()), e))?;
        }
        fs::create_dir_all(&staging).map_err(|e| io(&format!("cannot create {}", staging.display()), e))?;
        Ok(Box::new(HistoricalSession {
            spec,
            table,
            staging,
            run_id,
            schema: Arc::clone(&wctx.schema),
            writers: BTreeMap::new(),
            rows: 0,
            rejected: Rejected::default(),
        }))
    }
}

type Partition = (i32, i32, i32);

struct HistoricalSession {
    spec: HistoricalWriterSpec,
    table: PathBuf,
    staging: PathBuf,
    run_id: String,
    schema: SchemaRef,
    writers: BTreeMap<Partition, ArrowWriter<File>>,
    rows: u64,
    rejected: Rejected,
}

/// One epoch of a stream: its rows go into the open interval's files.
struct StreamSession {
    stream_id: String,
    interval: Arc<Mutex<IntervalState>>,
    epoch: u64,
    table: PathBuf,
    schema: SchemaRef,
    rows: u64,
    rejected: Rejected,
}

fn parquet_writer(path: &Path, schema: &SchemaRef) -> Result<ArrowWriter<File>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io("cannot create staging partition", e))?;
    }
    let file = File::create(path).map_err(|e| io("cannot create parquet file", e))?;
    // Dictionaries only for text: numbers are mostly distinct, and an open writer's dictionary
    // holds every distinct value it has seen.
    let mut props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            props = props.set_column_dictionary_enabled(f.name().as_str().into(), true);
        }
    }
    ArrowWriter::try_new(file, Arc::clone(schema), Some(props.build())).map_err(|e| io("cannot write parquet", e))
}

/// Bytes the open partition writers of one run may buffer together: beyond it, the writers
/// holding the most end their row group early (a run touching many days at once writes more,
/// smaller row groups instead of keeping every day's rows in memory).
const OPEN_WRITERS_BUDGET: usize = 32 << 20;

fn bound_open_writers(writers: &mut BTreeMap<Partition, ArrowWriter<File>>) -> Result<()> {
    let mut total: usize = writers.values().map(ArrowWriter::memory_size).sum();
    while total > OPEN_WRITERS_BUDGET {
        let Some((_, w)) = writers.iter_mut().max_by_key(|(_, w)| w.memory_size()) else {
            break;
        };
        let before = w.memory_size();
        w.flush().map_err(|e| io("cannot write parquet", e))?;
        let after = w.memory_size();
        if after >= before {
            break;
        }
        total -= before - after;
    }
    Ok(())
}

#[async_trait]
impl WriterSession for StreamSession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let groups = split_by_partition(&batch, &mut self.rejected)?;
        let mut state = lock_interval(&self.interval);
        let open = state.open.get_or_insert_with(|| OpenInterval {
            stream_id: self.stream_id.clone(),
            first: self.epoch,
            last: self.epoch,
            staging: self
                .table
                .join(format!(".staging-{}-epochs-{:010}", self.stream_id, self.epoch)),
            table: self.table.clone(),
            writers: BTreeMap::new(),
            bytes: 0,
            started: std::time::Instant::now(),
        });
        open.last = self.epoch;
        for (p, part) in groups {
            if !open.writers.contains_key(&p) {
                let w = parquet_writer(&partition_dir(&open.staging, p).join("part.parquet"), &self.schema)?;
                open.writers.insert(p, w);
            }
            if let Some(w) = open.writers.get_mut(&p) {
                w.write(&part).map_err(|e| io("cannot write parquet", e))?;
            }
            open.bytes += part.get_array_memory_size() as u64;
            self.rows += part.num_rows() as u64;
        }
        bound_open_writers(&mut open.writers)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<WriteMetrics> {
        let state = lock_interval(&self.interval);
        let detail = match &state.open {
            Some(o) => format!(
                "epochs {}..={} gathered under {}",
                o.first,
                o.last,
                self.table.display()
            ),
            None => format!("under {}", self.table.display()),
        };
        Ok(WriteMetrics {
            rows_written: self.rows,
            rejected: self.rejected,
            detail,
            evicted: 0,
        })
    }
}

/// Rows of `batch` grouped by their `year/month/day` partition; rows with no timestamp are
/// counted in `rejected`.
fn split_by_partition(batch: &RecordBatch, rejected: &mut Rejected) -> Result<BTreeMap<Partition, RecordBatch>> {
    const DAY_MICROS: i64 = 86_400_000_000;
    let ts = batch.schema().index_of(borboleta_core::naming::TIMESTAMP_COLUMN)?;
    let micros = borboleta_engine::sink::latest::event_micros(batch.column(ts))?;
    // rows by UTC day (few distinct days per batch: the date is worked out once per day)
    let mut days: std::collections::HashMap<i64, Vec<u32>> = std::collections::HashMap::new();
    for (i, v) in micros.iter().enumerate() {
        match v {
            Some(us) => days.entry(us.div_euclid(DAY_MICROS)).or_default().push(i as u32),
            None => rejected.null_timestamp += 1,
        }
    }
    let mut out = BTreeMap::new();
    for (day, idx) in days {
        let Some(date) = chrono::DateTime::from_timestamp(day * 86_400, 0) else {
            rejected.null_timestamp += idx.len() as u64;
            continue;
        };
        let p = (date.year(), date.month() as i32, date.day() as i32);
        out.insert(p, take_record_batch(batch, &UInt32Array::from(idx))?);
    }
    Ok(out)
}

fn partition_dir(base: &Path, (y, m, d): Partition) -> PathBuf {
    base.join(format!("year={y}"))
        .join(format!("month={m}"))
        .join(format!("day={d}"))
}

impl HistoricalSession {
    fn writer(&mut self, p: Partition) -> Result<&mut ArrowWriter<File>> {
        if !self.writers.contains_key(&p) {
            let path = partition_dir(&self.staging, p).join(format!("part-{}.parquet", self.run_id));
            let w = parquet_writer(&path, &self.schema)?;
            self.writers.insert(p, w);
        }
        self.writers
            .get_mut(&p)
            .ok_or_else(|| Error::Internal("partition writer".into()))
    }

    fn abort(&self) {
        let _ = fs::remove_dir_all(&self.staging);
    }

    fn commit_files(&mut self) -> Result<BTreeSet<Partition>> {
        let writers = std::mem::take(&mut self.writers);
        let touched: BTreeSet<Partition> = writers.keys().copied().collect();
        for (_, w) in writers {
            w.close().map_err(|e| io("cannot finish parquet file", e))?;
        }
        let replace_all = !self.spec.interval_mode && self.spec.mode == WriteMode::Overwrite;
        if replace_all {
            for entry in fs::read_dir(&self.table).map_err(|e| io("cannot list table", e))? {
                let entry = entry.map_err(|e| io("cannot list table", e))?;
                if entry.file_name().to_string_lossy().starts_with("year=") {
                    fs::remove_dir_all(entry.path()).map_err(|e| io("cannot remove old partition", e))?;
                }
            }
        }
        for p in &touched {
            let staged = partition_dir(&self.staging, *p);
            let target = partition_dir(&self.table, *p);
            if self.spec.interval_mode && target.exists() {
                fs::remove_dir_all(&target).map_err(|e| io("cannot replace partition", e))?;
            }
            if target.exists() {
                // append: move the file in next to the others
                for f in fs::read_dir(&staged).map_err(|e| io("staging", e))? {
                    let f = f.map_err(|e| io("staging", e))?;
                    fs::rename(f.path(), target.join(f.file_name())).map_err(|e| io("cannot move file", e))?;
                }
            } else {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(|e| io("cannot create partition", e))?;
                }
                fs::rename(&staged, &target).map_err(|e| io("cannot move partition", e))?;
            }
        }
        fs::remove_dir_all(&self.staging).map_err(|e| io("cannot remove staging", e))?;
        Ok(touched)
    }
}

/// Rows in the Parquet files under `dir` (from their footers).
pub fn count_rows(dir: &Path) -> Result<u64> {
    let mut n = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for entry in fs::read_dir(dir).map_err(|e| io("cannot list", e))? {
        let path = entry.map_err(|e| io("cannot list", e))?.path();
        if path.is_dir() {
            if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                n += count_rows(&path)?;
            }
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let f = File::open(&path).map_err(|e| io("cannot open", e))?;
            let r = SerializedFileReader::new(f).map_err(|e| io("cannot read parquet footer", e))?;
            n += r.metadata().file_metadata().num_rows() as u64;
        }
    }
    Ok(n)
}

#[async_trait]
impl WriterSession for HistoricalSession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        for (p, part) in split_by_partition(&batch, &mut self.rejected)? {
            self.rows += part.num_rows() as u64;
            let r = self.writer(p)?.write(&part).map_err(|e| io("cannot write parquet", e));
            if let Err(e) = r {
                self.abort();
                return Err(e);
            }
        }
        if let Err(e) = bound_open_writers(&mut self.writers) {
            self.abort();
            return Err(e);
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<WriteMetrics> {
        let touched = match self.commit_files() {
            Ok(t) => t,
            Err(e) => {
                self.abort();
                return Err(e);
            }
        };
        let mut detail = format!("{} partitions under {}", touched.len(), self.table.display());
        if self.spec.row_count_validation {
            let written = if self.spec.interval_mode {
                touched
                    .iter()
                    .map(|p| count_rows(&partition_dir(&self.table, *p)))
                    .sum::<Result<u64>>()?
            } else {
                count_rows(&self.table)?
            };
            if self.spec.mode == WriteMode::Append && !self.spec.interval_mode {
                detail.push_str("; row count not validated in append mode");
            } else {
                let t = self.spec.validation_threshold;
                let ok =
                    (1.0 - t) * written as f64 <= self.rows as f64 && self.rows as f64 <= (1.0 + t) * written as f64;
                if !ok {
                    return Err(Error::Validation(format!(
                        "historical table {}: {} rows computed but {} rows read back (threshold {t})",
                        self.table.display(),
                        self.rows,
                        written
                    )));
                }
                detail.push_str(&format!("; {written} rows read back"));
            }
        }
        Ok(WriteMetrics {
            rows_written: self.rows,
            rejected: self.rejected,
            detail,
            evicted: 0,
        })
    }
}
