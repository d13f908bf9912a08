//! # Borboleta
//!
//! Butterfree's feature-set pipelines in Rust: declare readers, a source SQL query, a feature
//! set (keys + `timestamp` + features) and writers — in YAML or with the builder — and run them.
//!
//! ```no_run
//! # async fn example() -> borboleta::Result<()> {
//! let spec = borboleta::FeatureSetPipelineSpec::from_yaml_file("examples/events/pipeline.yaml")?;
//! let pipeline = borboleta::build_pipeline(spec, &borboleta::PipelineOptions::default()).await?;
//! let summary = pipeline.run(borboleta::RunOptions::default()).await?;
//! println!("{summary}");
//! # Ok(()) }
//! ```
//!
//! Extension points: [`engine::Reader`], [`engine::StreamReader`] and [`engine::Writer`]; Rust
//! functions as UDFs ([`PipelineOptions::udfs`]) and hooks ([`PipelineOptions::hooks`]).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod describe;
#[cfg(feature = "cassandra")]
pub mod migrate;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
pub use borboleta_connectors as connectors;
#[cfg(feature = "cassandra")]
use borboleta_connectors::CassandraOnlineStore;
use borboleta_connectors::{BuildContext, EmbeddedOnlineStore};
pub use borboleta_core as core;
pub use borboleta_core::{
    FeatureDataType, FeatureSetPipelineSpec, FeatureSetSpec, FeatureSpec, ReaderSpec, SpecIssue, SpecIssues,
    TimestampFeatureSpec, WriterSpec,
};
use borboleta_core::{OnlineWriterSpec, resolve_path};
pub use borboleta_engine as engine;
pub use borboleta_engine::{
    Error, FeatureSetPipeline, Result, RunOptions, RunSummary, StreamHandle, StreamOptions, StreamStatus,
};

/// How a pipeline is built from its spec.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Run every writer in debug mode (in-memory tables), whatever the spec says.
    pub debug: bool,
    /// Object stores for readers' URLs, by base URL (`memory://`, a configured `s3://bucket`…),
    /// registered on the pipeline's session before the readers open. `s3://` URLs without one
    /// here get a store configured from the `AWS_*` environment variables.
    pub object_stores: Vec<(url::Url, Arc<dyn object_store::ObjectStore>)>,
    /// Cap of the query memory pool in bytes (sorts and aggregations spill beyond it).
    pub memory_limit: Option<usize>,
    /// User-defined functions, registered on the pipeline's session before it is planned: a spec
    /// uses them by name in `spark_function` transforms, SQL expressions and the source query.
    pub udfs: Vec<datafusion::logical_expr::ScalarUDF>,
    /// Hooks written in Rust, run after the spec's SQL hooks at the same point.
    pub hooks: borboleta_engine::hooks::RustHooks,
}

pub use borboleta_connectors::DEFAULT_MAX_FUTURE_SKEW_SECONDS;

/// Builds the readers and writers of `spec` and opens the pipeline (every spec problem is
/// reported before anything is written).
pub async fn build_pipeline(spec: FeatureSetPipelineSpec, opts: &PipelineOptions) -> Result<FeatureSetPipeline> {
    let lines = spec.yaml_lines.clone();
    build(spec, opts).await.map_err(|mut e| {
        if let (Error::Spec(issues), Some(lines)) = (&mut e, lines) {
            lines.locate(issues);
        }
        e
    })
}

async fn build(spec: FeatureSetPipelineSpec, opts: &PipelineOptions) -> Result<FeatureSetPipeline> {
    let cx = BuildContext {
        spec: &spec,
        debug: opts.debug,
    };
    let readers = spec
        .readers
        .iter()
        .map(|r| borboleta_connectors::build_reader(r, &cx))
        .collect::<Result<Vec<_>>>()?;
    let writers = spec
        .writers
        .iter()
        .map(|w| borboleta_connectors::build_writer(w, &cx))
        .collect::<Result<Vec<_>>>()?;
    let ctx = borboleta_engine::session::new_session_with(opts.memory_limit, opts.hooks.clone());
    for (url, store) in &opts.object_stores {
        ctx.register_object_store(url, Arc::clone(store));
    }
    for udf in &opts.udfs {
        ctx.register_udf(udf.clone());
    }
    FeatureSetPipeline::try_new_in(ctx, spec, readers, writers).await
}

