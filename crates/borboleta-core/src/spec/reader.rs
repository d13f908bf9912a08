//! Readers: files, Kafka topics, tables; their pre-processing, column selection and incremental strategy.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::common::*;
use crate::dtype::FeatureDataType;

/// A reader, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
