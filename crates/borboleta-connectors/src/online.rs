//! The embedded online store: the default `OnlineFeatureStoreWriter` target when no server is
//! configured. One SQLite file; per online table, one row per key holding the latest feature
//! row as JSON and its write timestamp. An upsert only replaces a row with a greater write
//! timestamp (event time + tie-break, see [`borboleta_core::time::write_timestamp`]), so an older
//! run or a backfill never overwrites newer values.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use borboleta_engine::sink::latest::batch_to_json_rows;
use borboleta_engine::{Error, LatestPerKey, Result, WriteContext, WriteMetrics, Writer, WriterSession};
use rusqlite::{Connection, OptionalExtension, params};

fn db_err(e: impl Into<borboleta_engine::error::BoxError>) -> Error {
    Error::external_caused("embedded online store", false, "SQLite", e)
}

/// A handle on the embedded online store file.
#[derive(Debug)]
pub struct EmbeddedOnlineStore {
    path: PathBuf,
}

impl EmbeddedOnlineStore {
    /// Opens (or will create) the store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn open(&self) -> Result<Connection> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(db_err)?;
        }
        let conn = Connection::open(&self.path).map_err(|e| db_err(format!("{}: {e}", self.path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS _borboleta_tables (name TEXT PRIMARY KEY, schema BLOB NOT NULL, keys TEXT NOT NULL);",
        )
        .map_err(db_err)?;
        Ok(conn)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Upserts rows (already reduced to one per key) with their write timestamps and JSON.
    /// Returns how many keys changed.
    pub fn upsert(
        &self,
        table: &str,
        schema: &Schema,
        keys: &[String],
        rows: &borboleta_engine::LatestRows,
    ) -> Result<u64> {
        let mut conn = self.open()?;
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute(
            &format!(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, write_ts INTEGER NOT NULL, row TEXT NOT NULL)",
                quote(table)
            ),
            [],
        )
        .map_err(db_err)?;
        tx.execute(
            "INSERT INTO _borboleta_tables(name, schema, keys) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET schema = excluded.schema, keys = excluded.keys",
            params![table, schema_to_bytes(schema)?, keys.join(",")],
        )
        .map_err(db_err)?;
        let key_json = key_json_rows(&rows.batch, keys)?;
        let mut changed = 0u64;
        {
            let mut stmt = tx
                .prepare(&format!(
                    "INSERT INTO {t} (key, write_ts, row) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET write_ts = excluded.write_ts, row = excluded.row
                     WHERE excluded.write_ts > {t}.write_ts",
                    t = quote(table)
                ))
                .map_err(db_err)?;
            for ((k, ts), row) in key_json.iter().zip(&rows.write_timestamps).zip(&rows.json_rows) {
                changed += stmt.execute(params![k, ts, row]).map_err(db_err)? as u64;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(changed)
    }

    /// The current rows of `table` for the given keys (`column=value` strings, cast to the key
    /// types). Keys that are absent give no row.
    pub fn get(&self, table: &str, key_values: &[Vec<(String, String)>]) -> Result<RecordBatch> {
        let conn = self.open()?;
        let Some((schema, keys)) = table_meta(&conn, table)? else {
            return Err(Error::spec(
                "online_feature_store",
                format!(
                    "the online store {} has no table `{table}` yet: run the pipeline first",
                    self.path.display()
                ),
            ));
        };
        let mut found = Vec::new();
        for kv in key_values {
            let key = lookup_key(&schema, &keys, kv)?;
            let row: Option<String> = conn
                .query_row(
                    &format!("SELECT row FROM {} WHERE key = ?1 AND row <> ''", quote(table)),
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            found.extend(row);
        }
        json_rows_to_batch(&schema, &found)
    }

    /// Every row of `table`.
    pub fn scan(&self, table: &str) -> Result<RecordBatch> {
        let conn = self.open()?;
        let schema_bytes: Vec<u8> = conn
            .query_row(
                "SELECT schema FROM _borboleta_tables WHERE name = ?1",
                params![table],
                |r| r.get(0),
            )
            .map_err(|e| db_err(format!("table `{table}`: {e}")))?;
        let schema = schema_from_bytes(&schema_bytes)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT row FROM {} WHERE row <> '' ORDER BY key",
                quote(table)
            ))
            .map_err(db_err)?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?;
        json_rows_to_batch(&schema, &rows)
    }
}

impl EmbeddedOnlineStore {
    /// Deletes the given keys with write timestamp `write_ts` (µs): a tombstone that an older
    /// event cannot overwrite (a newer one can). Returns how many keys had a visible row.
    pub fn delete(&self, table: &str, key_values: &[Vec<(String, String)>], write_ts: i64) -> Result<u64> {
        let conn = self.open()?;
        let Some((schema, keys)) = table_meta(&conn, table)? else {
            return Ok(0);
        };
        let mut deleted = 0;
        for kv in key_values {
            let key = lookup_key(&schema, &keys, kv)?;
            let visible: bool = conn
                .query_row(
                    &format!("SELECT count(*) > 0 FROM {} WHERE key = ?1 AND row <> ''", quote(table)),
                    params![key],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            conn.execute(
                &format!(
                    "INSERT INTO {t} (key, write_ts, row) VALUES (?1, ?2, '')
                     ON CONFLICT(key) DO UPDATE SET write_ts = excluded.write_ts, row = ''
                     WHERE excluded.write_ts > {t}.write_ts",
                    t = quote(table)
                ),
                params![key, write_ts],
            )
            .map_err(db_err)?;
            deleted += u64::from(visible);
        }
        Ok(deleted)
    }
}

/// The schema and key columns of an online table, if it exists.
fn table_meta(conn: &Connection, table: &str) -> Result<Option<(SchemaRef, Vec<String>)>> {
    let meta: Option<(Vec<u8>, String)> = conn
        .query_row(
            "SELECT schema, keys FROM _borboleta_tables WHERE name = ?1",
            params![table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err)?;
    meta.map(|(schema, keys)| {
        Ok((
            schema_from_bytes(&schema)?,
            keys.split(',').map(str::to_string).collect(),
        ))
    })
    .transpose()
}

/// SQLite identifier quoting.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn schema_to_bytes(schema: &Schema) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, schema)?;
        w.finish()?;
    }
    Ok(buf)
}

fn schema_from_bytes(bytes: &[u8]) -> Result<SchemaRef> {
    let r = arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None)?;
    Ok(r.schema())
}

