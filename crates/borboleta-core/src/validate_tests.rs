//! One test per rule of `validate` (and `validate_run_dates`): each mutates a valid spec so that
//! exactly that rule fires and asserts every problem reported, path, line and message.

use super::*;
use crate::{Error, FeatureSetPipelineSpec};

/// A valid batch spec.
const BATCH: &str = "\
readers:
  - {id: events, type: file, path: events.jsonl, format: json}
source: {query: select * from events}
feature_set:
  name: user_features
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features:
    - {name: amount, dtype: double}
writers: [{type: historical_feature_store}, {type: online_feature_store}]
";

/// A valid streaming spec.
const STREAM: &str = "\
readers:
  - {id: events, type: file, path: in, format: json, stream: true}
source: {query: select * from events}
feature_set:
  name: user_features
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features:
    - {name: amount, dtype: double}
writers: [{type: historical_feature_store}, {type: online_feature_store}]
streaming: {checkpoint_path: ck}
";

/// `base` with each `(from, to)` replaced once, through the YAML loader: every problem found,
/// as printed (`path (line N): message`).
fn problems(base: &str, edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = base.to_string();
    for (from, to) in edits {
        let next = text.replacen(from, to, 1);
        assert_ne!(next, text, "`{from}` is not in the spec");
        text = next;
    }
    match FeatureSetPipelineSpec::from_yaml_str(&text, None, &|_| None) {
        Ok(_) => vec![],
        Err(Error::Spec(issues)) => issues.0.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_base_specs_are_valid() {
    assert_eq!(problems(BATCH, &[]), Vec::<String>::new());
    assert_eq!(problems(STREAM, &[]), Vec::<String>::new());
}

#[test]
fn readers_are_required() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  []\n"
            )]
        ),
        ["readers (line 1): at least one reader is required"]
    );
}

#[test]
fn reader_ids_are_identifiers() {
    assert_eq!(
        problems(BATCH, &[("id: events", "id: my events")]),
        ["readers[0].id (line 2): reader id `my events` must be a SQL identifier (letters, digits, _)"]
    );
}

#[test]
fn reader_ids_are_unique() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: file, path: events.jsonl, format: json}\n  - {id: Events, type: file, path: b.jsonl, format: json}\n"
            )]
        ),
        ["readers[1].id (line 3): reader id `Events` is already used by readers[0]"]
    );
}

#[test]
fn pivot_mock_value_and_type_go_together() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: file, path: e.jsonl, format: json, pre_processing: [{pivot: {group_by: [id], pivot_column: k, agg_column: v, aggregation: first, mock_value: '-1'}}]}\n"
            )]
        ),
        ["readers[0].pre_processing[0].pivot (line 2): `mock_value` and `mock_type` go together"]
    );
}

#[test]
fn file_paths_are_not_empty() {
    assert_eq!(
        problems(BATCH, &[("path: events.jsonl", "path: ' '")]),
        ["readers[0].path (line 2): path must not be empty"]
    );
}

#[test]
fn streaming_file_readers_read_folders() {
    assert_eq!(
        problems(STREAM, &[("path: in,", "path: 'in/*.jsonl',")]),
        ["readers[0].path (line 2): a streaming file reader reads a folder: give the folder, not a glob"]
    );
}

#[test]
fn max_file_age_is_for_streams() {
    assert_eq!(
        problems(BATCH, &[("format: json}", "format: json, max_file_age_seconds: 60}")]),
        [
            "readers[0].max_file_age_seconds (line 2): `max_file_age_seconds` applies to streaming readers (`stream: true`)"
        ]
    );
}

#[test]
fn tables_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: table, table: ''}\n"
            )]
        ),
        ["readers[0].table (line 2): table must not be empty"]
    );
}

#[test]
fn tables_are_in_the_catalog_or_have_a_database() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: table, table: raw}\n"
            )]
        ),
        [
            "readers[0].table (line 2): table `raw` is not in `catalog:`; give its `database` (for a historical table of the feature store: the entity)"
        ]
    );
}

