//! The feature set: keys, timestamp, features and their transformations, aggregations.

use serde::{Deserialize, Serialize};

use super::common::*;
use crate::dtype::FeatureDataType;
use crate::window::WindowMode;

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
