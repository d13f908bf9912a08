//! The declarative pipeline spec: one set of `*Spec` types, read from YAML or built in Rust.
//!
//! ```yaml
//! readers:
//!   - id: events
//!     type: file
//!     path: data/events.jsonl
//!     format: json
//! source:
//!   query: select * from events
//! feature_set:
//!   name: user_features
//!   entity: user
//!   keys: [{name: id, dtype: bigint}]
//!   timestamp: {from_column: ts}
//!   features:
//!     - {name: amount, dtype: double}
//! writers:
//!   - type: historical_feature_store
//!   - type: online_feature_store
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dtype::FeatureDataType;
use crate::window::WindowMode;

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

/// A reader, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReaderSpec {
    /// Files: Parquet, CSV or JSON lines.
    File(FileReaderSpec),
    /// Apache Kafka topic(s) of JSON values.
    Kafka(KafkaReaderSpec),
    /// Butterfree's `TableReader`: a table by name, from the catalog or the feature store.
    Table(TableReaderSpec),
}

/// See [`ReaderSpec::Table`]. `database.table` resolves through the spec's `catalog:` first;
/// otherwise it is the historical table `<path>/historical/<database>/<table>` that Borboleta
/// writes (database = the feature set's entity), with its `year`/`month`/`day` columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableReaderSpec {
    /// Table name in the source query.
    pub id: String,
    /// The table.
    pub table: String,
    /// Its database (for a historical table: the entity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The feature store root (default: `feature_store` next to the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Optional selection/renaming of columns, applied right after reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnSelectSpec>,
    /// Filter by the run's dates on one column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_strategy: Option<IncrementalStrategySpec>,
    /// Pre-processing functions, applied in order after `columns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_processing: Vec<PreProcessingSpec>,
    /// Pre-hooks (on the rows as read) and post-hooks (after the date filter).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

impl TableReaderSpec {
    /// `database.table`, or `table`.
    pub fn qualified_name(&self) -> String {
        match &self.database {
            Some(d) => format!("{d}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

/// A table of the spec's `catalog:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogTableSpec {
    /// A file, folder or glob (relative to the spec's folder), or a URL.
    pub path: String,
    /// Its format (default parquet).
    #[serde(default = "default_parquet")]
    pub format: FileFormat,
    /// Hive partition columns in the path (`year=2024/month=1/...`), with their types.
    #[serde(default, skip_serializing_if = "SchemaSpec::is_empty")]
    pub partitions: SchemaSpec,
}

fn default_parquet() -> FileFormat {
    FileFormat::Parquet
}

impl ReaderSpec {
    /// The reader's id (its table name in the source query).
    pub fn id(&self) -> &str {
        match self {
            ReaderSpec::File(f) => &f.id,
            ReaderSpec::Kafka(k) => &k.id,
            ReaderSpec::Table(t) => &t.id,
        }
    }
    /// The common part of every reader.
    pub fn incremental_strategy(&self) -> Option<&IncrementalStrategySpec> {
        match self {
            ReaderSpec::File(f) => f.incremental_strategy.as_ref(),
            ReaderSpec::Kafka(k) => k.incremental_strategy.as_ref(),
            ReaderSpec::Table(t) => t.incremental_strategy.as_ref(),
        }
    }
    /// Whether the reader streams.
    pub fn is_stream(&self) -> bool {
        match self {
            ReaderSpec::File(f) => f.stream,
            ReaderSpec::Kafka(k) => k.stream,
            ReaderSpec::Table(_) => false,
        }
    }
    /// Column selection/renaming applied right after reading.
    pub fn columns(&self) -> &[ColumnSelectSpec] {
        match self {
            ReaderSpec::File(f) => &f.columns,
            ReaderSpec::Kafka(k) => &k.columns,
            ReaderSpec::Table(t) => &t.columns,
        }
    }
    /// The reader's pre-processing functions, in order.
    pub fn pre_processing(&self) -> &[PreProcessingSpec] {
        match self {
            ReaderSpec::File(f) => &f.pre_processing,
            ReaderSpec::Kafka(k) => &k.pre_processing,
            ReaderSpec::Table(t) => &t.pre_processing,
        }
    }
    /// The reader's hooks.
    pub fn hooks(&self) -> &HooksSpec {
        match self {
            ReaderSpec::File(f) => &f.hooks,
            ReaderSpec::Kafka(k) => &k.hooks,
            ReaderSpec::Table(t) => &t.hooks,
        }
    }
}

/// File formats of [`FileReaderSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values (header row by default).
    Csv,
    /// JSON lines: one object per line.
    #[serde(alias = "jsonl", alias = "ndjson")]
    Json,
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        })
    }
}