#[test]
fn kafka_readers_need_a_topic() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: kafka, topic: [' '], value_schema: {id: bigint}, stream: false}\n"
            )]
        ),
        ["readers[0].topic (line 2): at least one topic is required"]
    );
}

#[test]
fn kafka_value_schemas_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: kafka, topic: t, value_schema: {}, stream: false}\n"
            )]
        ),
        ["readers[0].value_schema (line 2): the value schema needs at least one column"]
    );
}

#[test]
fn kafka_named_offsets_are_earliest_or_latest() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: kafka, topic: t, value_schema: {id: bigint}, stream: false, starting_offsets: first, ending_offsets: last}\n"
            )]
        ),
        [
            "readers[0].starting_offsets (line 2): `first`: expected `earliest`, `latest`, `{timestamp: <RFC 3339>}` or `{\"<partition>\": <offset>}`",
            "readers[0].ending_offsets (line 2): `last`: expected `earliest`, `latest`, `{timestamp: <RFC 3339>}` or `{\"<partition>\": <offset>}`"
        ]
    );
}

#[test]
fn kafka_offset_timestamps_are_rfc3339() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: kafka, topic: t, value_schema: {id: bigint}, stream: false, starting_offsets: {timestamp: yesterday}}\n"
            )]
        ),
        [
            "readers[0].starting_offsets.timestamp (line 2): `yesterday` is not an RFC 3339 instant (e.g. 2024-01-01T00:00:00Z)"
        ]
    );
}

#[test]
fn kafka_ending_offsets_are_for_bounded_reads() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - {id: events, type: kafka, topic: t, value_schema: {id: bigint}, ending_offsets: latest}\n"
            )]
        ),
        ["readers[0].ending_offsets (line 2): `ending_offsets` bounds a batch read: set `stream: false`"]
    );
}

#[test]
fn column_aliases_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[("format: json}", "format: json, columns: [{expression: id, alias: ''}]}")]
        ),
        ["readers[0].columns[0].alias (line 2): alias must not be empty"]
    );
}

#[test]
fn incremental_strategies_set_exactly_one_source() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "format: json}",
                "format: json, incremental_strategy: {column: ts, from_milliseconds: ms}}"
            )]
        ),
        [
            "readers[0].incremental_strategy (line 2): set exactly one of `column`, `from_milliseconds`, `from_string` (with `mask`) or `from_year_month_day_partitions`"
        ]
    );
}

#[test]
fn incremental_masks_go_with_from_string() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "format: json}",
                "format: json, incremental_strategy: {column: ts, mask: yyyy-MM-dd}}"
            )]
        ),
        ["readers[0].incremental_strategy.mask (line 2): `mask` goes with `from_string`"]
    );
}

#[test]
fn the_source_query_is_not_empty() {
    assert_eq!(
        problems(BATCH, &[("{query: select * from events}", "{query: ' '}")]),
        ["source.query (line 3): the source query must not be empty"]
    );
}

#[test]
fn feature_set_name_and_entity_are_identifiers() {
    assert_eq!(
        problems(
            BATCH,
            &[
                ("name: user_features", "name: user features"),
                ("entity: user", "entity: ''")
            ]
        ),
        [
            "feature_set.name (line 5): `user features` must be a non-empty identifier (letters, digits, _): it names tables and folders",
            "feature_set.entity (line 6): `` must be a non-empty identifier (letters, digits, _): it names tables and folders"
        ]
    );
}

#[test]
fn keys_are_required() {
    assert_eq!(
        problems(BATCH, &[("keys: [{name: id, dtype: bigint}]", "keys: []")]),
        ["feature_set.keys (line 7): at least one key is required"]
    );
}

#[test]
fn keys_need_a_dtype() {
    assert_eq!(
        problems(BATCH, &[("keys: [{name: id, dtype: bigint}]", "keys: [{name: id}]")]),
        ["feature_set.keys[0].dtype (line 7): key `id` needs a dtype"]
    );
}

