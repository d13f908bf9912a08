//! `OnlineFeatureStoreWriter` into Apache Cassandra (scylla driver).
//!
//! Each run or epoch is reduced to the latest row per key by event time, and every row is
//! written with `USING TIMESTAMP` = event time in ms × 1000 + a hash of the row modulo 1000
//! ([`borboleta_core::time::write_timestamp`]): Cassandra's last-write-wins becomes
//! latest-event-wins, so an older event, a replay or a backfill never overwrites a newer value.
//! With `ttl_seconds`, each row lives that long from its event time (`USING TTL` = ttl − age;
//! rows already expired are not written). The table is the feature set's name (the entity's
//! with `write_to_entity`); a missing table is created with a composite partition key
//! `((k1, k2))`, an existing one (Butterfree's `(k1, k2)`) is used as it is.
//!
//! Over 600 lines: the Cassandra store is one unit — connection settings, CQL builders, schema reads, writes, lookups and deletes share its session and name checks; the generic online store of issue 16 will take the writer part out.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
};
use async_trait::async_trait;
use borboleta_core::CassandraConfigSpec;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use borboleta_engine::sink::latest::event_micros;
use borboleta_engine::{Error, LatestPerKey, Result, WriteContext, WriteMetrics, Writer, WriterSession};
use futures::StreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use tokio::sync::OnceCell;

fn cass_err(context: &str, retryable: bool, e: impl Into<borboleta_engine::error::BoxError>) -> Error {
    Error::external_caused("cassandra", retryable, context, e)
}

/// A driver error: retryable unless Cassandra refused the request itself (an invalid or
/// unauthorized statement, a schema problem), which no retry fixes.
fn driver_err(context: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let debug = format!("{e:?}");
    let refused = [
        "DbError(Invalid",
        "DbError(SyntaxError",
        "DbError(Unauthorized",
        "DbError(AuthenticationError",
        "DbError(ConfigError",
        "BadQuery",
    ]
    .iter()
    .any(|k| debug.contains(k));
    cass_err(context, !refused, e)
}

/// Settings resolved from the spec and Butterfree's environment variables.
#[derive(Clone)]
pub struct CassandraConfig {
    /// Contact points (`host` or `host:port`).
    pub hosts: Vec<String>,
    /// Keyspace.
    pub keyspace: String,
    /// Local datacenter.
    pub local_dc: Option<String>,
    credentials: Option<(String, String)>,
    /// Read consistency.
    pub read_consistency: Consistency,
    /// Write consistency.
    pub write_consistency: Consistency,
    /// Create the keyspace if missing.
    pub create_keyspace: bool,
    /// TLS: the CA file (PEM) the nodes' certificates are verified against.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for CassandraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraConfig")
            .field("hosts", &self.hosts)
            .field("keyspace", &self.keyspace)
            .field("local_dc", &self.local_dc)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive() // the password is never printed
    }
}

fn consistency(path: &str, s: &str) -> Result<Consistency> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        other => return Err(Error::spec(path, format!("unknown consistency level `{other}`"))),
    })
}

