//! The streaming side of `FileReader`: a folder of arriving files (JSON lines, CSV, Parquet).
//!
//! New files are noticed through filesystem notifications (`notify`), with polling as the
//! fallback, and taken in (modification time, name) order, each once. Hidden files (`.x`, `_x`)
//! are ignored, so a writer can write `.name.tmp` and rename it into place. A range is the list
//! of files of an epoch; the position is the set of processed files, dropped from it once older
//! than `max_file_age_seconds`. Lines that do not parse, or hold a value of the wrong type, are
//! returned as bad records with their file and line; the rest of the file is read.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{RecordBatch, new_null_array};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use borboleta_core::{FileFormat, FileReaderSpec};
use borboleta_engine::{BadRecord, Error, Result, StreamChunk, StreamReader};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::listing::listing_table;
use crate::json::decode_json;

/// One file of a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RangeFile {
    name: String,
    mtime_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Range {
    files: Vec<RangeFile>,
}

/// Processed files: name → modification time (ms).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    files: BTreeMap<String, i64>,
}

/// A folder read as a stream. Built by [`super::FileReader::new`] for a `stream: true` spec.
#[derive(Debug)]
pub struct FileStream {
    spec: FileReaderSpec,
    dir: PathBuf,
    state: Mutex<Position>,
    schema: Mutex<Option<SchemaRef>>,
    wakeup: Arc<tokio::sync::Notify>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

/// Polling interval when filesystem notifications are not available.
const POLL_FALLBACK: Duration = Duration::from_millis(100);

fn io(path: &Path, e: impl Into<borboleta_engine::error::BoxError>) -> Error {
    Error::external_caused("file system", true, path.display(), e)
}

fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

impl FileStream {
    /// A stream over the folder `spec.path` (already resolved).
    pub fn new(spec: FileReaderSpec) -> Self {
        Self {
            dir: PathBuf::from(&spec.path),
            spec,
            state: Mutex::default(),
            schema: Mutex::default(),
            wakeup: Arc::default(),
            watcher: Mutex::default(),
        }
    }

    fn schema(&self) -> Result<SchemaRef> {
        self.schema
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Internal("file stream read before open".into()))
    }

    fn takes(&self, name: &str) -> bool {
        if name.starts_with('.') || name.starts_with('_') {
            return false;
        }
        match self.spec.options.get("file_extension") {
            Some(ext) => name.ends_with(ext.as_str()),
            None => match self.spec.format {
                FileFormat::Parquet => name.ends_with(".parquet"),
                FileFormat::Csv => name.ends_with(".csv"),
                FileFormat::Json => true,
            },
        }
    }

