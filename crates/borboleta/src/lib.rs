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
//! Extension points: [`engine::Reader`] and [`engine::Writer`].
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
pub use borboleta_connectors as connectors;
use borboleta_connectors::{EmbeddedOnlineStore, EmbeddedOnlineWriter, FileReader, HistoricalWriter};
pub use borboleta_core as core;
use borboleta_core::naming::{HISTORICAL_DEBUG_PREFIX, ONLINE_DEBUG_PREFIX};
pub use borboleta_core::{
    FeatureDataType, FeatureSetPipelineSpec, FeatureSetSpec, FeatureSpec, ReaderSpec, SpecIssue, SpecIssues,
    TimestampFeatureSpec, WriterSpec,
};
use borboleta_core::{OnlineWriterSpec, resolve_path};
pub use borboleta_engine as engine;
pub use borboleta_engine::{Error, FeatureSetPipeline, Result, RunOptions, RunSummary};
use borboleta_engine::{MemoryMode, MemoryWriter, Reader, Writer};

/// How a pipeline is built from its spec.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Run every writer in debug mode (in-memory tables), whatever the spec says.
    pub debug: bool,
}

/// Default seconds an event time may be ahead of the clock before the online writer refuses it.
pub const DEFAULT_MAX_FUTURE_SKEW_SECONDS: i64 = 86_400;

/// Builds the readers and writers of `spec` and opens the pipeline (every spec problem is
/// reported before anything is written).
pub async fn build_pipeline(spec: FeatureSetPipelineSpec, opts: &PipelineOptions) -> Result<FeatureSetPipeline> {
    let mut readers: Vec<Arc<dyn Reader>> = Vec::new();
    for r in &spec.readers {
        match r {
            ReaderSpec::File(f) => {
                let mut f = f.clone();
                f.path = spec.resolve_path(&f.path);
                readers.push(Arc::new(FileReader::new(f)));
            }
            _ => return Err(Error::spec("readers", "unsupported reader")),
        }
    }
    let mut writers: Vec<Arc<dyn Writer>> = Vec::new();
    let fs = &spec.feature_set;
    for w in &spec.writers {
        let debug = opts.debug || w.debug_mode();
        match w {
            WriterSpec::HistoricalFeatureStore(h) => {
                if debug {
                    writers.push(Arc::new(MemoryWriter::new(
                        format!("{HISTORICAL_DEBUG_PREFIX}{}", fs.name),
                        MemoryMode::Historical,
                    )));
                } else {
                    writers.push(Arc::new(HistoricalWriter::new(
                        h.clone(),
                        store_root(&spec, h.path.as_deref()),
                    )));
                }
            }
            WriterSpec::OnlineFeatureStore(o) => {
                let table = o.table_name(fs);
                if debug {
                    writers.push(Arc::new(MemoryWriter::new(
                        format!("{ONLINE_DEBUG_PREFIX}{table}"),
                        MemoryMode::LatestPerKey,
                    )));
                } else {
                    writers.push(Arc::new(EmbeddedOnlineWriter::new(
                        online_store_path(&spec, o),
                        table,
                        o.max_future_skew_seconds.unwrap_or(DEFAULT_MAX_FUTURE_SKEW_SECONDS),
                    )));
                }
            }
            _ => return Err(Error::spec("writers", "unsupported writer")),
        }
    }
    FeatureSetPipeline::try_new(spec, readers, writers).await
}

fn store_root(spec: &FeatureSetPipelineSpec, path: Option<&str>) -> PathBuf {
    match path {
        Some(p) => PathBuf::from(resolve_path(spec.base_dir.as_deref(), p)),
        None => spec.default_store_root(),
    }
}

/// The embedded online store file of an online writer.
pub fn online_store_path(spec: &FeatureSetPipelineSpec, o: &OnlineWriterSpec) -> PathBuf {
    match &o.path {
        Some(p) => PathBuf::from(resolve_path(spec.base_dir.as_deref(), p)),
        None => spec.default_store_root().join("online.sqlite"),
    }
}

/// Reads the current features for the given keys (`[("id", "1")]` per key) from the spec's
/// online store. Keys with no row give no row.
pub fn online_get(spec: &FeatureSetPipelineSpec, keys: &[Vec<(String, String)>]) -> Result<RecordBatch> {
    let (store, table) = online_store(spec)?;
    store.get(&table, keys)
}

/// The embedded online store and table of the spec's first online writer.
pub fn online_store(spec: &FeatureSetPipelineSpec) -> Result<(EmbeddedOnlineStore, String)> {
    let online = spec.writers.iter().find_map(|w| match w {
        WriterSpec::OnlineFeatureStore(o) => Some(o),
        _ => None,
    });
    let Some(o) = online else {
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
}