pub(crate) fn json_rows_to_batch(schema: &SchemaRef, rows: &[String]) -> Result<RecordBatch> {
    let text = rows.join("\n");
    let mut reader = arrow::json::ReaderBuilder::new(Arc::clone(schema)).build(Cursor::new(text.into_bytes()))?;
    let mut batches = Vec::new();
    for b in reader.by_ref() {
        batches.push(b?);
    }
    Ok(arrow::compute::concat_batches(schema, &batches)?)
}

/// The key of each row: a JSON object of its key columns.
fn key_json_rows(batch: &RecordBatch, keys: &[String]) -> Result<Vec<String>> {
    let projected = batch.project(
        &keys
            .iter()
            .map(|k| batch.schema().index_of(k))
            .collect::<std::result::Result<Vec<_>, _>>()?,
    )?;
    batch_to_json_rows(&projected)
}

fn lookup_key(schema: &Schema, keys: &[String], kv: &[(String, String)]) -> Result<String> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for k in keys {
        let Some((_, v)) = kv.iter().find(|(name, _)| name == k) else {
            return Err(Error::spec(
                "--key",
                format!("missing key `{k}`; the keys are: {}", keys.join(", ")),
            ));
        };
        let field = schema.field_with_name(k)?;
        let s: ArrayRef = Arc::new(StringArray::from(vec![v.as_str()]));
        let typed = cast(&s, field.data_type())?;
        if typed.null_count() > 0 {
            return Err(Error::spec(
                "--key",
                format!("`{v}` is not a valid {} for key `{k}`", field.data_type()),
            ));
        }
        fields.push(field.clone());
        cols.push(typed);
    }
    for (name, _) in kv {
        if !keys.contains(name) {
            return Err(Error::spec(
                "--key",
                format!("`{name}` is not a key; the keys are: {}", keys.join(", ")),
            ));
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    Ok(batch_to_json_rows(&batch)?.remove(0))
}

/// `OnlineFeatureStoreWriter` into the embedded store.
#[derive(Debug)]
pub struct EmbeddedOnlineWriter {
    store: EmbeddedOnlineStore,
    table: String,
    max_future_skew_micros: i64,
}

impl EmbeddedOnlineWriter {
    /// Writes `table` of the store at `path`.
    pub fn new(path: PathBuf, table: String, max_future_skew_seconds: i64) -> Self {
        Self {
            store: EmbeddedOnlineStore::new(path),
            table,
            max_future_skew_micros: max_future_skew_seconds * 1_000_000,
        }
    }
}

#[async_trait]
impl Writer for EmbeddedOnlineWriter {
    fn name(&self) -> String {
        "online_feature_store".into()
    }
    fn describe(&self) -> borboleta_engine::ConnectorDescription {
        borboleta_engine::ConnectorDescription {
            kind: "Online Feature Store Writer".into(),
            location: self.name(),
            detail: "Online Feature Store Writer".into(),
        }
    }
    async fn begin(&self, wctx: &WriteContext, _epoch: Option<u64>) -> Result<Box<dyn WriterSession>> {
        let now = chrono::Utc::now().timestamp_micros();
        let latest = LatestPerKey::new(
            Arc::clone(&wctx.schema),
            &wctx.keys,
            TIMESTAMP_COLUMN,
            Some(now + self.max_future_skew_micros),
        )?;
        Ok(Box::new(EmbeddedSession {
            store: EmbeddedOnlineStore::new(self.store.path.clone()),
            table: self.table.clone(),
            schema: Arc::clone(&wctx.schema),
            keys: wctx.keys.clone(),
            latest,
        }))
    }
}

struct EmbeddedSession {
    store: EmbeddedOnlineStore,
    table: String,
    schema: SchemaRef,
    keys: Vec<String>,
    latest: LatestPerKey,
}

#[async_trait]
impl WriterSession for EmbeddedSession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.latest.push(batch)
    }
    async fn commit(self: Box<Self>) -> Result<WriteMetrics> {
        let rejected = self.latest.rejected;
        let rows = self.latest.finish()?;
        let keys = rows.batch.num_rows() as u64;
        let changed = self.store.upsert(&self.table, &self.schema, &self.keys, &rows)?;
        Ok(WriteMetrics {
            rows_written: keys,
            rejected,
            detail: format!(
                "table {} in {}; {changed} keys changed, {} kept a newer value",
                self.table,
                self.store.path().display(),
                keys - changed
            ),
            evicted: 0,
        })
    }
}