impl CassandraConfig {
    /// Resolves the spec against the environment (`env` looks a variable up).
    pub fn resolve(spec: &CassandraConfigSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let port = spec.port.unwrap_or(9042);
        let hosts: Vec<String> = match &spec.hosts {
            Some(h) => h
                .to_vec()
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::to_string)
                .collect(),
            None => env("CASSANDRA_HOST")
                .unwrap_or_else(|| "127.0.0.1".into())
                .split(',')
                .map(str::to_string)
                .collect(),
        };
        let hosts = hosts
            .into_iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .map(|h| if h.contains(':') { h } else { format!("{h}:{port}") })
            .collect();
        let keyspace = spec
            .keyspace
            .clone()
            .or_else(|| env("CASSANDRA_KEYSPACE"))
            .ok_or_else(|| {
                Error::spec(
                    "cassandra.keyspace",
                    "no keyspace: set `cassandra.keyspace` or CASSANDRA_KEYSPACE",
                )
            })?;
        if !borboleta_core::validate::is_identifier(&keyspace) {
            return Err(Error::spec(
                "cassandra.keyspace",
                format!("`{keyspace}` is not a valid keyspace name"),
            ));
        }
        let user = spec.username.clone().or_else(|| env("CASSANDRA_USERNAME"));
        let password = spec.password.clone().or_else(|| env("CASSANDRA_PASSWORD"));
        let read = spec
            .read_consistency
            .clone()
            .or_else(|| env("CASSANDRA_READ_CONSISTENCY_LEVEL"));
        let write = spec
            .write_consistency
            .clone()
            .or_else(|| env("CASSANDRA_WRITE_CONSISTENCY_LEVEL"));
        Ok(Self {
            hosts,
            keyspace,
            local_dc: spec.local_dc.clone().or_else(|| env("CASSANDRA_LOCAL_DC")),
            credentials: user.zip(password),
            read_consistency: consistency("cassandra.read_consistency", read.as_deref().unwrap_or("LOCAL_ONE"))?,
            write_consistency: consistency(
                "cassandra.write_consistency",
                write.as_deref().unwrap_or("LOCAL_QUORUM"),
            )?,
            create_keyspace: spec.create_keyspace,
            tls_ca_file: spec.tls.as_ref().map(|t| t.ca_file.clone().into()),
        })
    }
}

/// CQL identifier quoting (names are checked by [`check_name`] first).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks a name before it goes into CQL: keyspaces and tables are Cassandra's
/// `[A-Za-z0-9_]{1,48}`; a column is any non-empty name without control characters (it is
/// always quoted).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = match what {
        "keyspace" | "table" => {
            !name.is_empty() && name.len() <= 48 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => !name.is_empty() && !name.chars().any(char::is_control),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::spec(
            "cassandra",
            format!("`{name}` is not a valid Cassandra {what} name"),
        ))
    }
}

/// `"keyspace"."table"`, both checked.
fn table_ref(keyspace: &str, table: &str) -> Result<String> {
    check_name("keyspace", keyspace)?;
    check_name("table", table)?;
    Ok(format!("{}.{}", quote(keyspace), quote(table)))
}

/// `CREATE KEYSPACE IF NOT EXISTS` with SimpleStrategy and replication factor 1 (local use).
pub fn create_keyspace_cql(keyspace: &str) -> Result<String> {
    check_name("keyspace", keyspace)?;
    Ok(format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        quote(keyspace)
    ))
}

/// `CREATE TABLE IF NOT EXISTS` with `columns` (name, CQL type) and every key in the partition
/// key `((k1, k2))`.
pub fn create_table_cql(keyspace: &str, table: &str, columns: &[(String, String)], keys: &[String]) -> Result<String> {
    let mut cols = Vec::new();
    for (name, t) in columns {
        check_name("column", name)?;
        cols.push(format!("{} {t}", quote(name)));
    }
    for k in keys {
        check_name("column", k)?;
    }
    let pk: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY (({})))",
        table_ref(keyspace, table)?,
        cols.join(", "),
        pk.join(", ")
    ))
}

/// `ALTER TABLE … ADD "column" type`.
pub fn add_column_cql(keyspace: &str, table: &str, column: &str, cql_type: &str) -> Result<String> {
    check_name("column", column)?;
    Ok(format!(
        "ALTER TABLE {} ADD {} {cql_type}",
        table_ref(keyspace, table)?,
        quote(column)
    ))
}

/// `DROP TABLE IF EXISTS …`.
pub fn drop_table_cql(keyspace: &str, table: &str) -> Result<String> {
    Ok(format!("DROP TABLE IF EXISTS {}", table_ref(keyspace, table)?))
}

/// Whether a live column type (`system_schema`) is the type wanted (`varchar` is `text`).
pub fn same_cql_type(have: &str, want: &str) -> bool {
    have.eq_ignore_ascii_case(want) || (have == "varchar" && want == "text")
}