/// The checkpoint folder of a streaming spec: `<root>/<entity>/<feature set>`, the root from
/// `streaming.checkpoint_path` or the `STREAM_CHECKPOINT_PATH` environment variable.
pub fn checkpoint_dir(spec: &FeatureSetPipelineSpec) -> Option<PathBuf> {
    let root = spec
        .streaming
        .as_ref()
        .and_then(|s| s.checkpoint_path.clone())
        .or_else(|| std::env::var("STREAM_CHECKPOINT_PATH").ok().filter(|v| !v.is_empty()))?;
    let fs = &spec.feature_set;
    Some(
        PathBuf::from(resolve_path(spec.base_dir.as_deref(), &root))
            .join(&fs.entity)
            .join(&fs.name),
    )
}

/// How to start a streaming pipeline from its spec.
#[derive(Debug, Clone, Default)]
pub struct StreamStartOptions {
    /// Run without a checkpoint (positions in memory only: a restart reads everything again).
    pub no_checkpoint: bool,
    /// Process what is there, then stop (overrides the spec).
    pub available_now: bool,
}

/// The [`StreamOptions`] of a streaming spec. Without a checkpoint root (spec or
/// `STREAM_CHECKPOINT_PATH`) this is a spec error unless `no_checkpoint` is set (Butterfree
/// silently uses a temporary folder, so a restart reprocesses or loses data).
pub fn stream_options(spec: &FeatureSetPipelineSpec, start: &StreamStartOptions) -> Result<StreamOptions> {
    let s = spec.streaming_or_default();
    let checkpoint = match (checkpoint_dir(spec), start.no_checkpoint) {
        (_, true) => None,
        (Some(d), false) => Some(d),
        (None, false) => {
            return Err(Error::spec(
                "streaming.checkpoint_path",
                "a streaming pipeline needs a checkpoint: set `streaming.checkpoint_path` or \
                 STREAM_CHECKPOINT_PATH, or run with --no-checkpoint (a restart then reads everything again)",
            ));
        }
    };
    let fs = &spec.feature_set;
    let dead_letter_dir = match (&s.dead_letter_path, &checkpoint) {
        (Some(p), _) => PathBuf::from(resolve_path(spec.base_dir.as_deref(), p)),
        (None, Some(c)) => c.join("dead_letter"),
        (None, None) => spec
            .default_store_root()
            .join("dead_letter")
            .join(&fs.entity)
            .join(&fs.name),
    };
    let skew = spec
        .writers
        .iter()
        .find_map(|w| match w {
            WriterSpec::OnlineFeatureStore(o) => o.max_future_skew_seconds,
            _ => None,
        })
        .unwrap_or(DEFAULT_MAX_FUTURE_SKEW_SECONDS);
    Ok(StreamOptions {
        checkpoint_dir: checkpoint,
        dead_letter_dir,
        available_now: start.available_now || s.available_now,
        processing_time: std::time::Duration::from_millis(s.processing_time_ms),
        max_rows_per_batch: s.max_rows_per_batch,
        static_refresh: s.static_refresh_seconds.map(std::time::Duration::from_secs),
        on_bad_record: s.on_bad_record,
        max_future_skew: std::time::Duration::from_secs(skew.max(0) as u64),
        on_epoch: None,
    })
}

#[cfg(feature = "cassandra")]
pub use borboleta_connectors::registry::cassandra_config;
pub use borboleta_connectors::registry::online_store_path;

/// Reads the current features for the given keys (`[("id", "1")]` per key) from the spec's
/// online store (Cassandra when the online writer has a `cassandra` config, else the embedded
/// store). Keys with no row give no row. Connects each time: for many lookups, keep an
/// [`OnlineLookup`].
pub async fn online_get(spec: &FeatureSetPipelineSpec, keys: &[Vec<(String, String)>]) -> Result<RecordBatch> {
    OnlineLookup::connect(spec).await?.get(keys).await
}

/// A warm reader of a spec's online store: connected once (Cassandra: one session and one
/// prepared statement), then any number of [`OnlineLookup::get`] calls, from any task.
#[derive(Debug)]
pub struct OnlineLookup {
    inner: LookupInner,
}

#[derive(Debug)]
enum LookupInner {
    #[cfg(feature = "cassandra")]
    Cassandra(borboleta_connectors::cassandra::CassandraLookup),
    Embedded(EmbeddedOnlineStore, String),
}

