//! Output column names, exactly as Butterfree names them (semantics §2.17).

use crate::spec::{FeatureSetSpec, FeatureSpec, TransformSpec};
use crate::window::{WindowDefinition, WindowMode};

/// The fixed name of the timestamp column.
pub const TIMESTAMP_COLUMN: &str = "timestamp";
/// Prefix of online debug tables.
pub const ONLINE_DEBUG_PREFIX: &str = "online_feature_store__";
/// Prefix of historical debug tables.
pub const HISTORICAL_DEBUG_PREFIX: &str = "historical_feature_store__";
/// Historical partition columns.
pub const PARTITION_COLUMNS: [&str; 3] = ["year", "month", "day"];

/// The output columns of one feature: `name`, or `<name>__<function>[_<window name>]` for each
/// function (outer) and window (inner) of a function transform.
pub fn feature_output_columns(feature: &FeatureSpec) -> Vec<String> {
    match &feature.transformation {
        Some(TransformSpec::SparkFunction(t)) => {
            let windows: Vec<Option<String>> = match &t.window {
                Some(w) => w.definitions.iter().map(|d| Some(window_name(d, w.mode))).collect(),
                None => vec![None],
            };
            let mut out = Vec::new();
            for f in &t.functions {
                for w in &windows {
                    out.push(match w {
                        Some(w) => format!("{}__{}_{}", feature.name, f.function, w),
                        None => format!("{}__{}", feature.name, f.function),
                    });
                }
            }
            out
        }
        Some(TransformSpec::Aggregated(t)) => t
            .functions
            .iter()
            .map(|f| format!("{}__{}", feature.name, f.function.to_ascii_lowercase()))
            .collect(),
        Some(TransformSpec::H3(h)) if !h.stack => h3_columns(h),
        _ => vec![feature.name.clone()],
    }
}

/// The feature columns of an aggregated feature set, as Butterfree names and orders them: pivot
/// values (outer loop, prefix `<value>_`), features and their functions in declaration order,
/// windows (inner loop, suffix `_over_<n>_<unit>_rolling_windows`). `pivot_names` are the pivot
/// values' names ([`crate::PivotValue::name`]); empty without a pivot.
pub fn aggregated_feature_columns(fs: &FeatureSetSpec, pivot_names: &[String]) -> Vec<String> {
    let windows: Vec<Option<String>> = match &fs.aggregation {
        Some(a) if !a.windows.is_empty() => a
            .windows
            .iter()
            .map(|d| Some(window_name(d, WindowMode::RollingWindows)))
            .collect(),
        _ => vec![None],
    };
    let pivots: Vec<Option<&String>> = if pivot_names.is_empty() {
        vec![None]
    } else {
        pivot_names.iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for p in &pivots {
        for f in &fs.features {
            for base in feature_output_columns(f) {
                for w in &windows {
                    let mut name = match p {
                        Some(p) => format!("{p}_{base}"),
                        None => base.clone(),
                    };
                    if let Some(w) = w {
                        name = format!("{name}_{w}");
                    }
                    out.push(name);
                }
            }
        }
    }
    out
}

/// Butterfree's H3 column names, one per resolution: `lat_lng__h3_hash__<resolution>`.
pub fn h3_columns(h: &crate::spec::H3TransformSpec) -> Vec<String> {
    h.resolutions.iter().map(|r| format!("lat_lng__h3_hash__{r}")).collect()
}

fn window_name(definition: &str, mode: WindowMode) -> String {
    WindowDefinition::parse(definition, mode)
        .map(|w| w.name())
        .unwrap_or_else(|_| format!("over_{}_{}", definition.replace(' ', "_"), mode.as_str()))
}

/// The key columns of a feature set.
pub fn key_columns(fs: &FeatureSetSpec) -> Vec<String> {
    fs.keys.iter().flat_map(feature_output_columns).collect()
}

/// The feature columns of a feature set, in declaration order. For an aggregated feature set
/// with a pivot whose values are found in the data, the pivot prefixes are known only when the
/// pipeline is planned (these names then lack them).
pub fn feature_columns(fs: &FeatureSetSpec) -> Vec<String> {
    if fs.is_aggregated() {
        let pivots: Vec<String> = fs
            .aggregation
            .as_ref()
            .and_then(|a| a.pivot.as_ref())
            .and_then(|p| p.values.as_ref())
            .map(|v| v.iter().map(crate::PivotValue::name).collect())
            .unwrap_or_default();
        return aggregated_feature_columns(fs, &pivots);
    }
    fs.features.iter().flat_map(feature_output_columns).collect()
}

/// All output columns: keys, `timestamp`, features.
pub fn output_columns(fs: &FeatureSetSpec) -> Vec<String> {
    let mut cols = key_columns(fs);
    cols.push(TIMESTAMP_COLUMN.to_string());
    cols.extend(feature_columns(fs));
    cols
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::FeatureDataType::Float;
    use crate::spec::{FunctionWindowSpec, OneOrMany};

    #[test]
    fn function_transform_names_functions_outer_windows_inner() {
        let window = FunctionWindowSpec {
            partition_by: OneOrMany::One("id".into()),
            order_by: None,
            mode: WindowMode::FixedWindows,
            definitions: vec!["2 minutes".into(), "15 minutes".into()],
        };
        let f = FeatureSpec::new("feature1").functions(&[("avg", Float), ("stddev_pop", Float)], Some(window));
        assert_eq!(
            feature_output_columns(&f),
            [
                "feature1__avg_over_2_minutes_fixed_windows",
                "feature1__avg_over_15_minutes_fixed_windows",
                "feature1__stddev_pop_over_2_minutes_fixed_windows",
                "feature1__stddev_pop_over_15_minutes_fixed_windows",
            ]
        );
    }
}