/// The CQL type of each column of `schema` (an error names a column with no CQL type).
pub fn cql_columns(schema: &Schema) -> Result<Vec<(String, String)>> {
    schema
        .fields()
        .iter()
        .map(|f| {
            cql_type(f.data_type()).map(|t| (f.name().clone(), t)).ok_or_else(|| {
                Error::spec(
                    "feature_set",
                    format!("column `{}`: type {} has no Cassandra type", f.name(), f.data_type()),
                )
            })
        })
        .collect()
}

/// A column of a live Cassandra table, from `system_schema.columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveColumn {
    /// Name.
    pub name: String,
    /// CQL type, as `system_schema` writes it (`bigint`, `list<text>`, ...).
    pub cql_type: String,
    /// `partition_key`, `clustering`, `regular` or `static`.
    pub kind: String,
    /// Position within the partition key or the clustering columns (-1 for the others).
    pub position: i32,
}

impl LiveColumn {
    /// Part of the primary key.
    pub fn is_key(&self) -> bool {
        self.kind == "partition_key" || self.kind == "clustering"
    }
}

/// The CQL type of an Arrow type.
pub fn cql_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Int64 => "bigint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Float64 => "double".into(),
        DataType::Float32 => "float".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Date32 => "date".into(),
        DataType::List(f) => format!("list<{}>", cql_type(f.data_type())?),
        _ => return None,
    })
}