impl OnlineLookup {
    /// Connects to the store of the spec's online writer (as [`online_get`] picks it).
    pub async fn connect(spec: &FeatureSetPipelineSpec) -> Result<Self> {
        #[cfg(feature = "cassandra")]
        if let Some(o) = first_online_writer(spec)
            && let Some(c) = &o.cassandra
        {
            let store = CassandraOnlineStore::new(cassandra_config(spec, c)?);
            let columns = borboleta_core::output_columns(&spec.feature_set);
            let key_cols = borboleta_core::key_columns(&spec.feature_set);
            let lookup = store
                .lookup(&o.table_name(&spec.feature_set), &columns, &key_cols)
                .await?;
            return Ok(Self {
                inner: LookupInner::Cassandra(lookup),
            });
        }
        let (store, table) = online_store(spec)?;
        Ok(Self {
            inner: LookupInner::Embedded(store, table),
        })
    }

    /// The current rows of the given keys (`[("id", "1")]` per key), in key order; a key with no
    /// row gives no row.
    pub async fn get(&self, keys: &[Vec<(String, String)>]) -> Result<RecordBatch> {
        match &self.inner {
            #[cfg(feature = "cassandra")]
            LookupInner::Cassandra(l) => l.get(keys).await,
            LookupInner::Embedded(store, table) => store.get(table, keys),
        }
    }
}

/// Deletes the given keys from the spec's online store with a write timestamp of now (in µs,
/// plus 999): the delete wins over every event up to now, and a newer event written later
/// shows again. Returns how many keys were deleted (Cassandra: asked to delete).
pub async fn online_delete(spec: &FeatureSetPipelineSpec, keys: &[Vec<(String, String)>]) -> Result<u64> {
    let write_ts = chrono::Utc::now().timestamp_millis() * 1000 + 999;
    #[cfg(feature = "cassandra")]
    if let Some(o) = first_online_writer(spec)
        && let Some(c) = &o.cassandra
    {
        let store = CassandraOnlineStore::new(cassandra_config(spec, c)?);
        let key_cols = borboleta_core::key_columns(&spec.feature_set);
        return store
            .delete(&o.table_name(&spec.feature_set), &key_cols, keys, write_ts)
            .await;
    }
    let (store, table) = online_store(spec)?;
    store.delete(&table, keys, write_ts)
}

/// The online writer that persists (the first one not in debug mode, else the first one).
fn first_online_writer(spec: &FeatureSetPipelineSpec) -> Option<&OnlineWriterSpec> {
    let online = || {
        spec.writers.iter().filter_map(|w| match w {
            WriterSpec::OnlineFeatureStore(o) => Some(o),
            _ => None,
        })
    };
    // a Kafka writer publishes rows; it is not a store to read back
    online()
        .filter(|o| o.kafka.is_none())
        .find(|o| !o.debug_mode)
        .or_else(|| online().find(|o| o.kafka.is_none()))
}