/// Butterfree's `FileReader`: a file, a folder or a glob, local or an object-store URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReaderSpec {
    /// Table name in the source query.
    pub id: String,
    /// A file, a folder (all its files of the format) or a glob; relative to the spec's folder.
    pub path: String,
    /// File format.
    pub format: FileFormat,
    /// Column names and types; inferred from the files when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaSpec>,
    /// Format options: CSV `header` (true), `delimiter` (`,`); `file_extension`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Optional selection/renaming of columns, applied right after reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnSelectSpec>,
    /// Filter by the run's dates on one column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_strategy: Option<IncrementalStrategySpec>,
    /// Butterfree's pre-processing functions (`Reader.with_`), applied in order after `columns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_processing: Vec<PreProcessingSpec>,
    /// Pre-hooks (on the rows as read) and post-hooks (after the date filter).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
    /// Streaming reader: `path` is a folder; new files are taken as they arrive, each once.
    #[serde(default)]
    pub stream: bool,
    /// Streaming: files whose modification time is older than this many seconds (relative to
    /// the newest file seen) are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_age_seconds: Option<u64>,
}

/// Where a Kafka reader starts (or, for `ending_offsets`, stops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KafkaOffsetsSpec {
    /// `earliest` or `latest`.
    Named(String),
    /// The first offset at or after this instant (RFC 3339), per partition.
    Time {
        /// RFC 3339 instant.
        timestamp: String,
    },
    /// Per partition: `{"<partition>": offset}` (the other partitions: earliest).
    Partitions(BTreeMap<String, i64>),
}

fn default_stream_true() -> bool {
    true
}

/// Butterfree's `KafkaReader`: JSON values of a topic, parsed with `value_schema` into columns,
/// plus the `kafka_metadata` column (key, topic, value, partition, offset, timestamp,
/// timestampType).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaReaderSpec {
    /// Table name in the source query.
    pub id: String,
    /// Topic, or topics.
    pub topic: OneOrMany,
    /// Bootstrap servers (`host:port,...`). Default: `KAFKA_CONSUMER_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// Columns of the JSON value, in order, with their types.
    pub value_schema: SchemaSpec,
    /// librdkafka client settings passed through (`security.protocol`, `sasl.mechanism`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Where a new checkpoint starts: `earliest` (default), `latest`, `{timestamp: ...}`, or
    /// per partition `{"0": 42}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_offsets: Option<KafkaOffsetsSpec>,
    /// Bounded reads (`stream: false`): where to stop (exclusive). Default: the end of each
    /// partition when the pipeline starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_offsets: Option<KafkaOffsetsSpec>,
    /// Stream (default, as Butterfree) or read a bounded range once.
    #[serde(default = "default_stream_true")]
    pub stream: bool,
    /// Optional selection/renaming of columns, applied right after reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnSelectSpec>,
    /// Filter by the run's dates on one column (bounded reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_strategy: Option<IncrementalStrategySpec>,
    /// Butterfree's pre-processing functions, applied in order after `columns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_processing: Vec<PreProcessingSpec>,
    /// Pre-hooks (on each micro-batch as read) and post-hooks (after the date filter).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