#[test]
fn features_are_required() {
    assert_eq!(
        problems(BATCH, &[("    - {name: amount, dtype: double}\n", "    []\n")]),
        ["feature_set.features (line 9): at least one feature is required"]
    );
}

#[test]
fn features_need_a_dtype() {
    assert_eq!(
        problems(
            BATCH,
            &[("    - {name: amount, dtype: double}\n", "    - {name: amount}\n")]
        ),
        [
            "feature_set.features[0].dtype (line 10): feature `amount` needs a dtype (only function transforms take the type of each function)"
        ]
    );
}

#[test]
fn names_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[("    - {name: amount, dtype: double}\n", "    - {dtype: double}\n")]
        ),
        ["feature_set.features[0].name (line 10): name must not be empty"]
    );
}

#[test]
fn key_and_feature_names_are_identifiers() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "keys: [{name: id, dtype: bigint}]",
                    "keys: [{name: user id, from_column: id, dtype: bigint}]"
                ),
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: 2x, dtype: double}\n"
                )
            ]
        ),
        [
            "feature_set.keys[0].name (line 7): `user id` is not an identifier: a key name is letters, digits and `_`, not starting with a digit (it names a column of the feature stores)",
            "feature_set.features[0].name (line 10): `2x` is not an identifier: a feature name is letters, digits and `_`, not starting with a digit (it names a column of the feature stores)"
        ]
    );
}

#[test]
fn sql_expressions_take_no_from_column() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, dtype: double, from_column: x, transformation: {type: sql_expression, expression: x * 2}}\n"
            )]
        ),
        [
            "feature_set.features[0].from_column (line 10): a sql_expression feature reads what its expression names; remove `from_column`"
        ]
    );
}

#[test]
fn sql_expressions_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, dtype: double, transformation: {type: sql_expression, expression: ' '}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.expression (line 10): expression must not be empty"]
    );
}

#[test]
fn function_transforms_need_functions() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: []}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.functions (line 10): at least one function is required"]
    );
}

#[test]
fn function_names_are_identifiers() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: log 1p, dtype: double}]}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.functions[0].function (line 10): `log 1p` is not a function name"]
    );
}

#[test]
fn function_windows_are_not_rolling() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: id, mode: rolling_windows, definitions: [1 day]}}}\n"
            )]
        ),
        [
            "feature_set.features[0].transformation.window.mode (line 10): rolling_windows belong to aggregated feature sets; use fixed_windows or row_windows"
        ]
    );
}

#[test]
fn function_windows_need_definitions() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: id, mode: fixed_windows, definitions: []}}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.window.definitions (line 10): at least one window is required"]
    );
}

#[test]
fn function_windows_need_a_partition() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: [], mode: fixed_windows, definitions: [1 day]}}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.window.partition_by (line 10): at least one column is required"]
    );
}

#[test]
fn function_window_definitions_parse() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: id, mode: fixed_windows, definitions: [7 daily, 1 month, 0 days, x days, ' 7 ']}}}\n"
            )]
        ),
        [
            "feature_set.features[0].transformation.window.definitions[0] (line 10): window `7 daily`: unknown unit `daily`; expected second(s), minute(s), hour(s), day(s) or week(s)",
            "feature_set.features[0].transformation.window.definitions[1] (line 10): window `1 month`: `month` has no fixed length; use days or weeks (e.g. `365 days`)",
            "feature_set.features[0].transformation.window.definitions[2] (line 10): window `0 days` must have a positive size",
            "feature_set.features[0].transformation.window.definitions[3] (line 10): window `x days`: `x` is not a whole number",
            "feature_set.features[0].transformation.window.definitions[4] (line 10): window ` 7 ` must be `<number> <unit>`, e.g. `7 days`"
        ]
    );
}

