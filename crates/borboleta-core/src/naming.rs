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
        _ => vec![feature.name.clone()],
    }
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

/// The feature columns of a feature set, in declaration order.
pub fn feature_columns(fs: &FeatureSetSpec) -> Vec<String> {
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