/// One of Butterfree's reader pre-processing functions (`filter`, `replace`,
/// `explode_json_column`, `forward_fill`, `pivot`), written as a one-key map:
/// `- filter: "amount > 0"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PreProcessingSpec {
    /// Keep the rows where this SQL condition holds.
    Filter(String),
    /// Map values of a string column; other values (and nulls) are unchanged.
    Replace {
        /// The string column.
        column: String,
        /// `from: to` pairs.
        values: BTreeMap<String, String>,
    },
    /// Add one column per field of `schema`, read from the JSON document in `column` (`$.<field>`,
    /// cast to its type; missing fields give null). The source column is kept.
    ExplodeJsonColumn {
        /// The column holding JSON text.
        column: String,
        /// Field names and types, in output order.
        schema: SchemaSpec,
    },
    /// Replace nulls by the last non-null value of the partition, in order (leading nulls stay).
    ForwardFill {
        /// Partition columns.
        partition_by: OneOrMany,
        /// Order column.
        order_by: String,
        /// The column filled.
        fill_column: String,
        /// Write here instead of in place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filled_column: Option<String>,
    },
    /// Group by `group_by`, one column per distinct value of `pivot_column` (sorted, named by
    /// the value), holding `aggregation(agg_column)`.
    Pivot {
        /// Group columns; with `forward_fill`, the last one is the time column.
        group_by: Vec<String>,
        /// The column whose values become columns.
        pivot_column: String,
        /// The aggregated column.
        agg_column: String,
        /// The aggregate (`first`, `sum`, `max`, ...).
        aggregation: String,
        /// Forward-fill every new column (partitioned by all group columns but the last).
        #[serde(default)]
        forward_fill: bool,
        /// Nulls of `agg_column` become this value before pivoting, so that the forward fill
        /// keeps them as nulls (needs `mock_type`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mock_value: Option<String>,
        /// The type `agg_column` is cast to for `mock_value`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mock_type: Option<FeatureDataType>,
    },
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

/// A `column: type` map whose order is kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaSpec(pub Vec<(String, FeatureDataType)>);

impl SchemaSpec {
    /// No columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SchemaSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SchemaSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SchemaSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of column name to data type")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SchemaSpec, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, FeatureDataType>()? {
                    out.push((k, v));
                }
                Ok(SchemaSpec(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `expression AS alias` applied by a reader before anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSelectSpec {
    /// A SQL expression over the raw columns (often just a column name).
    pub expression: String,
    /// The new column name.
    pub alias: String,
}

/// Butterfree's `IncrementalStrategy`: which column gives each row's date. Exactly one field is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalStrategySpec {
    /// A SQL expression giving a date or timestamp (usually a column name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A column of epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_milliseconds: Option<String>,
    /// A string column parsed with `mask` (a Java date pattern such as `yyyy-MM-dd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_string: Option<String>,
    /// The mask of `from_string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Use `year`, `month` and `day` partition columns.
    #[serde(default)]
    pub from_year_month_day_partitions: bool,
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

/// Butterfree's pre- and post-hooks, as SQL queries over the incoming rows, which they see as a
/// table named `input` (`select *, feature + 1 as feature2 from input`). Each returns the rows
/// that go on; they run in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSpec {
    /// Run on the component's input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<String>,
    /// Run on the component's output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<String>,
}

impl HooksSpec {
    /// No hook.
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }
}

/// Butterfree's `Sink`: what runs before the writers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// Pre-hooks on the feature rows, before every writer (Butterfree's Sink has no post-hooks).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

fn default_true() -> bool {
    true
}

/// Butterfree's `FeatureSet`: keys + `timestamp` + features, row level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSetSpec {
    /// Feature set name: the historical table and the online table are named after it.
    pub name: String,
    /// The entity the keys identify (`user`, `house`).
    pub entity: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Key features (Butterfree's `KeyFeature`): the primary key of the online store.
    pub keys: Vec<FeatureSpec>,
    /// The event time of each row (Butterfree's `TimestampFeature`); output column `timestamp`.
    #[serde(default)]
    pub timestamp: TimestampFeatureSpec,
    /// The features, computed in order (a feature may read columns made by earlier ones).
    pub features: Vec<FeatureSpec>,
    /// Drop a row when it repeats the previous row of its key in every feature. Default: on in
    /// batch, off on streams (setting it on a streaming pipeline is an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicate_rows: Option<bool>,
    /// Butterfree's `AggregatedFeatureSet` settings: rolling windows, pivot, distinct. A feature
    /// set whose features are `type: aggregated` is aggregated, with or without this section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<AggregationSpec>,
    /// Pre-hooks (on the source's rows) and post-hooks (on the feature rows, after the date and
    /// duplicate filters).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
}