/// The value at `row` as a CQL value.
fn cql_value(col: &ArrayRef, row: usize) -> Result<Option<CqlValue>> {
    if col.is_null(row) {
        return Ok(None);
    }
    Ok(Some(match col.data_type() {
        DataType::Int64 => CqlValue::BigInt(col.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => CqlValue::Int(col.as_primitive::<Int32Type>().value(row)),
        DataType::Int16 => CqlValue::SmallInt(col.as_primitive::<Int16Type>().value(row)),
        DataType::Float64 => CqlValue::Double(col.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => CqlValue::Float(col.as_primitive::<Float32Type>().value(row)),
        DataType::Utf8 => CqlValue::Text(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => CqlValue::Text(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => CqlValue::Text(col.as_string_view().value(row).to_string()),
        DataType::Boolean => CqlValue::Boolean(col.as_boolean().value(row)),
        DataType::Timestamp(_, _) => {
            let micros = event_micros(&col.slice(row, 1))?;
            CqlValue::Timestamp(CqlTimestamp(micros.value(0).div_euclid(1000)))
        }
        DataType::Date32 => CqlValue::Date(scylla::value::CqlDate(
            (1u32 << 31).wrapping_add(col.as_primitive::<Date32Type>().value(row) as u32),
        )),
        DataType::List(_) => {
            let list = col.as_list::<i32>().value(row);
            let mut items = Vec::with_capacity(list.len());
            for i in 0..list.len() {
                if let Some(v) = cql_value(&list, i)? {
                    items.push(v);
                }
            }
            CqlValue::List(items)
        }
        other => {
            return Err(Error::spec(
                "feature_set",
                format!("type {other} has no Cassandra type"),
            ));
        }
    }))
}

/// A CQL value as JSON (for reading rows back into Arrow).
fn cql_to_json(v: &CqlValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        CqlValue::BigInt(x) => J::from(*x),
        CqlValue::Int(x) => J::from(*x),
        CqlValue::SmallInt(x) => J::from(*x),
        CqlValue::Double(x) => J::from(*x),
        CqlValue::Float(x) => J::from(*x),
        CqlValue::Text(s) | CqlValue::Ascii(s) => J::from(s.clone()),
        CqlValue::Boolean(b) => J::from(*b),
        CqlValue::Timestamp(t) => chrono::DateTime::from_timestamp_millis(t.0).map_or(J::Null, |d| {
            J::from(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }),
        CqlValue::Date(d) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(d.0) - (1i64 << 31))))
            .map_or(J::Null, |d| J::from(d.to_string())),
        CqlValue::List(items) | CqlValue::Set(items) => J::Array(items.iter().map(cql_to_json).collect()),
        _ => J::Null,
    }
}

/// A rustls client configuration that trusts the certificates of the PEM file `ca` (and no
/// other root). The driver verifies each node's certificate for the IP address it connects to.
fn tls_config(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| {
        Error::spec(
            "cassandra.tls.ca_file",
            format!("cannot read the CA file {}: {e}", ca.display()),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no certificate in it"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection to Cassandra and one keyspace.
pub struct CassandraOnlineStore {
    config: CassandraConfig,
    session: OnceCell<Arc<Session>>,
}

impl std::fmt::Debug for CassandraOnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraOnlineStore")
            .field("config", &self.config)
            .finish()
    }
}

impl CassandraOnlineStore {
    /// A store for `config`; connects on first use.
    pub fn new(config: CassandraConfig) -> Self {
        Self {
            config,
            session: OnceCell::new(),
        }
    }

    /// The session (connected once).
    pub async fn session(&self) -> Result<Arc<Session>> {
        self.session
            .get_or_try_init(|| async {
                let c = &self.config;
                let mut b = SessionBuilder::new()
                    .known_nodes(&c.hosts)
                    .connection_timeout(Duration::from_secs(10));
                if let Some((u, p)) = &c.credentials {
                    b = b.user(u, p);
                }
                if let Some(dc) = &c.local_dc {
                    b = b.prefer_datacenter(dc.clone());
                }
                if let Some(ca) = &c.tls_ca_file {
                    b = b.tls_context(Some(tls_config(ca)?));
                }
                // bad credentials are not retryable; an unreachable cluster is
                let session = b
                    .build()
                    .await
                    .map_err(|e| driver_err(&format!("cannot connect to Cassandra at {}", c.hosts.join(",")), e))?;
                if c.create_keyspace {
                    session
                        .query_unpaged(create_keyspace_cql(&c.keyspace)?, ())
                        .await
                        .map_err(|e| driver_err("cannot create the keyspace", e))?;
                }
                Ok(Arc::new(session))
            })
            .await
            .cloned()
    }

    /// `"keyspace"."table"`, checked as the DDL builders check it.
    fn table_ref(&self, table: &str) -> Result<String> {
        table_ref(&self.config.keyspace, table)
    }

    /// The keyspace.
    pub fn keyspace(&self) -> &str {
        &self.config.keyspace
    }

    /// The contact points, for messages.
    pub fn hosts(&self) -> String {
        self.config.hosts.join(",")
    }

    /// Runs one schema statement (`CREATE`, `ALTER`, `DROP`).
    pub async fn execute_ddl(&self, cql: &str) -> Result<()> {
        self.session()
            .await?
            .query_unpaged(cql, ())
            .await
            .map_err(|e| driver_err(&format!("`{cql}` failed"), e))?;
        Ok(())
    }

    /// Whether the keyspace exists.
    pub async fn keyspace_exists(&self) -> Result<bool> {
        let result = self
            .session()
            .await?
            .query_unpaged(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (&self.config.keyspace,),
            )
            .await
            .map_err(|e| cass_err("cannot read system_schema", true, e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| cass_err("system_schema", false, e))?;
        Ok(rows.rows_num() > 0)
    }

    /// The columns of `table` from `system_schema.columns`, or `None` when it does not exist.
    /// This is the one schema reader of the writer's compatibility check and of migrations.
    pub async fn live_table(&self, table: &str) -> Result<Option<Vec<LiveColumn>>> {
        let session = self.session().await?;
        let result = session
            .query_unpaged(
                "SELECT column_name, type, kind, position FROM system_schema.columns \
                 WHERE keyspace_name = ? AND table_name = ?",
                (&self.config.keyspace, table),
            )
            .await
            .map_err(|e| cass_err("cannot read system_schema", true, e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| cass_err("system_schema", false, e))?;
        let mut out = Vec::new();
        for r in rows
            .rows::<(String, String, String, i32)>()
            .map_err(|e| cass_err("system_schema", false, e))?
        {
            let (name, cql_type, kind, position) = r.map_err(|e| cass_err("system_schema", false, e))?;
            out.push(LiveColumn {
                name,
                cql_type,
                kind,
                position,
            });
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Creates the table for feature rows of `schema` keyed by `keys` if it does not exist
    /// (a composite partition key `((k1, k2))`), then checks that the table has every column
    /// with the same type (Butterfree's `CassandraTableSchemaCompatibilityHook`).
    pub async fn ensure_table(&self, table: &str, schema: &Schema, keys: &[String]) -> Result<()> {
        let columns = cql_columns(schema)?;
        let live = match self.live_table(table).await? {
            Some(live) => live,
            None => {
                self.execute_ddl(&create_table_cql(&self.config.keyspace, table, &columns, keys)?)
                    .await?;
                self.live_table(table).await?.unwrap_or_default()
            }
        };
        let problems: Vec<String> = columns
            .iter()
            .filter_map(|(name, want)| match live.iter().find(|c| &c.name == name) {
                Some(c) if same_cql_type(&c.cql_type, want) => None,
                Some(c) => Some(format!("`{name}` is {} in the table, {want} here", c.cql_type)),
                None => Some(format!("`{name}` is not in the table")),
            })
            .collect();
        if !problems.is_empty() {
            return Err(Error::spec(
                "writers",
                format!(
                    "the feature rows do not fit the existing Cassandra table {}.{table}: {} \
                     (`borboleta migrate apply` adds missing columns)",
                    self.config.keyspace,
                    problems.join("; ")
                ),
            ));
        }
        Ok(())
    }

    /// Writes rows (one per key) with their write timestamps (µs) and optional TTL counted
    /// from each row's event time. Returns the rows written (expired rows are skipped).
    pub async fn upsert(
        &self,
        table: &str,
        batch: &RecordBatch,
        write_timestamps: &[i64],
        ttl_seconds: Option<u64>,
    ) -> Result<u64> {
        let session = self.session().await?;
        let schema = batch.schema();
        let names: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
        let marks = vec!["?"; names.len()].join(", ");
        let using = if ttl_seconds.is_some() {
            "USING TIMESTAMP ? AND TTL ?"
        } else {
            "USING TIMESTAMP ?"
        };
        let cql = format!(
            "INSERT INTO {} ({}) VALUES ({marks}) {using}",
            self.table_ref(table)?,
            names.join(", ")
        );
        let mut prepared = session
            .prepare(cql)
            .await
            .map_err(|e| driver_err(&format!("cannot prepare the insert into {table}"), e))?;
        prepared.set_consistency(self.config.write_consistency);
        let ts_idx = schema.index_of(TIMESTAMP_COLUMN)?;
        let event = event_micros(batch.column(ts_idx))?;
        let now = chrono::Utc::now().timestamp_micros();
        let mut rows = Vec::with_capacity(batch.num_rows());
        for (r, wts) in write_timestamps.iter().enumerate() {
            let mut values: Vec<Option<CqlValue>> = Vec::with_capacity(names.len() + 2);
            for c in batch.columns() {
                values.push(cql_value(c, r)?);
            }
            values.push(Some(CqlValue::BigInt(*wts)));
            if let Some(ttl) = ttl_seconds {
                let age = (now - event.value(r)).max(0) / 1_000_000;
                let left = ttl as i64 - age;
                if left <= 0 {
                    continue; // expired already: not written
                }
                values.push(Some(CqlValue::Int(left.min(i64::from(i32::MAX)) as i32)));
            }
            rows.push(values);
        }
        let written = rows.len() as u64;
        // Many writes in flight, bounded; a failed write is retried with backoff (it carries its
        // own timestamp, so a retry is idempotent). After that the error is retryable: the
        // stream waits and replays the epoch, without committing it.
        let prepared = &prepared;
        let session = &session;
        let mut results = futures::stream::iter(rows.into_iter().map(|values| async move {
            let mut delay = Duration::from_millis(100);
            let mut attempt = 0;
            loop {
                match session.execute_unpaged(prepared, &values).await {
                    Ok(_) => return Ok(()),
                    Err(e) if attempt < 3 => {
                        tracing::warn!(attempt, "cassandra write failed ({e}); retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                    Err(e) => return Err(driver_err("write failed after 4 attempts", e)),
                }
            }
        }))
        .buffer_unordered(256);
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(written)
    }

    /// The current rows of `table` for the given keys (`column=value` strings); `columns` are
    /// the feature-row columns in order. Keys that are absent give no row.
    pub async fn get(
        &self,
        table: &str,
        columns: &[String],
        keys: &[String],
        key_values: &[Vec<(String, String)>],
    ) -> Result<RecordBatch> {
        self.lookup(table, columns, keys).await?.get(key_values).await
    }

    /// A reader of `table` by key with its statement prepared once (reuse it: a lookup is then
    /// one request per key, the keys of one call in parallel).
    pub async fn lookup(&self, table: &str, columns: &[String], keys: &[String]) -> Result<CassandraLookup> {
        let session = self.session().await?;
        let types = self.column_types(table).await?;
        let mut fields = Vec::new();
        for c in columns {
            let t = types
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, t)| t.as_str())
                .ok_or_else(|| {
                    Error::spec(
                        "online_feature_store",
                        format!("the Cassandra table {table} has no column `{c}`: migrate it first"),
                    )
                })?;
            fields.push(arrow::datatypes::Field::new(c, arrow_type(t), true));
        }
        let cql = format!(
            "SELECT {} FROM {} WHERE {}",
            columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
            self.table_ref(table)?,
            key_predicate(keys)
        );
        let mut prepared = session
            .prepare(cql)
            .await
            .map_err(|e| cass_err(&format!("cannot read {table}"), false, e))?;
        prepared.set_consistency(self.config.read_consistency);
        Ok(CassandraLookup {
            session,
            prepared,
            schema: Arc::new(Schema::new(fields)),
            columns: columns.to_vec(),
            keys: keys.to_vec(),
            types,
        })
    }

    /// Deletes the given keys `USING TIMESTAMP write_ts` (µs): the delete wins over every
    /// write with a smaller timestamp (an event older than the delete), not over newer ones.
    pub async fn delete(
        &self,
        table: &str,
        keys: &[String],
        key_values: &[Vec<(String, String)>],
        write_ts: i64,
    ) -> Result<u64> {
        let session = self.session().await?;
        let types = self.column_types(table).await?;
        let cql = format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE {}",
            self.table_ref(table)?,
            key_predicate(keys)
        );
        let mut prepared = session
            .prepare(cql)
            .await
            .map_err(|e| driver_err(&format!("cannot delete from {table}"), e))?;
        prepared.set_consistency(self.config.write_consistency);
        for kv in key_values {
            let mut values = vec![CqlValue::BigInt(write_ts)];
            values.extend(bind_key(keys, kv, &types)?);
            session
                .execute_unpaged(&prepared, &values)
                .await
                .map_err(|e| driver_err("delete failed", e))?;
        }
        Ok(key_values.len() as u64)
    }

    /// Column names and CQL types of `table`, from `system_schema`.
    pub async fn column_types(&self, table: &str) -> Result<Vec<(String, String)>> {
        match self.live_table(table).await? {
            Some(cols) => Ok(cols.into_iter().map(|c| (c.name, c.cql_type)).collect()),
            None => Err(Error::spec(
                "online_feature_store",
                format!(
                    "Cassandra has no table {}.{table} yet: run the pipeline first",
                    self.config.keyspace
                ),
            )),
        }
    }
}

/// Reads one table by key with a prepared statement ([`CassandraOnlineStore::lookup`]).
pub struct CassandraLookup {
    session: Arc<Session>,
    prepared: scylla::statement::prepared::PreparedStatement,
    schema: SchemaRef,
    columns: Vec<String>,
    keys: Vec<String>,
    types: Vec<(String, String)>,
}

impl std::fmt::Debug for CassandraLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraLookup")
            .field("columns", &self.columns)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl CassandraLookup {
    /// The rows of the given keys (`column=value` strings), in key order; an absent key gives
    /// no row. The keys are read in parallel (up to 64 requests in flight).
    pub async fn get(&self, key_values: &[Vec<(String, String)>]) -> Result<RecordBatch> {
        let mut bound = Vec::with_capacity(key_values.len());
        for kv in key_values {
            bound.push(bind_key(&self.keys, kv, &self.types)?);
        }
        let results: Vec<Result<Vec<String>>> = futures::stream::iter(bound.iter().map(|values| async move {
            let result = self
                .session
                .execute_unpaged(&self.prepared, values)
                .await
                .map_err(|e| cass_err("read failed", true, e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| cass_err("read failed", false, e))?;
            let mut out = Vec::new();
            for row in rows.rows::<Row>().map_err(|e| cass_err("read failed", false, e))? {
                let row = row.map_err(|e| cass_err("read failed", false, e))?;
                let mut obj = serde_json::Map::new();
                for (c, v) in self.columns.iter().zip(row.columns) {
                    obj.insert(c.clone(), v.as_ref().map_or(serde_json::Value::Null, cql_to_json));
                }
                out.push(serde_json::Value::Object(obj).to_string());
            }
            Ok(out)
        }))
        .buffered(64)
        .collect()
        .await;
        let mut json_rows = Vec::new();
        for r in results {
            json_rows.extend(r?);
        }
        crate::online::json_rows_to_batch(&self.schema, &json_rows)
    }
}

/// The Arrow type of a CQL type.
fn arrow_type(t: &str) -> DataType {
    match t {
        "bigint" | "counter" => DataType::Int64,
        "int" => DataType::Int32,
        "smallint" => DataType::Int16,
        "double" => DataType::Float64,
        "float" => DataType::Float32,
        "boolean" => DataType::Boolean,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "date" => DataType::Date32,
        t if t.starts_with("list<") && t.ends_with('>') => DataType::List(Arc::new(arrow::datatypes::Field::new(
            "item",
            arrow_type(&t[5..t.len() - 1]),
            true,
        ))),
        _ => DataType::Utf8,
    }
}

/// `"k1" = ? AND "k2" = ?`.
fn key_predicate(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{} = ?", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The values of one key (`column=value` strings) in `keys` order, typed by `cql_types`
/// (column → CQL type); a missing key or a column that is not a key is an error.
fn bind_key(keys: &[String], kv: &[(String, String)], cql_types: &[(String, String)]) -> Result<Vec<CqlValue>> {
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        let Some((_, v)) = kv.iter().find(|(n, _)| n == k) else {
            return Err(Error::spec(
                "--key",
                format!("missing key `{k}`; the keys are: {}", keys.join(", ")),
            ));
        };
        let t = cql_types
            .iter()
            .find(|(n, _)| n == k)
            .map_or("text", |(_, t)| t.as_str());
        values.push(parse_key(k, v, &arrow_type(t))?);
    }
    for (name, _) in kv {
        if !keys.contains(name) {
            return Err(Error::spec(
                "--key",
                format!("`{name}` is not a key; the keys are: {}", keys.join(", ")),
            ));
        }
    }
    Ok(values)
}

fn parse_key(k: &str, v: &str, t: &DataType) -> Result<CqlValue> {
    let bad = || Error::spec("--key", format!("`{v}` is not a valid {t} for key `{k}`"));
    Ok(match t {
        DataType::Int64 => CqlValue::BigInt(v.parse().map_err(|_| bad())?),
        DataType::Int32 => CqlValue::Int(v.parse().map_err(|_| bad())?),
        DataType::Int16 => CqlValue::SmallInt(v.parse().map_err(|_| bad())?),
        DataType::Float64 => CqlValue::Double(v.parse().map_err(|_| bad())?),
        DataType::Float32 => CqlValue::Float(v.parse().map_err(|_| bad())?),
        DataType::Boolean => CqlValue::Boolean(v.parse().map_err(|_| bad())?),
        _ => CqlValue::Text(v.to_string()),
    })
}

/// `OnlineFeatureStoreWriter` into Cassandra.
#[derive(Debug)]
pub struct CassandraOnlineWriter {
    store: Arc<CassandraOnlineStore>,
    table: String,
    ttl_seconds: Option<u64>,
    max_future_skew_micros: i64,
    table_ready: OnceCell<()>,
}

impl CassandraOnlineWriter {
    /// Writes `table` in the store.
    pub fn new(
        store: CassandraOnlineStore,
        table: String,
        ttl_seconds: Option<u64>,
        max_future_skew_seconds: i64,
    ) -> Self {
        Self {
            store: Arc::new(store),
            table,
            ttl_seconds,
            max_future_skew_micros: max_future_skew_seconds * 1_000_000,
            table_ready: OnceCell::new(),
        }
    }
}

#[async_trait]
impl Writer for CassandraOnlineWriter {
    fn name(&self) -> String {
        "online_feature_store (cassandra)".into()
    }
    fn describe(&self) -> borboleta_engine::ConnectorDescription {
        borboleta_engine::ConnectorDescription {
            kind: "Online Feature Store Writer".into(),
            location: self.name(),
            detail: "Online Feature Store Writer".into(),
        }
    }
    fn prepare(&self, _ctx: &datafusion::prelude::SessionContext, wctx: &WriteContext) -> Result<()> {
        for f in wctx.schema.fields() {
            if cql_type(f.data_type()).is_none() {
                return Err(Error::spec(
                    "writers",
                    format!("column `{}`: type {} has no Cassandra type", f.name(), f.data_type()),
                ));
            }
        }
        Ok(())
    }
    /// A stream connects (and creates the table) before its first epoch, so an unreachable
    /// Cassandra fails at start.
    async fn recover(&self, wctx: &WriteContext, _stream_id: &str, _last_committed: Option<u64>) -> Result<()> {
        self.table_ready
            .get_or_try_init(|| self.store.ensure_table(&self.table, &wctx.schema, &wctx.keys))
            .await?;
        Ok(())
    }
    async fn begin(&self, wctx: &WriteContext, _epoch: Option<u64>) -> Result<Box<dyn WriterSession>> {
        self.table_ready
            .get_or_try_init(|| self.store.ensure_table(&self.table, &wctx.schema, &wctx.keys))
            .await?;
        let now = chrono::Utc::now().timestamp_micros();
        Ok(Box::new(CassandraSession {
            store: Arc::clone(&self.store),
            table: self.table.clone(),
            ttl_seconds: self.ttl_seconds,
            latest: LatestPerKey::new(
                Arc::clone(&wctx.schema),
                &wctx.keys,
                TIMESTAMP_COLUMN,
                Some(now + self.max_future_skew_micros),
            )?,
        }))
    }
}

struct CassandraSession {
    store: Arc<CassandraOnlineStore>,
    table: String,
    ttl_seconds: Option<u64>,
    latest: LatestPerKey,
}

#[async_trait]
impl WriterSession for CassandraSession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.latest.push(batch)
    }
    async fn commit(self: Box<Self>) -> Result<WriteMetrics> {
        let rejected = self.latest.rejected;
        let rows = self.latest.finish()?;
        let written = self
            .store
            .upsert(&self.table, &rows.batch, &rows.write_timestamps, self.ttl_seconds)
            .await?;
        Ok(WriteMetrics {
            rows_written: written,
            rejected,
            detail: format!(
                "table {}.{} in Cassandra ({} keys; event-time ordered)",
                self.store.config.keyspace,
                self.table,
                rows.batch.num_rows()
            ),
            evicted: 0,
        })
    }
}

#[cfg(test)]
#[path = "cassandra_tests.rs"]
mod tests;