#[test]
fn row_window_units_make_identifiers() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: id, mode: row_windows, definitions: [3 past-events]}}}\n"
            )]
        ),
        [
            "feature_set.features[0].transformation.window.definitions[0] (line 10): window `3 past-events` names the column `amount__avg_over_3_past-events_row_windows`, which is not an identifier: write the unit with letters, digits and `_`"
        ]
    );
}

#[test]
fn aggregated_transforms_need_functions() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: aggregated, functions: []}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.functions (line 10): at least one function is required"]
    );
}

#[test]
fn aggregate_functions_are_known() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: aggregated, functions: [{function: medianx, dtype: double}, {function: mode, dtype: double}]}}\n"
            )]
        ),
        [
            "feature_set.features[0].transformation.functions[0].function (line 10): unknown aggregate `medianx` (did you mean `mean`?); allowed: avg, mean, sum, count, min, max, stddev_pop, stddev, stddev_samp, var_pop, var_samp, variance, approx_count_distinct, collect_set, collect_list, first, last",
            "feature_set.features[0].transformation.functions[1].function (line 10): `mode` is not supported yet; allowed: avg, mean, sum, count, min, max, stddev_pop, stddev, stddev_samp, var_pop, var_samp, variance, approx_count_distinct, collect_set, collect_list, first, last"
        ]
    );
}

#[test]
fn aggregated_filters_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}], filter_expression: ' '}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.filter_expression (line 10): filter_expression must not be empty"]
    );
}

#[test]
fn h3_transforms_need_resolutions() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: location, transformation: {type: h3, resolutions: [], lat_column: lat, lng_column: lng}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.resolutions (line 10): at least one resolution is required"]
    );
}

#[test]
fn h3_resolutions_exist() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: location, transformation: {type: h3, resolutions: [8, 16], lat_column: lat, lng_column: lng}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.resolutions[1] (line 10): H3 resolution 16 does not exist (0-15)"]
    );
}

#[test]
fn stack_transforms_need_columns() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: value, dtype: double, transformation: {type: stack, columns: []}}\n"
            )]
        ),
        ["feature_set.features[0].transformation.columns (line 10): at least one column pattern is required"]
    );
}

#[test]
fn output_columns_are_produced_once() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, dtype: double}\n    - {name: id, dtype: bigint}\n    - {name: timestamp, dtype: timestamp}\n    - {name: amount, dtype: double}\n"
            )]
        ),
        [
            "feature_set.features[1].name (line 11): output column `id` is already produced by feature_set.keys[0]",
            "feature_set.features[2].name (line 12): output column `timestamp` is already produced by feature_set.timestamp",
            "feature_set.features[3].name (line 13): output column `amount` is already produced by feature_set.features[0]"
        ]
    );
}

#[test]
fn aggregated_feature_sets_aggregate_every_feature() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n    - {name: other, dtype: double}\n"
            )]
        ),
        [
            "feature_set.features[1].transformation (line 11): feature `other`: every feature of an aggregated feature set needs `type: aggregated` (Butterfree's AggregatedTransform)"
        ]
    );
}

#[test]
fn keys_are_not_aggregated() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "keys: [{name: id, dtype: bigint}]",
                    "keys: [{name: id, dtype: bigint, transformation: {type: aggregated, functions: [{function: max, dtype: bigint}]}}]"
                )
            ]
        ),
        ["feature_set.keys[0].transformation (line 7): a key cannot be aggregated"]
    );
}

#[test]
fn slides_parse() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {windows: [1 day], slide: 1 month}\n"
                )
            ]
        ),
        [
            "feature_set.aggregation.slide (line 9): slide `1 month`: `month` has no fixed length; use days or weeks (e.g. `365 days`)"
        ]
    );
}

#[test]
fn slides_need_windows() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {slide: 1 day}\n"
                )
            ]
        ),
        ["feature_set.aggregation.slide (line 9): a slide needs `windows`"]
    );
}