/// `with_windows`, `with_pivot` and `with_distinct` of Butterfree's `AggregatedFeatureSet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationSpec {
    /// Rolling windows (`["1 day", "7 days"]`), aligned to the Unix epoch in UTC; the output
    /// timestamp is each window's end. Empty: group by keys + timestamp.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// How far consecutive windows are apart (default `1 day`, which builds the daily grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide: Option<String>,
    /// One set of feature columns per value of a column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivot: Option<PivotSpec>,
    /// Count each value of `subset` once per window (or per keys + timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<DistinctSpec>,
}

/// Butterfree's `with_pivot(column, values)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivotSpec {
    /// The pivot column (of the source).
    pub column: String,
    /// The values kept, in output order; absent: every value found, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<PivotValue>>,
    /// Without `values`: the most distinct values allowed (default 10 000, Spark's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_values: Option<usize>,
}

/// A pivot value as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PivotValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// Text.
    String(String),
}

impl PivotValue {
    /// The column-name prefix: Python's `str()` of the value, as Butterfree names it (`True`, `1`, `S`).
    pub fn name(&self) -> String {
        match self {
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) if f.fract() == 0.0 && f.is_finite() => format!("{f:.1}"),
            Self::Float(f) => f.to_string(),
            Self::String(s) => s.clone(),
        }
    }
}

/// Butterfree's `with_distinct(subset, keep)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistinctSpec {
    /// The columns whose values are counted once.
    pub subset: Vec<String>,
    /// Which row of each value is kept: the latest (`last`, default) or the earliest (`first`).
    #[serde(default)]
    pub keep: DistinctKeep,
}

/// See [`DistinctSpec::keep`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistinctKeep {
    /// Keep the row with the latest timestamp.
    #[default]
    Last,
    /// Keep the row with the earliest timestamp.
    First,
}

/// A feature (or key feature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Output column name (or base name for function transforms). Required: a missing name is
    /// reported by validation (`name must not be empty`) rather than by serde, which could not
    /// tell it from a field missing in the feature's `transformation`.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The output type: the column is cast to it (Spark's non-ANSI cast: bad values become null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<FeatureDataType>,
    /// Read from this column instead of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_column: Option<String>,
    /// How the feature is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation: Option<TransformSpec>,
}

/// A feature's transformation, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransformSpec {
    /// Butterfree's `SQLExpressionTransform`: a SQL expression; the column is not cast.
    SqlExpression(SqlExpressionSpec),
    /// Butterfree's `SparkFunctionTransform`: functions, optionally over windows.
    #[serde(alias = "function")]
    SparkFunction(SparkFunctionSpec),
    /// Butterfree's `AggregatedTransform`: aggregate functions of an aggregated feature set.
    #[serde(alias = "aggregated_transform")]
    Aggregated(AggregatedTransformSpec),
    /// Butterfree's `H3HashTransform`: the H3 cell of a latitude/longitude at each resolution.
    #[serde(alias = "h3_hash")]
    H3(H3TransformSpec),
    /// Butterfree's `StackTransform`: one row per selected column, its value in the feature.
    Stack(StackTransformSpec),
}

/// See [`TransformSpec::H3`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct H3TransformSpec {
    /// H3 resolutions (0-15); one column `lat_lng__h3_hash__<resolution>` each.
    pub resolutions: Vec<u8>,
    /// Latitude column (degrees).
    pub lat_column: String,
    /// Longitude column (degrees).
    pub lng_column: String,
    /// Butterfree's `.with_stack()`: the feature gets one row per resolution, holding its cell.
    #[serde(default)]
    pub stack: bool,
}

/// See [`TransformSpec::Stack`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackTransformSpec {
    /// Column patterns: a name, a name with one `*` wildcard, `!pattern` for every column that
    /// does not match; or regular expressions anchored at the start with `is_regex`.
    pub columns: Vec<String>,
    /// Read `columns` as regular expressions.
    #[serde(default)]
    pub is_regex: bool,
}