    /// Unprocessed files, oldest first, and the newest modification time seen.
    fn list_new(&self) -> Result<Vec<RangeFile>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::new();
        let mut newest = state.files.values().copied().max().unwrap_or(i64::MIN);
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !self.takes(&name) || state.files.contains_key(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let m = mtime_ms(&meta);
            newest = newest.max(m);
            found.push(RangeFile {
                name,
                mtime_ms: m,
                rows: None,
            });
        }
        if let Some(age) = self.spec.max_file_age_seconds {
            let cutoff = newest.saturating_sub(age as i64 * 1000);
            found.retain(|f| f.mtime_ms >= cutoff);
        }
        found.sort_by(|a, b| (a.mtime_ms, &a.name).cmp(&(b.mtime_ms, &b.name)));
        Ok(found)
    }

    /// Rows in a file, counted cheaply (lines, or the Parquet footer).
    fn count_rows(&self, path: &Path) -> Result<u64> {
        match self.spec.format {
            FileFormat::Parquet => {
                use parquet::file::reader::FileReader as _;
                let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
                let r = parquet::file::reader::SerializedFileReader::new(f).map_err(|e| io(path, e))?;
                Ok(r.metadata().file_metadata().num_rows() as u64)
            }
            FileFormat::Json | FileFormat::Csv => {
                let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
                let lines = bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                    .count() as u64;
                Ok(if self.spec.format == FileFormat::Csv && self.header() {
                    lines.saturating_sub(1)
                } else {
                    lines
                })
            }
        }
    }

    fn header(&self) -> bool {
        self.spec
            .options
            .get("header")
            .is_none_or(|v| v.eq_ignore_ascii_case("true"))
    }

    fn bad(&self, file: &str, line: Option<u64>, reason: String, record: String) -> BadRecord {
        BadRecord {
            reader: self.spec.id.clone(),
            source: self.dir.join(file).to_string_lossy().into_owned(),
            position: line,
            reason,
            record,
        }
    }

    fn read_file(&self, schema: &SchemaRef, file: &RangeFile, chunk: &mut StreamChunk) -> Result<()> {
        let path = self.dir.join(&file.name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                chunk.bad_records.push(self.bad(
                    &file.name,
                    None,
                    "the file was removed before it could be read".into(),
                    String::new(),
                ));
                return Ok(());
            }
            Err(e) => return Err(io(&path, e)),
        };
        match self.spec.format {
            FileFormat::Json => self.read_lines(schema, &file.name, &bytes, 0, chunk, decode_json),
            FileFormat::Csv => {
                let delimiter = self.spec.options.get("delimiter").map_or(b',', |d| d.as_bytes()[0]);
                let skip = usize::from(self.header());
                self.read_lines(schema, &file.name, &bytes, skip, chunk, |s, b| {
                    decode_csv(s, b, delimiter)
                })
            }
            FileFormat::Parquet => {
                match decode_parquet(schema, bytes) {
                    Ok(b) => chunk.batches.extend(b),
                    Err(e) => chunk.bad_records.push(self.bad(
                        &file.name,
                        None,
                        format!("not a readable Parquet file: {e}"),
                        String::new(),
                    )),
                }
                Ok(())
            }
        }
    }

    /// Decodes a whole text file; when that fails, line by line, keeping the bad lines.
    fn read_lines(
        &self,
        schema: &SchemaRef,
        name: &str,
        bytes: &[u8],
        skip_lines: usize,
        chunk: &mut StreamChunk,
        decode: impl Fn(&SchemaRef, &[u8]) -> std::result::Result<Vec<RecordBatch>, String>,
    ) -> Result<()> {
        let body = skip_first_lines(bytes, skip_lines);
        if let Ok(batches) = decode(schema, body) {
            chunk.batches.extend(batches);
            return Ok(());
        }
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate().skip(skip_lines) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode(schema, line) {
                Ok(b) => chunk.batches.extend(b),
                Err(reason) => chunk.bad_records.push(self.bad(
                    name,
                    Some(i as u64 + 1),
                    reason,
                    String::from_utf8_lossy(line).into_owned(),
                )),
            }
        }
        Ok(())
    }
}

fn skip_first_lines(bytes: &[u8], n: usize) -> &[u8] {
    let mut rest = bytes;
    for _ in 0..n {
        match rest.iter().position(|b| *b == b'\n') {
            Some(i) => rest = &rest[i + 1..],
            None => return &[],
        }
    }
    rest
}

fn decode_csv(schema: &SchemaRef, bytes: &[u8], delimiter: u8) -> std::result::Result<Vec<RecordBatch>, String> {
    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(schema))
        .with_header(false)
        .with_delimiter(delimiter)
        .with_batch_size(8192)
        .build(Cursor::new(bytes))
        .map_err(|e| e.to_string())?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Reads a Parquet file and conforms its columns to the stream's schema (by name; cast; a
