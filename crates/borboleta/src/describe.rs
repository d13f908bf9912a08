//! `borboleta describe`: a pipeline's metadata, with the fields of Butterfree 1.8.0's
//! `Metadata.to_json()` / `to_markdown()` (feature set, description, source, sink, features with
//! Spark type names and descriptions), plus the entity, keys and windows.

use arrow::datatypes::DataType;
use borboleta_core::naming::{TIMESTAMP_COLUMN, aggregated_feature_columns, feature_output_columns};
use borboleta_core::{FeatureSetPipelineSpec, FeatureSetSpec, TransformSpec};

use crate::FeatureSetPipeline;

/// Butterfree's name of a Spark type for an Arrow type (`IntegerType`, `TimestampType`, ...).
pub fn spark_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BooleanType".into(),
        DataType::Int8 => "ByteType".into(),
        DataType::Int16 => "ShortType".into(),
        DataType::Int32 => "IntegerType".into(),
        DataType::Int64 => "LongType".into(),
        DataType::Float32 => "FloatType".into(),
        DataType::Float64 => "DoubleType".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "StringType".into(),
        DataType::Binary | DataType::LargeBinary => "BinaryType".into(),
        DataType::Date32 | DataType::Date64 => "DateType".into(),
        DataType::Timestamp(_, Some(_)) => "TimestampType".into(),
        DataType::Timestamp(_, None) => "TimestampNTZType".into(),
        DataType::Decimal128(p, s) => format!("DecimalType({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) => format!("ArrayType({})", spark_type_name(f.data_type())),
        other => other.to_string(),
    }
}

/// The description of every output column: keys and features repeat their feature's description
/// on each column they produce; the timestamp gets Butterfree's default text.
fn descriptions(fs: &FeatureSetSpec, pivot_names: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for k in &fs.keys {
        for c in feature_output_columns(k) {
            out.push((c, k.description.clone()));
        }
    }
    out.push((
        TIMESTAMP_COLUMN.to_string(),
        "Time tag for the state of all features.".to_string(),
    ));
    for f in &fs.features {
        let cols = if fs.is_aggregated() {
            let only = FeatureSetSpec {
                features: vec![f.clone()],
                ..fs.clone()
            };
            aggregated_feature_columns(&only, pivot_names)
        } else {
            feature_output_columns(f)
        };
        for c in cols {
            out.push((c, f.description.clone()));
        }
    }
    out
}

/// One feature set's metadata, in the order of Butterfree's `Metadata.to_json()`, then ours.
#[derive(Debug, serde::Serialize)]
pub struct Metadata {
    /// Feature set name.
    pub feature_set: String,
    /// Its description.
    pub description: String,
    /// `{reader, location}` per reader.
    pub source: Vec<Source>,
    /// `{writer}` per writer.
    pub sink: Vec<Sink>,
    /// Every output column.
    pub features: Vec<Column>,
    /// The entity (Borboleta's addition).
    pub entity: String,
    /// The key columns.
    pub keys: Vec<String>,
    /// Window definitions (rolling windows of an aggregated feature set, or feature windows).
    pub windows: Vec<String>,
    /// Whether it is an aggregated feature set.
    pub aggregated: bool,
}

/// A reader in [`Metadata`].
#[derive(Debug, serde::Serialize)]
pub struct Source {
    /// Display name (`File Reader`, `Kafka Reader`).
    pub reader: String,
    /// Path or topic.
    pub location: String,
}

/// A writer in [`Metadata`].
#[derive(Debug, serde::Serialize)]
pub struct Sink {
    /// Display name.
    pub writer: String,
}

/// An output column in [`Metadata`].
#[derive(Debug, serde::Serialize)]
pub struct Column {
    /// Column name.
    pub column_name: String,
    /// Spark type name (`IntegerType`).
    pub data_type: String,
    /// Its feature's description.
    pub description: String,
}

/// The metadata of a built pipeline (Butterfree's `Metadata.to_json()` for one feature set).
pub fn describe(pipeline: &FeatureSetPipeline) -> Metadata {
    let spec: &FeatureSetPipelineSpec = pipeline.spec();
    let fs = &spec.feature_set;
    let schema = pipeline.schema();
    let pivots: Vec<String> = fs
        .aggregation
        .as_ref()
        .and_then(|a| a.pivot.as_ref())
        .and_then(|p| p.values.as_ref())
        .map(|v| v.iter().map(borboleta_core::PivotValue::name).collect())
        .unwrap_or_default();
    let described = descriptions(fs, &pivots);
    let features = schema
        .fields()
        .iter()
        .map(|f| Column {
            column_name: f.name().clone(),
            data_type: spark_type_name(f.data_type()),
            description: described
                .iter()
                .find(|(c, _)| c == f.name())
                .map(|(_, d)| d.clone())
                .unwrap_or_default(),
        })
        .collect();
    let source = pipeline
        .readers()
        .map(|r| {
            let d = r.describe();
            Source {
                reader: d.kind,
                location: d.location,
            }
        })
        .collect();
    let windows = match &fs.aggregation {
        Some(a) => a.windows.clone(),
        None => fs
            .features
            .iter()
            .filter_map(|f| match &f.transformation {
                Some(TransformSpec::SparkFunction(t)) => t.window.as_ref(),
                _ => None,
            })
            .flat_map(|w| w.definitions.iter().map(move |d| format!("{d} ({})", w.mode.as_str())))
            .collect(),
    };
    Metadata {
        feature_set: fs.name.clone(),
        description: fs.description.clone(),
        source,
        sink: pipeline
            .writers()
            .iter()
            .map(|w| Sink {
                writer: w.describe().kind,
            })
            .collect(),
        features,
        entity: fs.entity.clone(),
        keys: fs.keys.iter().flat_map(feature_output_columns).collect(),
        windows,
        aggregated: fs.is_aggregated(),
    }
}

/// Butterfree's `Metadata.to_markdown()` page for one feature set.
pub fn describe_markdown(pipeline: &FeatureSetPipeline) -> String {
    let m = describe(pipeline);
    let esc = |v: &str| v.replace('|', "\\|");
    let mut title = m.feature_set.clone();
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let quoted = |v: &[String]| v.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
    let mut out = format!("# {title}\n\n## Description\n\n{}\n\n", esc(&m.description));
    out.push_str(&format!("Entity: `{}`. Keys: {}.\n\n", m.entity, quoted(&m.keys)));
    if !m.windows.is_empty() {
        out.push_str(&format!("Windows: {}.\n\n", quoted(&m.windows)));
    }
    out.push_str("## Source\n\n| Reader | Location |\n| - | - |\n");
    for r in &m.source {
        out.push_str(&format!("| {} | {} |\n", esc(&r.reader), esc(&r.location)));
    }
    out.push_str("\n## Sink\n\n| Writer |\n| - |\n");
    for w in &m.sink {
        out.push_str(&format!("| {} |\n", esc(&w.writer)));
    }
    out.push_str("\n## Features\n\n| Column name | Data type | Description |\n| - | - | - |\n");
    for f in &m.features {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            esc(&f.column_name),
            esc(&f.data_type),
            esc(&f.description)
        ));
    }
    out
}