/// See [`TransformSpec::Aggregated`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatedTransformSpec {
    /// Aggregate functions over the input column (`from_column`, or the feature's name).
    pub functions: Vec<FunctionSpec>,
    /// Only rows where this SQL condition holds are aggregated (`type = 'a'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
}

/// See [`TransformSpec::SqlExpression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlExpressionSpec {
    /// The expression; it may reference the feature's own name (`feature + 1`).
    pub expression: String,
}

/// See [`TransformSpec::SparkFunction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkFunctionSpec {
    /// Functions applied to the input column; one output column per function and window.
    pub functions: Vec<FunctionSpec>,
    /// Optional windows (the functions are then aggregates over each window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<FunctionWindowSpec>,
}

/// Butterfree's `Function`: a function name and the type its result is cast to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// Function name (`avg`, `stddev_pop`, `log1p`, ...).
    pub function: String,
    /// Result type.
    pub dtype: FeatureDataType,
}

/// Butterfree's `with_window(partition_by, window_definition, order_by, mode)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionWindowSpec {
    /// Partition columns (usually the keys).
    pub partition_by: OneOrMany,
    /// Order column; defaults to `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// `fixed_windows` or `row_windows`.
    pub mode: WindowMode,
    /// `["7 days", "2 weeks"]` or `["3 events"]`.
    pub definitions: Vec<String>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Butterfree's `TimestampFeature`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampFeatureSpec {
    /// Source column (default `timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_column: Option<String>,
    /// The source holds epoch milliseconds.
    #[serde(default)]
    pub from_ms: bool,
    /// Java date pattern for string sources (`yyyy-MM-dd HH:mm:ss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// `timestamp` (UTC instant, default) or `timestamp_ntz`.
    #[serde(default = "default_timestamp_type")]
    pub dtype: FeatureDataType,
}

fn default_timestamp_type() -> FeatureDataType {
    FeatureDataType::Timestamp
}

impl Default for TimestampFeatureSpec {
    fn default() -> Self {
        Self {
            from_column: None,
            from_ms: false,
            mask: None,
            dtype: FeatureDataType::Timestamp,
        }
    }
}

/// A writer, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // a handful per spec, parsed once
pub enum WriterSpec {
    /// Butterfree's `HistoricalFeatureStoreWriter`.
    HistoricalFeatureStore(HistoricalWriterSpec),
    /// Butterfree's `OnlineFeatureStoreWriter`.
    OnlineFeatureStore(OnlineWriterSpec),
}

impl WriterSpec {
    /// Whether the writer writes to an in-memory debug table.
    pub fn debug_mode(&self) -> bool {
        match self {
            WriterSpec::HistoricalFeatureStore(w) => w.debug_mode,
            WriterSpec::OnlineFeatureStore(w) => w.debug_mode,
        }
    }
    /// Turns debug mode on.
    pub fn set_debug_mode(&mut self, on: bool) {
        match self {
            WriterSpec::HistoricalFeatureStore(w) => w.debug_mode = on,
            WriterSpec::OnlineFeatureStore(w) => w.debug_mode = on,
        }
    }
    /// Display name, as Butterfree's.
    pub fn display_name(&self) -> &'static str {
        match self {
            WriterSpec::HistoricalFeatureStore(_) => "Historical Feature Store Writer",
            WriterSpec::OnlineFeatureStore(_) => "Online Feature Store Writer",
        }
    }
}

/// How a non-interval historical write treats existing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace the whole table (Butterfree's default).
    #[default]
    Overwrite,
    /// Add files next to the existing ones.
    Append,
}

fn default_threshold() -> f64 {
    0.01
}