/// missing column is null).
fn decode_parquet(schema: &SchemaRef, bytes: Vec<u8>) -> std::result::Result<Vec<RecordBatch>, String> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(|e| e.to_string())?;
        let cols = schema
            .fields()
            .iter()
            .map(|f| match b.column_by_name(f.name()) {
                Some(c) => arrow::compute::cast(c, f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name())),
                None => Ok(new_null_array(f.data_type(), b.num_rows())),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.push(RecordBatch::try_new(Arc::clone(schema), cols).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[async_trait]
impl StreamReader for FileStream {
    fn id(&self) -> &str {
        &self.spec.id
    }

    async fn open(&self, ctx: &SessionContext) -> Result<SchemaRef> {
        if !self.dir.is_dir() {
            return Err(Error::spec(
                "path",
                format!(
                    "a streaming file reader reads a folder; no such folder: {}",
                    self.dir.display()
                ),
            ));
        }
        let schema = match &self.spec.schema {
            Some(_) => {
                let mut spec = self.spec.clone();
                spec.stream = false;
                listing_table(&spec, &[], ctx).await?.schema()
            }
            None => {
                let has_files = std::fs::read_dir(&self.dir)
                    .map_err(|e| io(&self.dir, e))?
                    .filter_map(|e| e.ok())
                    .any(|e| self.takes(&e.file_name().to_string_lossy()));
                if !has_files {
                    return Err(Error::spec(
                        "schema",
                        format!(
                            "the folder {} has no files to infer the schema from: give `schema`",
                            self.dir.display()
                        ),
                    ));
                }
                let mut spec = self.spec.clone();
                spec.stream = false;
                spec.incremental_strategy = None;
                listing_table(&spec, &[], ctx).await?.schema()
            }
        };
        *self.schema.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&schema));
        let wakeup = Arc::clone(&self.wakeup);
        let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| wakeup.notify_one())
            .and_then(|mut w| {
                use notify::Watcher;
                w.watch(&self.dir, notify::RecursiveMode::NonRecursive).map(|()| w)
            });
        match watcher {
            Ok(w) => *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
            Err(e) => tracing::warn!(folder = %self.dir.display(), "no filesystem notifications ({e}); polling"),
        }
        Ok(schema)
    }

    fn position(&self) -> Value {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut files = state.files.clone();
        if let Some(age) = self.spec.max_file_age_seconds {
            let newest = files.values().copied().max().unwrap_or(0);
            files.retain(|_, m| *m >= newest.saturating_sub(age as i64 * 1000));
        }
        serde_json::to_value(Position { files }).unwrap_or_default()
    }

    fn restore(&self, position: &Value) -> Result<()> {
        let p: Position = serde_json::from_value(position.clone())
            .map_err(|e| Error::Internal(format!("file stream position: {e}")))?;
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = p;
        Ok(())
    }

    fn advance(&self, range: &Value) -> Result<()> {
        let r: Range =
            serde_json::from_value(range.clone()).map_err(|e| Error::Internal(format!("file stream range: {e}")))?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for f in r.files {
            state.files.insert(f.name, f.mtime_ms);
        }
        Ok(())
    }

    async fn next_range(&self, max_rows: Option<u64>) -> Result<Option<Value>> {
        let candidates = self.list_new()?;
        let mut files = Vec::new();
        let mut rows = 0u64;
        for mut f in candidates {
            if let Some(max) = max_rows {
                // gone or unreadable: read() reports it
                let n = self.count_rows(&self.dir.join(&f.name)).unwrap_or_default();
                if !files.is_empty() && rows + n > max {
                    break;
                }
                rows += n;
                f.rows = Some(n);
            }
            files.push(f);
        }
        if files.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::to_value(Range { files }).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }

    async fn read(&self, range: &Value) -> Result<StreamChunk> {
        let r: Range =
            serde_json::from_value(range.clone()).map_err(|e| Error::Internal(format!("file stream range: {e}")))?;
        let schema = self.schema()?;
        let mut chunk = StreamChunk::default();
        for f in &r.files {
            self.read_file(&schema, f, &mut chunk)?;
        }
        Ok(chunk)
    }

    async fn wait_for_data(&self, timeout: Duration) {
        let watching = self.watcher.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        let poll = if watching { timeout } else { timeout.min(POLL_FALLBACK) };
        tokio::select! {
            _ = self.wakeup.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }

    fn position_at_time(&self, time: DateTime<Utc>) -> Result<Value> {
        let cutoff = time.timestamp_millis();
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if self.takes(&name) && meta.is_file() && mtime_ms(&meta) < cutoff {
                files.insert(name, mtime_ms(&meta));
            }
        }
        serde_json::to_value(Position { files }).map_err(|e| Error::Internal(e.to_string()))
    }
}