#[test]
fn rolling_windows_parse_and_fit_the_slide() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {windows: [7 daily, 6 hours, 30 hours], slide: 12 hours}\n"
                )
            ]
        ),
        [
            "feature_set.aggregation.windows[0] (line 9): window `7 daily`: unknown unit `daily`; expected second(s), minute(s), hour(s), day(s) or week(s)",
            "feature_set.aggregation.windows[1] (line 9): window `6 hours` is shorter than the slide",
            "feature_set.aggregation.windows[2] (line 9): window `30 hours` is not a whole number of slides (43200 s): windows are combined from per-slide partial aggregates"
        ]
    );
}

#[test]
fn rolling_windows_take_mergeable_aggregates() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: collect_set, dtype: string}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {windows: [1 day]}\n"
                )
            ]
        ),
        [
            "feature_set.features[0].transformation.functions[0].function (line 11): `collect_set` is not supported over rolling windows yet; allowed: avg, mean, sum, count, min, max, stddev_pop, stddev, stddev_samp, var_pop, var_samp, variance"
        ]
    );
}

#[test]
fn distinct_subsets_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {distinct: {subset: []}}\n"
                )
            ]
        ),
        ["feature_set.aggregation.distinct.subset (line 9): the distinct subset can't be empty"]
    );
}

#[test]
fn pivot_columns_and_values_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {pivot: {column: ' ', values: []}}\n"
                )
            ]
        ),
        [
            "feature_set.aggregation.pivot.column (line 9): must not be empty",
            "feature_set.aggregation.pivot.values (line 9): at least one value is required"
        ]
    );
}

#[test]
fn pivot_values_make_column_names() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {pivot: {column: kind, values: [a b, 1, -1, x_1]}}\n"
                )
            ]
        ),
        [
            "feature_set.aggregation.pivot.values[0] (line 9): pivot value `a b` prefixes column names (`a b_<feature>__<function>`): it must be letters, digits and `_` (filter or map the other values in the source query)",
            "feature_set.aggregation.pivot.values[2] (line 9): pivot value `-1` prefixes column names (`-1_<feature>__<function>`): it must be letters, digits and `_` (filter or map the other values in the source query)"
        ]
    );
}

#[test]
fn aggregated_output_columns_are_produced_once() {
    assert_eq!(
        problems(
            BATCH,
            &[
                (
                    "    - {name: amount, dtype: double}\n",
                    "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
                ),
                (
                    "  timestamp: {from_column: ts}\n",
                    "  timestamp: {from_column: ts}\n  aggregation: {pivot: {column: kind, values: [a, a]}}\n"
                )
            ]
        ),
        ["feature_set.features (line 10): output column `a_amount__avg` is produced twice"]
    );
}

#[test]
fn timestamps_are_timestamps() {
    assert_eq!(
        problems(BATCH, &[("{from_column: ts}", "{from_column: ts, dtype: bigint}")]),
        ["feature_set.timestamp.dtype (line 8): must be `timestamp` or `timestamp_ntz`"]
    );
}

#[test]
fn timestamp_masks_parse_strings() {
    assert_eq!(
        problems(
            BATCH,
            &[("{from_column: ts}", "{from_column: ts, from_ms: true, mask: yyyy}")]
        ),
        ["feature_set.timestamp.mask (line 8): `mask` parses strings; it cannot be used with `from_ms`"]
    );
}

#[test]
fn streaming_settings_need_a_stream() {
    assert_eq!(
        problems(BATCH, &[("writers:", "streaming: {available_now: true}\nwriters:")]),
        ["streaming (line 11): `streaming` settings need a streaming reader (`stream: true` on a reader)"]
    );
}

#[test]
fn streams_do_not_deduplicate() {
    assert_eq!(
        problems(
            STREAM,
            &[("  entity: user\n", "  entity: user\n  deduplicate_rows: true\n")]
        ),
        [
            "feature_set.deduplicate_rows (line 7): the duplicate-row filter compares a row with the previous row of its key, which may be in an earlier micro-batch: it is off on streams (as in Butterfree); remove `deduplicate_rows: true`"
        ]
    );
}