/// See [`WriterSpec::HistoricalFeatureStore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoricalWriterSpec {
    /// Feature store root; the table goes to `<path>/historical/<entity>/<feature set>`.
    /// Default: `feature_store` next to the spec file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Write to the in-memory table `historical_feature_store__<feature set>` instead.
    #[serde(default)]
    pub debug_mode: bool,
    /// Replace only the `year/month/day` partitions the run touches (idempotent date-range runs).
    #[serde(default)]
    pub interval_mode: bool,
    /// Without `interval_mode`: `overwrite` (default) replaces the table, `append` adds to it.
    #[serde(default)]
    pub mode: WriteMode,
    /// Count the rows written back and compare with the rows computed.
    #[serde(default = "default_true")]
    pub row_count_validation: bool,
    /// Allowed relative difference of that count.
    #[serde(default = "default_threshold")]
    pub validation_threshold: f64,
    /// Streams: seconds of epochs gathered into one file per partition before it is committed
    /// (default 60; 0 commits every epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_interval_seconds: Option<u64>,
    /// Streams: the interval is also committed once it holds this many megabytes (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_interval_mb: Option<u64>,
    /// Butterfree's schema-compatibility hook: before a run adds to an existing table (interval
    /// mode, append, streams), every column of the feature rows must be in the table with the same
    /// type; otherwise nothing is written. Default on.
    #[serde(default = "default_true")]
    pub check_schema: bool,
}

impl Default for HistoricalWriterSpec {
    fn default() -> Self {
        Self {
            path: None,
            debug_mode: false,
            interval_mode: false,
            mode: WriteMode::Overwrite,
            row_count_validation: true,
            validation_threshold: default_threshold(),
            commit_interval_seconds: None,
            commit_interval_mb: None,
            check_schema: true,
        }
    }
}

/// See [`WriterSpec::OnlineFeatureStore`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineWriterSpec {
    /// The embedded online store's file. Default: `feature_store/online.sqlite` next to the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Write to the in-memory table `online_feature_store__<table>` instead.
    #[serde(default)]
    pub debug_mode: bool,
    /// Write to a table named after the entity (shared by feature sets) instead of the feature set.
    #[serde(default)]
    pub write_to_entity: bool,
    /// Rows whose event time is further than this many seconds in the future are not written
    /// (they would pin a key forever). Default: 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_future_skew_seconds: Option<i64>,
    /// Write to Apache Cassandra instead of the embedded store (settings default to Butterfree's
    /// environment variables: `cassandra: {}` takes everything from them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraConfigSpec>,
    /// Publish the feature rows to a Kafka topic instead (Butterfree's `KafkaConfig`): each row
    /// as a JSON object, keyed by the feature set keys. `kafka: {}` takes everything from the
    /// defaults and `KAFKA_CONSUMER_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaWriterConfigSpec>,
    /// Seconds a written row lives, counted from its event time (`USING TTL` = ttl − age; rows
    /// already older are not written). Default: forever. Cassandra only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// Butterfree's `CassandraConfig`. Each field falls back to its environment variable.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraConfigSpec {
    /// Contact points (`CASSANDRA_HOST`, comma-separated). Default: 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<OneOrMany>,
    /// Native protocol port. Default: 9042.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Keyspace (`CASSANDRA_KEYSPACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace: Option<String>,
    /// Local datacenter (`CASSANDRA_LOCAL_DC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_dc: Option<String>,
    /// User (`CASSANDRA_USERNAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (`CASSANDRA_PASSWORD`); never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Read consistency (`CASSANDRA_READ_CONSISTENCY_LEVEL`). Default: LOCAL_ONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_consistency: Option<String>,
    /// Write consistency (`CASSANDRA_WRITE_CONSISTENCY_LEVEL`). Default: LOCAL_QUORUM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_consistency: Option<String>,
    /// Create the keyspace (SimpleStrategy, replication 1) when it does not exist: for local use
    /// and tests. Default: false (production keyspaces are made by their operators).
    #[serde(default)]
    pub create_keyspace: bool,
    /// TLS to the cluster (`tls: {ca_file: ca.pem}`): every connection is encrypted and the
    /// nodes' certificates are verified against the CA file, for the address connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<CassandraTlsSpec>,
}

/// TLS settings of the Cassandra connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraTlsSpec {
    /// PEM file with the CA certificate(s) that signed the nodes' certificates, relative to the
    /// spec's folder.
    pub ca_file: String,
}

/// Butterfree's `KafkaConfig` for the online writer.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaWriterConfigSpec {
    /// Topic. Default: the online table's name (the feature set, or the entity with
    /// `write_to_entity`), as in Butterfree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Bootstrap servers (`host:port,...`). Default: `KAFKA_CONSUMER_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// librdkafka producer settings passed through (`security.protocol`, `sasl.*`, `linger.ms`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaWriterConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = masked(&self.options);
        f.debug_struct("KafkaWriterConfigSpec")
            .field("topic", &self.topic)
            .field("connection_string", &self.connection_string)
            .field("options", &options)
            .finish()
    }
}