/// The embedded online store and table of the spec's first online writer.
pub fn online_store(spec: &FeatureSetPipelineSpec) -> Result<(EmbeddedOnlineStore, String)> {
    let Some(o) = first_online_writer(spec) else {
        return Err(Error::spec("writers", "the spec has no online_feature_store writer"));
    };
    Ok((
        EmbeddedOnlineStore::new(online_store_path(spec, o)),
        o.table_name(&spec.feature_set),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use borboleta_core::{FileFormat, HistoricalWriterSpec};

    /// A pipeline declared with the Rust builder runs like a YAML one; its debug table answers SQL.
    #[tokio::test]
    async fn builder_pipeline_runs_in_debug_mode() {
        let dir = std::env::temp_dir().join(format!("borboleta-builder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("e.jsonl"),
            "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"x\":1.5}\n{\"id\":1,\"ts\":\"2024-01-02 10:00:00\",\"x\":2.5}\n",
        )
        .unwrap();
        let fs = FeatureSetSpec::new("fs", "user")
            .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
            .with_timestamp(TimestampFeatureSpec::from_column("ts"))
            .with_feature(FeatureSpec::new("x2").sql("x * 2").dtype(FeatureDataType::Double));
        let spec = FeatureSetPipelineSpec::builder()
            .file_reader("e", "e.jsonl", FileFormat::Json)
            .query("select * from e")
            .feature_set(fs)
            .writer(WriterSpec::HistoricalFeatureStore(HistoricalWriterSpec {
                debug_mode: true,
                ..Default::default()
            }))
            .base_dir(&dir)
            .build()
            .unwrap();
        let p = build_pipeline(spec, &PipelineOptions::default()).await.unwrap();
        let summary = p.run(RunOptions::default()).await.unwrap();
        assert_eq!(summary.rows_computed, 2);
        let batches = p
            .sql("select sum(x2) as s from historical_feature_store__fs")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 8.0 |"), "{text}");
        // a builder spec is validated like a YAML one
        let err = FeatureSetPipelineSpec::builder()
            .query("select 1")
            .feature_set(FeatureSetSpec::new("bad name", "u"))
            .build();
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("feature_set.name") && msg.contains("readers"), "{msg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Writes `e.jsonl` (one line) into a fresh folder, runs the YAML spec there in debug mode
    /// with `opts` and returns the pretty-printed answer of `sql`.
    async fn run_debug(name: &str, line: &str, yaml: &str, opts: PipelineOptions, sql: &str) -> Result<String> {
        let dir = std::env::temp_dir().join(format!("borboleta-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("e.jsonl"), format!("{line}\n")).unwrap();
        let spec = FeatureSetPipelineSpec::from_yaml_str(yaml, Some(&dir), &|_| None).unwrap();
        let result = async {
            let p = build_pipeline(spec, &opts).await?;
            p.run(RunOptions::default()).await?;
            Ok(p.sql(sql).await?.collect().await?)
        }
        .await;
        std::fs::remove_dir_all(&dir).ok();
        result.map(|b: Vec<RecordBatch>| arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string())
    }

    /// A function registered from Rust is usable by name from the spec: in a `spark_function`
    /// transform, a SQL expression and the source query.
    #[tokio::test]
    async fn user_defined_functions_by_name() {
        use arrow::array::{AsArray, Float64Array};
        use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
        let triple = create_udf(
            "triple",
            vec![arrow::datatypes::DataType::Float64],
            arrow::datatypes::DataType::Float64,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                let a = ColumnarValue::values_to_arrays(args)?;
                let out: Float64Array = a[0]
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| v * 3.0))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }),
        );
        let line = "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"x\":1.5}";
        let yaml = "readers: [{id: e, type: file, path: e.jsonl, format: json}]\n\
                    source: {query: \"select id, ts, triple(x) as x3, x from e\"}\n\
                    feature_set:\n  name: fs\n  entity: u\n  keys: [{name: id, dtype: bigint}]\n  timestamp: {from_column: ts}\n  \
                    features:\n    - {name: x, transformation: {type: spark_function, functions: [{function: triple, dtype: double}]}}\n    \
                    - {name: x9, dtype: double, transformation: {type: sql_expression, expression: triple(x3)}}\n\
                    writers: [{type: historical_feature_store, debug_mode: true}]\n";
        // unknown without registration: a spec error naming the function
        let sql = "select x__triple, x9 from historical_feature_store__fs";
        let err = run_debug("udf0", line, yaml, PipelineOptions::default(), sql)
            .await
            .unwrap_err();
        assert!(err.is_spec_error() && err.to_string().contains("triple"), "{err}");
        let opts = PipelineOptions {
            udfs: vec![triple],
            ..Default::default()
        };
        let text = run_debug("udf", line, yaml, opts, sql).await.unwrap();
        assert!(text.contains("| 4.5       | 13.5 |"), "{text}");
    }

    /// Rust hooks run at their points, after the spec's SQL hooks: here a reader post-hook and a
    /// sink pre-hook, each adding 10 to the feature.
    #[tokio::test]
    async fn rust_hooks_run_where_declared() {
        use borboleta_engine::hooks::{HookFn, HookPoint, RustHooks};
        let line = "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"x\":1}";
        let yaml = "readers: [{id: e, type: file, path: e.jsonl, format: json, hooks: {post: [\"select id, ts, x + 1 as x from input\"]}}]\n\
                    source: {query: select * from e}\n\
                    feature_set:\n  name: fs\n  entity: u\n  keys: [{name: id, dtype: bigint}]\n  timestamp: {from_column: ts}\n  \
                    features: [{name: x, dtype: bigint}]\n\
                    writers: [{type: historical_feature_store, debug_mode: true}]\n";
        let plus_ten: HookFn = Arc::new(|df: datafusion::prelude::DataFrame| {
            use datafusion::logical_expr::{col, lit};
            df.with_column("x", col("x") + lit(10i64))
        });
        let opts = PipelineOptions {
            hooks: RustHooks(vec![
                (HookPoint::ReaderPost("e".into()), Arc::clone(&plus_ten)),
                (HookPoint::SinkPre, plus_ten),
            ]),
            ..Default::default()
        };
        let text = run_debug("hooks", line, yaml, opts, "select x from historical_feature_store__fs")
            .await
            .unwrap();
        // 1, + 1 (the SQL post-hook of the reader), + 10 (its Rust post-hook), + 10 (the sink's)
        assert!(text.contains("| 22 |"), "{text}");
    }

    /// A reader over an object store the caller registers (`memory://` here): a folder of files
    /// in the store is read like a local folder.
    #[tokio::test]
    async fn reader_over_a_registered_object_store() {
        use object_store::{ObjectStore, ObjectStoreExt, memory::InMemory, path::Path as ObjectPath};
        let store = Arc::new(InMemory::new());
        for (name, body) in [
            (
                "events/a.jsonl",
                "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"x\":1.5}\n",
            ),
            (
                "events/b.jsonl",
                "{\"id\":2,\"ts\":\"2024-01-02 10:00:00\",\"x\":4.0}\n",
            ),
        ] {
            store.put(&ObjectPath::from(name), body.into()).await.unwrap();
        }
        let fs = FeatureSetSpec::new("fs", "user")
            .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
            .with_timestamp(TimestampFeatureSpec::from_column("ts"))
            .with_feature(FeatureSpec::new("x").dtype(FeatureDataType::Double));
        let spec = || {
            FeatureSetPipelineSpec::builder()
                .file_reader("e", "memory:///events/", FileFormat::Json)
                .query("select * from e")
                .feature_set(fs.clone())
                .writer(WriterSpec::HistoricalFeatureStore(HistoricalWriterSpec {
                    debug_mode: true,
                    ..Default::default()
                }))
                .build()
                .unwrap()
        };
        let opts = PipelineOptions {
            object_stores: vec![("memory://".parse().unwrap(), store as Arc<dyn ObjectStore>)],
            ..Default::default()
        };
        let p = build_pipeline(spec(), &opts).await.unwrap();
        let summary = p.run(RunOptions::default()).await.unwrap();
        assert_eq!(summary.rows_computed, 2);
        let batches = p
            .sql("select sum(x) as s from historical_feature_store__fs")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 5.5 |"), "{text}");
        // without the store, the URL is a spec error that says what to do
        let err = build_pipeline(spec(), &PipelineOptions::default()).await.unwrap_err();
        assert!(err.to_string().contains("no object store for `memory://`"), "{err}");
    }

    /// The checkpoint fingerprint comes from the readers' identities and equals what earlier
    /// versions computed from the spec (file readers by their declared path, Kafka readers by
    /// topic, table readers by id), so existing checkpoints stay valid.
    #[tokio::test]
    async fn fingerprint_identities_match_the_spec_form() {
        use borboleta_core::time::stable_hash;
        let dir = tempfile_dir("fingerprint");
        std::fs::create_dir_all(dir.join("events")).unwrap();
        std::fs::write(
            dir.join("events/a.jsonl"),
            "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"x\":1.5}\n",
        )
        .unwrap();
        let yaml = "readers:\n  - {id: e, type: file, path: events/, format: json, stream: true}\n\
                    source: {query: select * from e}\n\
                    feature_set:\n  name: fs\n  entity: u\n  keys: [{name: id, dtype: bigint}]\n  timestamp: {from_column: ts}\n  \
                    features: [{name: x, dtype: double}]\n\
                    writers: [{type: historical_feature_store, debug_mode: true}]\n";
        let spec = FeatureSetPipelineSpec::from_yaml_str(yaml, Some(&dir), &|_| None).unwrap();
        let expected = serde_json::json!([{
            "type": "file", "id": "e", "path": "events/", "format": "json", "stream": true,
        }]);
        let p = build_pipeline(spec, &PipelineOptions::default()).await.unwrap();
        let f = p.fingerprint();
        assert_eq!(
            f.readers,
            format!("{:016x}", stable_hash(expected.to_string().as_bytes()))
        );
        assert_eq!(f.reader_ids, vec!["e".to_string()]);
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("borboleta-{name}-{}", std::process::id()))
    }
}