#[test]
fn streams_do_not_aggregate() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n"
            )]
        ),
        [
            "feature_set.aggregation (line 4): an aggregated feature set groups rows across micro-batches: it is not supported on streaming pipelines yet (run it in batch)"
        ]
    );
}

#[test]
fn streams_have_no_function_windows() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "    - {name: amount, dtype: double}\n",
                "    - {name: amount, transformation: {type: spark_function, functions: [{function: avg, dtype: double}], window: {partition_by: id, mode: row_windows, definitions: [3 events]}}}\n"
            )]
        ),
        [
            "feature_set.features[0].transformation.window (line 10): feature `amount`: a windowed function needs the rows of earlier micro-batches; windows are not supported on streaming pipelines yet"
        ]
    );
}

#[test]
fn stream_readers_do_not_forward_fill_or_pivot() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "stream: true}",
                "stream: true, pre_processing: [{filter: amount > 0}, {forward_fill: {partition_by: id, order_by: ts, fill_column: amount}}]}"
            )]
        ),
        [
            "readers[0].pre_processing[1] (line 2): forward_fill and pivot need the rows of earlier micro-batches: not supported on a stream"
        ]
    );
}

#[test]
fn streams_have_no_interval_mode() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "{type: historical_feature_store}",
                "{type: historical_feature_store, interval_mode: true}"
            )]
        ),
        [
            "writers[0].interval_mode (line 11): a streaming pipeline appends one file per micro-batch and partition; `interval_mode` (replace the partitions of a run) is for batch runs"
        ]
    );
}

#[test]
fn streaming_limits_are_positive() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "streaming: {checkpoint_path: ck}",
                "streaming: {checkpoint_path: ck, max_rows_per_batch: 0, debug_max_rows: 0}"
            )]
        ),
        [
            "streaming.max_rows_per_batch (line 12): must be at least 1",
            "streaming.debug_max_rows (line 12): must be at least 1"
        ]
    );
}

#[test]
fn available_now_takes_no_processing_time() {
    assert_eq!(
        problems(
            STREAM,
            &[(
                "streaming: {checkpoint_path: ck}",
                "streaming: {checkpoint_path: ck, available_now: true, processing_time_ms: 10}"
            )]
        ),
        [
            "streaming.available_now (line 12): `available_now` processes what is there and stops; it takes no `processing_time_ms`"
        ]
    );
}

#[test]
fn writers_are_required() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "writers: [{type: historical_feature_store}, {type: online_feature_store}]",
                "writers: []"
            )]
        ),
        ["writers (line 11): at least one writer is required"]
    );
}

#[test]
fn the_source_has_no_pre_hooks() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{query: select * from events}",
                "{query: select * from events, hooks: {pre: [select * from input]}}"
            )]
        ),
        ["source.hooks.pre (line 3): the source has no pre-hooks (as in Butterfree): use the readers' post-hooks"]
    );
}

#[test]
fn the_sink_has_no_post_hooks() {
    assert_eq!(
        problems(
            BATCH,
            &[("writers:", "sink: {hooks: {post: [select * from input]}}\nwriters:")]
        ),
        ["sink.hooks.post (line 11): the sink has no post-hooks (as in Butterfree): the rows are written by then"]
    );
}

#[test]
fn validation_thresholds_are_fractions() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: historical_feature_store}",
                "{type: historical_feature_store, validation_threshold: 1.5}"
            )]
        ),
        ["writers[0].validation_threshold (line 11): must be between 0 and 1"]
    );
}

#[test]
fn future_skews_are_not_negative() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, max_future_skew_seconds: -1}"
            )]
        ),
        ["writers[1].max_future_skew_seconds (line 11): must not be negative"]
    );
}

#[test]
fn online_writers_write_to_cassandra_or_kafka() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, cassandra: {keyspace: ks}, kafka: {topic: t}}"
            )]
        ),
        ["writers[1] (line 11): an online writer writes to Cassandra or to Kafka, not both: declare two writers"]
    );
}