impl OnlineWriterSpec {
    /// The online table: the entity with `write_to_entity`, else the feature set name.
    pub fn table_name(&self, feature_set: &FeatureSetSpec) -> String {
        if self.write_to_entity {
            feature_set.entity.clone()
        } else {
            feature_set.name.clone()
        }
    }
}

impl FeatureSetPipelineSpec {
    /// A builder for pipelines declared in Rust.
    pub fn builder() -> FeatureSetPipelineSpecBuilder {
        FeatureSetPipelineSpecBuilder::default()
    }

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

/// Builds a [`FeatureSetPipelineSpec`] in Rust; `build` validates it like a YAML spec.
#[derive(Debug, Default)]
pub struct FeatureSetPipelineSpecBuilder {
    readers: Vec<ReaderSpec>,
    query: Option<String>,
    feature_set: Option<FeatureSetSpec>,
    writers: Vec<WriterSpec>,
    streaming: Option<StreamingSpec>,
    base_dir: Option<PathBuf>,
}

impl FeatureSetPipelineSpecBuilder {
    /// Sets the streaming settings.
    pub fn streaming(mut self, s: StreamingSpec) -> Self {
        self.streaming = Some(s);
        self
    }
    /// Adds a reader.
    pub fn reader(mut self, reader: ReaderSpec) -> Self {
        self.readers.push(reader);
        self
    }
    /// Adds a file reader.
    pub fn file_reader(self, id: &str, path: &str, format: FileFormat) -> Self {
        self.reader(ReaderSpec::File(FileReaderSpec {
            id: id.into(),
            path: path.into(),
            format,
            schema: None,
            options: BTreeMap::new(),
            columns: vec![],
            incremental_strategy: None,
            pre_processing: vec![],
            hooks: HooksSpec::default(),
            stream: false,
            max_file_age_seconds: None,
        }))
    }
    /// Sets the source query.
    pub fn query(mut self, query: &str) -> Self {
        self.query = Some(query.into());
        self
    }
    /// Sets the feature set.
    pub fn feature_set(mut self, fs: FeatureSetSpec) -> Self {
        self.feature_set = Some(fs);
        self
    }
    /// Adds a writer.
    pub fn writer(mut self, w: WriterSpec) -> Self {
        self.writers.push(w);
        self
    }
    /// Folder that relative paths resolve against.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }
    /// Validates and returns the spec.
    pub fn build(self) -> crate::Result<FeatureSetPipelineSpec> {
        let mut issues = crate::SpecIssues::default();
        if self.query.is_none() {
            issues.push("source.query", "a source query is required");
        }
        if self.feature_set.is_none() {
            issues.push("feature_set", "a feature set is required");
        }
        issues.into_result()?;
        let spec = FeatureSetPipelineSpec {
            readers: self.readers,
            source: SourceSpec {
                query: self.query.unwrap_or_default(),
                hooks: HooksSpec::default(),
            },
            feature_set: self.feature_set.unwrap_or_else(|| FeatureSetSpec::new("", "")),
            writers: self.writers,
            streaming: self.streaming,
            base_dir: self.base_dir,
            yaml_lines: None,
            catalog: BTreeMap::new(),
            sink: None,
        };
        crate::validate::validate(&spec).into_result()?;
        Ok(spec)
    }
}

impl FeatureSetSpec {
    /// A feature set with no keys and features yet; timestamp from column `timestamp`.
    pub fn new(name: &str, entity: &str) -> Self {
        Self {
            name: name.into(),
            entity: entity.into(),
            description: String::new(),
            keys: vec![],
            timestamp: TimestampFeatureSpec::default(),
            features: vec![],
            deduplicate_rows: None,
            aggregation: None,
            hooks: HooksSpec::default(),
        }
    }
    /// Adds a key.
    pub fn with_key(mut self, key: FeatureSpec) -> Self {
        self.keys.push(key);
        self
    }
    /// Sets the timestamp feature.
    pub fn with_timestamp(mut self, ts: TimestampFeatureSpec) -> Self {
        self.timestamp = ts;
        self
    }
    /// Adds a feature.
    pub fn with_feature(mut self, f: FeatureSpec) -> Self {
        self.features.push(f);
        self
    }
    /// Sets the description.
    pub fn with_description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    /// Sets the aggregation (windows, pivot, distinct) of an aggregated feature set.
    pub fn with_aggregation(mut self, a: AggregationSpec) -> Self {
        self.aggregation = Some(a);
        self
    }
    /// Whether this is an aggregated feature set (Butterfree's `AggregatedFeatureSet`).
    pub fn is_aggregated(&self) -> bool {
        self.aggregation.is_some()
            || self
                .features
                .iter()
                .any(|f| matches!(f.transformation, Some(TransformSpec::Aggregated(_))))
    }
}

impl FeatureSpec {
    /// A feature read from the column of the same name.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            dtype: None,
            from_column: None,
            transformation: None,
        }
    }
    /// Sets the type the column is cast to.
    pub fn dtype(mut self, t: FeatureDataType) -> Self {
        self.dtype = Some(t);
        self
    }
    /// Reads from another column.
    pub fn from_column(mut self, c: &str) -> Self {
        self.from_column = Some(c.into());
        self
    }
    /// Sets the description.
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    /// Computes the feature with a SQL expression.
    pub fn sql(mut self, expression: &str) -> Self {
        self.transformation = Some(TransformSpec::SqlExpression(SqlExpressionSpec {
            expression: expression.into(),
        }));
        self
    }
    /// Computes the feature with functions, optionally over windows.
    pub fn functions(mut self, functions: &[(&str, FeatureDataType)], window: Option<FunctionWindowSpec>) -> Self {
        let functions = functions
            .iter()
            .map(|(f, t)| FunctionSpec {
                function: (*f).into(),
                dtype: *t,
            })
            .collect();
        self.transformation = Some(TransformSpec::SparkFunction(SparkFunctionSpec { functions, window }));
        self
    }
}

