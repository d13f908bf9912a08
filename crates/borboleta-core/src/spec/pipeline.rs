//! The whole pipeline spec: readers, source query, feature set, writers, streaming settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::common::*;
use super::feature_set::*;
use super::reader::*;
use super::writer::*;

/// A whole FeatureSetPipeline: readers, a source query, a feature set and writers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSetPipelineSpec {
    /// Where the data comes from; each reader becomes a SQL table named by its id.
    pub readers: Vec<ReaderSpec>,
    /// The SQL query over the readers' tables.
    pub source: SourceSpec,
    /// Keys, timestamp and features computed from the source's rows.
    pub feature_set: FeatureSetSpec,
    /// Where the feature rows go.
    #[serde(default)]
    pub writers: Vec<WriterSpec>,
    /// Sink hooks, run before the writers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkSpec>,
    /// Streaming settings, used when a reader has `stream: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<StreamingSpec>,
    /// Tables that `type: table` readers name (`database.table` or `table`), when they are not
    /// historical tables of the feature store.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub catalog: BTreeMap<String, CatalogTableSpec>,
    /// Folder that relative paths resolve against (the spec file's folder); not part of the YAML.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// The line of every YAML path of the spec file, for error messages; not part of the YAML.
    #[serde(skip)]
    pub yaml_lines: Option<std::sync::Arc<crate::YamlLines>>,
}

/// What a streaming pipeline does with a record it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRecord {
    /// Count it, write it with the reason to the dead-letter output, and go on.
    #[default]
    DeadLetter,
    /// Stop the pipeline with an error.
    Fail,
}

fn default_debug_max_rows() -> usize {
    1_000_000
}

/// Streaming settings of a pipeline (`streaming:`), used when a reader has `stream: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingSpec {
    /// Checkpoint root; the checkpoint is `<root>/<entity>/<feature set>`. Default: the
    /// `STREAM_CHECKPOINT_PATH` environment variable, as in Butterfree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_path: Option<String>,
    /// Milliseconds between the starts of two micro-batches; 0 starts one as soon as data is there.
    #[serde(default)]
    pub processing_time_ms: u64,
    /// Process what is there when the pipeline starts, then stop (backfills, tests).
    #[serde(default)]
    pub available_now: bool,
    /// Most rows in one micro-batch (a file is never split). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_per_batch: Option<u64>,
    /// Seconds between reloads of the static (non-streaming) readers. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_refresh_seconds: Option<u64>,
    /// Most rows kept by a streaming debug table; the oldest are evicted (and counted).
    #[serde(default = "default_debug_max_rows")]
    pub debug_max_rows: usize,
    /// Streaming online debug tables keep the latest row per key instead of every row.
    #[serde(default)]
    pub debug_latest_per_key: bool,
    /// `dead_letter` (default) or `fail`.
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// Folder of the dead-letter output. Default: `dead_letter` in the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_path: Option<String>,
}

impl Default for StreamingSpec {
    fn default() -> Self {
        Self {
            checkpoint_path: None,
            processing_time_ms: 0,
            available_now: false,
            max_rows_per_batch: None,
            static_refresh_seconds: None,
            debug_max_rows: default_debug_max_rows(),
            debug_latest_per_key: false,
            on_bad_record: OnBadRecord::DeadLetter,
            dead_letter_path: None,
        }
    }
}

/// Butterfree's `Source`: one SQL query over the readers' tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The query (Spark SQL functions are available).
    pub query: String,
    /// Post-hooks on the query's rows (Butterfree's Source has no pre-hooks).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

/// Butterfree's `Sink`: what runs before the writers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// Pre-hooks on the feature rows, before every writer (Butterfree's Sink has no post-hooks).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

impl FeatureSetPipelineSpec {
    /// Resolves `p` against the spec's folder when it is a relative local path.
    pub fn resolve_path(&self, p: &str) -> String {
        resolve_path(self.base_dir.as_deref(), p)
    }

    /// Whether a reader streams (the pipeline then never finishes).
    pub fn is_streaming(&self) -> bool {
        self.readers.iter().any(ReaderSpec::is_stream)
    }

    /// The streaming settings (defaults when absent).
    pub fn streaming_or_default(&self) -> StreamingSpec {
        self.streaming.clone().unwrap_or_default()
    }

    /// The default feature store root: `feature_store` in the spec's folder.
    pub fn default_store_root(&self) -> PathBuf {
        self.base_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("feature_store")
    }
}

/// Resolves `p` against `base` when it is a relative local path (URLs are kept).
pub fn resolve_path(base: Option<&Path>, p: &str) -> String {
    if p.contains("://") || Path::new(p).is_absolute() {
        return p.to_string();
    }
    match base {
        Some(b) => b.join(p).to_string_lossy().into_owned(),
        None => p.to_string(),
    }
}