#[test]
fn kafka_writer_topics_are_not_empty() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, kafka: {topic: ' '}}"
            )]
        ),
        ["writers[1].kafka.topic (line 11): must not be empty"]
    );
}

#[test]
fn ttls_are_for_cassandra() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, ttl_seconds: 60}"
            )]
        ),
        ["writers[1].ttl_seconds (line 11): `ttl_seconds` applies to the Cassandra online store (add `cassandra:`)"]
    );
}

#[test]
fn ttls_are_at_least_one_second() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, ttl_seconds: 0, cassandra: {keyspace: ks}}"
            )]
        ),
        ["writers[1].ttl_seconds (line 11): must be at least 1"]
    );
}

#[test]
fn keyspaces_are_identifiers() {
    assert_eq!(
        problems(
            BATCH,
            &[(
                "{type: online_feature_store}",
                "{type: online_feature_store, cassandra: {keyspace: my-ks}}"
            )]
        ),
        ["writers[1].cassandra.keyspace (line 11): `my-ks` is not a valid keyspace name (letters, digits, _)"]
    );
}

/// The problems of `validate_run_dates` for `base` with `edits` and the run's dates.
fn run_problems(base: &str, edits: &[(&str, &str)], start: Option<&str>, end: Option<&str>) -> Vec<String> {
    let mut text = base.to_string();
    for (from, to) in edits {
        let next = text.replacen(from, to, 1);
        assert_ne!(next, text, "`{from}` is not in the spec");
        text = next;
    }
    let spec = FeatureSetPipelineSpec::from_yaml_str(&text, None, &|_| None).unwrap();
    let date = |d: Option<&str>| d.map(|d| crate::time::parse_date(d).unwrap());
    let mut issues = validate_run_dates(&spec, date(start), date(end));
    spec.locate(&mut issues);
    issues.0.iter().map(ToString::to_string).collect()
}

const WINDOWS: [(&str, &str); 2] = [
    (
        "    - {name: amount, dtype: double}\n",
        "    - {name: amount, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}\n",
    ),
    (
        "  timestamp: {from_column: ts}\n",
        "  timestamp: {from_column: ts}\n  aggregation: {windows: [7 days]}\n",
    ),
];

#[test]
fn run_dates_of_a_valid_batch_run() {
    assert_eq!(run_problems(BATCH, &[], None, None), Vec::<String>::new());
    assert_eq!(
        run_problems(BATCH, &[], Some("2024-01-01"), Some("2024-01-01")),
        Vec::<String>::new()
    );
    assert_eq!(
        run_problems(BATCH, &WINDOWS, None, Some("2024-01-07")),
        Vec::<String>::new()
    );
    // without windows, an aggregated feature set groups by keys and timestamp: no end date needed
    assert_eq!(run_problems(BATCH, &WINDOWS[..1], None, None), Vec::<String>::new());
}

#[test]
fn run_dates_start_before_they_end() {
    assert_eq!(
        run_problems(BATCH, &[], Some("2024-01-02"), Some("2024-01-01")),
        ["--start-date: start date 2024-01-02 is after end date 2024-01-01"]
    );
}

#[test]
fn runs_of_windows_need_an_end_date() {
    assert_eq!(
        run_problems(BATCH, &WINDOWS, Some("2024-01-01"), None),
        [
            "feature_set.aggregation.windows (line 9): an aggregated feature set with windows needs an end date: run \
             with --end-date (or --date)"
        ]
    );
}

#[test]
fn streams_take_no_run_dates() {
    assert_eq!(run_problems(STREAM, &[], None, None), Vec::<String>::new());
    for (start, end) in [(Some("2024-01-01"), None), (None, Some("2024-01-01"))] {
        assert_eq!(
            run_problems(STREAM, &[], start, end),
            [
                "--start-date: a streaming pipeline takes whatever arrives: --start-date, --end-date and --date are \
                 for batch runs"
            ]
        );
    }
}