impl TimestampFeatureSpec {
    /// Timestamp read from `column`.
    pub fn from_column(column: &str) -> Self {
        Self {
            from_column: Some(column.into()),
            ..Self::default()
        }
    }
}

/// Whether a setting's name says it holds a secret.
pub fn is_secret_setting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "key.pem", "private", "sasl.jaas"]
        .iter()
        .any(|k| n.contains(k))
}

/// Client settings with the values of secret-looking names replaced by `***` (for `Debug`).
fn masked(options: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    options
        .iter()
        .map(|(k, v)| (k.as_str(), if is_secret_setting(k) { "***" } else { v.as_str() }))
        .collect()
}

impl fmt::Debug for CassandraConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraConfigSpec")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("keyspace", &self.keyspace)
            .field("local_dc", &self.local_dc)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("read_consistency", &self.read_consistency)
            .field("write_consistency", &self.write_consistency)
            .field("create_keyspace", &self.create_keyspace)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for KafkaReaderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = masked(&self.options);
        f.debug_struct("KafkaReaderSpec")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("connection_string", &self.connection_string)
            .field("value_schema", &self.value_schema)
            .field("options", &options)
            .field("starting_offsets", &self.starting_offsets)
            .field("ending_offsets", &self.ending_offsets)
            .field("stream", &self.stream)
            .field("columns", &self.columns)
            .field("incremental_strategy", &self.incremental_strategy)
            .finish()
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let c = CassandraConfigSpec {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let k = KafkaReaderSpec {
            id: "e".into(),
            topic: OneOrMany::One("t".into()),
            connection_string: None,
            value_schema: SchemaSpec::default(),
            options: BTreeMap::from([
                ("sasl.password".to_string(), "hunter2".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ]),
            starting_offsets: None,
            ending_offsets: None,
            stream: true,
            columns: vec![],
            incremental_strategy: None,
            pre_processing: vec![],
            hooks: HooksSpec::default(),
        };
        let text = format!("{k:?}");
        assert!(!text.contains("hunter2") && text.contains("SASL_SSL"), "{text}");
    }
}
