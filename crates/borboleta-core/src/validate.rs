//! Checks that need no data: every problem is collected with its YAML path.
//!
//! Over 600 lines: one function per part of the spec, each rule next to the ones it depends on; its tests are in validate_tests.rs.

use std::collections::HashMap;

use crate::error::SpecIssues;
use crate::naming::{TIMESTAMP_COLUMN, feature_output_columns};
use crate::spec::{FeatureSetPipelineSpec, FeatureSpec, ReaderSpec, TransformSpec, WriterSpec};
use crate::window::{WindowDefinition, WindowMode};

/// Whether `s` can be used as a table/reader/column name without quoting: letters, digits and
/// `_`, not starting with a digit (what Spark SQL, CQL and the stores' folders take unquoted).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validates everything that can be checked from the spec alone.
pub fn validate(spec: &FeatureSetPipelineSpec) -> SpecIssues {
    let mut issues = SpecIssues::default();
    if spec.readers.is_empty() {
        issues.push("readers", "at least one reader is required");
    }
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, reader) in spec.readers.iter().enumerate() {
        let path = format!("readers[{i}]");
        let id = reader.id();
        if !is_identifier(id) {
            issues.push(
                format!("{path}.id"),
                format!("reader id `{id}` must be a SQL identifier (letters, digits, _)"),
            );
        }
        if let Some(first) = ids.insert(id.to_ascii_lowercase(), i) {
            issues.push(
                format!("{path}.id"),
                format!("reader id `{id}` is already used by readers[{first}]"),
            );
        }
        for (j, step) in reader.pre_processing().iter().enumerate() {
            if let crate::spec::PreProcessingSpec::Pivot {
                mock_value, mock_type, ..
            } = step
                && mock_value.is_some() != mock_type.is_some()
            {
                issues.push(
                    format!("{path}.pre_processing[{j}].pivot"),
                    "`mock_value` and `mock_type` go together",
                );
            }
        }
        match reader {
            ReaderSpec::File(f) => {
                if f.path.trim().is_empty() {
                    issues.push(format!("{path}.path"), "path must not be empty");
                }
                if f.stream && f.path.contains(['*', '?', '[']) {
                    issues.push(
                        format!("{path}.path"),
                        "a streaming file reader reads a folder: give the folder, not a glob",
                    );
                }
                if !f.stream && f.max_file_age_seconds.is_some() {
                    issues.push(
                        format!("{path}.max_file_age_seconds"),
                        "`max_file_age_seconds` applies to streaming readers (`stream: true`)",
                    );
                }
            }
            ReaderSpec::Kafka(_) => {}
            ReaderSpec::Table(t) => {
                let name = t.qualified_name();
                if t.table.trim().is_empty() {
                    issues.push(format!("{path}.table"), "table must not be empty");
                } else if t.database.is_none() && !spec.catalog.contains_key(&name) {
                    issues.push(
                        format!("{path}.table"),
                        format!(
                            "table `{name}` is not in `catalog:`; give its `database` (for a historical table of \
                             the feature store: the entity)"
                        ),
                    );
                }
            }
        }
        if let ReaderSpec::Kafka(k) = reader {
            if k.topic.to_vec().iter().all(|t| t.trim().is_empty()) {
                issues.push(format!("{path}.topic"), "at least one topic is required");
            }
            if k.value_schema.0.is_empty() {
                issues.push(
                    format!("{path}.value_schema"),
                    "the value schema needs at least one column",
                );
            }
            for (field, o) in [
                ("starting_offsets", &k.starting_offsets),
                ("ending_offsets", &k.ending_offsets),
            ] {
                match o {
                    Some(crate::KafkaOffsetsSpec::Named(n)) if n != "earliest" && n != "latest" => issues.push(
                        format!("{path}.{field}"),
                        format!("`{n}`: expected `earliest`, `latest`, `{{timestamp: <RFC 3339>}}` or `{{\"<partition>\": <offset>}}`"),
                    ),
                    Some(crate::KafkaOffsetsSpec::Time { timestamp })
                        if chrono::DateTime::parse_from_rfc3339(timestamp).is_err() =>
                    {
                        issues.push(
                            format!("{path}.{field}.timestamp"),
                            format!("`{timestamp}` is not an RFC 3339 instant (e.g. 2024-01-01T00:00:00Z)"),
                        )
                    }
                    _ => {}
                }
            }
            if k.stream && k.ending_offsets.is_some() {
                issues.push(
                    format!("{path}.ending_offsets"),
                    "`ending_offsets` bounds a batch read: set `stream: false`",
                );
            }
        }
        for (j, c) in reader.columns().iter().enumerate() {
            if c.alias.trim().is_empty() {
                issues.push(format!("{path}.columns[{j}].alias"), "alias must not be empty");
            }
        }
        if let Some(inc) = reader.incremental_strategy() {
            let set = [
                inc.column.is_some(),
                inc.from_milliseconds.is_some(),
                inc.from_string.is_some(),
                inc.from_year_month_day_partitions,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set != 1 {
                issues.push(
                    format!("{path}.incremental_strategy"),
                    "set exactly one of `column`, `from_milliseconds`, `from_string` (with `mask`) or `from_year_month_day_partitions`",
                );
            }
            if inc.mask.is_some() && inc.from_string.is_none() {
                issues.push(
                    format!("{path}.incremental_strategy.mask"),
                    "`mask` goes with `from_string`",
                );
            }
        }
    }
    if spec.source.query.trim().is_empty() {
        issues.push("source.query", "the source query must not be empty");
    }

    let fs = &spec.feature_set;
    for (field, value) in [("name", &fs.name), ("entity", &fs.entity)] {
        if !is_identifier(value) {
            issues.push(
                format!("feature_set.{field}"),
                format!("`{value}` must be a non-empty identifier (letters, digits, _): it names tables and folders"),
            );
        }
    }
    if fs.keys.is_empty() {
        issues.push("feature_set.keys", "at least one key is required");
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    seen.insert(TIMESTAMP_COLUMN.into(), "feature_set.timestamp".into());
    for (i, key) in fs.keys.iter().enumerate() {
        let path = format!("feature_set.keys[{i}]");
        if key.dtype.is_none() {
            issues.push(format!("{path}.dtype"), format!("key `{}` needs a dtype", key.name));
        }
        check_feature(key, "key", &path, &mut seen, &mut issues);
    }
    if fs.features.is_empty() {
        issues.push("feature_set.features", "at least one feature is required");
    }
    for (i, f) in fs.features.iter().enumerate() {
        let path = format!("feature_set.features[{i}]");
        if f.dtype.is_none()
            && !matches!(
                f.transformation,
                Some(
                    TransformSpec::SparkFunction(_)
                        | TransformSpec::Aggregated(_)
                        | TransformSpec::H3(_)
                        | TransformSpec::Stack(_)
                )
            )
        {
            issues.push(
                format!("{path}.dtype"),
                format!(
                    "feature `{}` needs a dtype (only function transforms take the type of each function)",
                    f.name
                ),
            );
        }
        check_feature(f, "feature", &path, &mut seen, &mut issues);
    }
    if fs.is_aggregated() {
        validate_aggregation(fs, &mut issues);
    }
    let ts = &fs.timestamp;
    if !matches!(
        ts.dtype,
        crate::FeatureDataType::Timestamp | crate::FeatureDataType::TimestampNtz
    ) {
        issues.push("feature_set.timestamp.dtype", "must be `timestamp` or `timestamp_ntz`");
    }
    if ts.from_ms && ts.mask.is_some() {
        issues.push(
            "feature_set.timestamp.mask",
            "`mask` parses strings; it cannot be used with `from_ms`",
        );
    }

    if spec.is_streaming() {
        validate_streaming(spec, &mut issues);
    } else if spec.streaming.is_some() {
        issues.push(
            "streaming",
            "`streaming` settings need a streaming reader (`stream: true` on a reader)",
        );
    }

    if spec.writers.is_empty() {
        issues.push("writers", "at least one writer is required");
    }
    if !spec.source.hooks.pre.is_empty() {
        issues.push(
            "source.hooks.pre",
            "the source has no pre-hooks (as in Butterfree): use the readers' post-hooks",
        );
    }
    if spec.sink.as_ref().is_some_and(|s| !s.hooks.post.is_empty()) {
        issues.push(
            "sink.hooks.post",
            "the sink has no post-hooks (as in Butterfree): the rows are written by then",
        );
    }
    for (i, w) in spec.writers.iter().enumerate() {
        if let WriterSpec::HistoricalFeatureStore(h) = w
            && !(0.0..=1.0).contains(&h.validation_threshold)
        {
            issues.push(format!("writers[{i}].validation_threshold"), "must be between 0 and 1");
        }
        if let WriterSpec::OnlineFeatureStore(o) = w {
            if o.max_future_skew_seconds.is_some_and(|s| s < 0) {
                issues.push(format!("writers[{i}].max_future_skew_seconds"), "must not be negative");
            }
            if o.cassandra.is_some() && o.kafka.is_some() {
                issues.push(
                    format!("writers[{i}]"),
                    "an online writer writes to Cassandra or to Kafka, not both: declare two writers",
                );
            }
            if let Some(k) = &o.kafka
                && k.topic.as_deref().is_some_and(|t| t.trim().is_empty())
            {
                issues.push(format!("writers[{i}].kafka.topic"), "must not be empty");
            }
            if o.ttl_seconds.is_some() && o.cassandra.is_none() {
                issues.push(
                    format!("writers[{i}].ttl_seconds"),
                    "`ttl_seconds` applies to the Cassandra online store (add `cassandra:`)",
                );
            }
            if o.ttl_seconds == Some(0) {
                issues.push(format!("writers[{i}].ttl_seconds"), "must be at least 1");
            }
            if let Some(c) = &o.cassandra
                && let Some(k) = &c.keyspace
                && !is_identifier(k)
            {
                issues.push(
                    format!("writers[{i}].cassandra.keyspace"),
                    format!("`{k}` is not a valid keyspace name (letters, digits, _)"),
                );
            }
        }
    }
    issues
}

/// The checks of a run's dates against the spec, before anything is read: `borboleta run` and
/// `borboleta validate` (which takes the same `--start-date`, `--end-date` and `--date`) both
/// call this, so that `validate` refuses exactly what `run` would refuse.
pub fn validate_run_dates(
    spec: &FeatureSetPipelineSpec,
    start_date: Option<chrono::NaiveDate>,
    end_date: Option<chrono::NaiveDate>,
) -> SpecIssues {
    let mut issues = SpecIssues::default();
    if spec.is_streaming() {
        if start_date.is_some() || end_date.is_some() {
            issues.push(
                "--start-date",
                "a streaming pipeline takes whatever arrives: --start-date, --end-date and --date are for batch runs",
            );
        }
        return issues;
    }
    if let (Some(s), Some(e)) = (start_date, end_date)
        && s > e
    {
        issues.push("--start-date", format!("start date {s} is after end date {e}"));
    }
    let fs = &spec.feature_set;
    if fs.is_aggregated() && fs.aggregation.as_ref().is_some_and(|a| !a.windows.is_empty()) && end_date.is_none() {
        issues.push(
            "feature_set.aggregation.windows",
            "an aggregated feature set with windows needs an end date: run with --end-date (or --date)",
        );
    }
    issues
}

/// A key's or a feature's checks; `kind` is `key` or `feature`.
fn check_feature(f: &FeatureSpec, kind: &str, path: &str, seen: &mut HashMap<String, String>, issues: &mut SpecIssues) {
    if f.name.trim().is_empty() {
        issues.push(format!("{path}.name"), "name must not be empty");
    } else if !is_identifier(&f.name) {
        issues.push(
            format!("{path}.name"),
            format!(
                "`{}` is not an identifier: a {kind} name is letters, digits and `_`, not starting with a digit \
                 (it names a column of the feature stores)",
                f.name
            ),
        );
    }
    match &f.transformation {
        Some(TransformSpec::SqlExpression(e)) => {
            if f.from_column.is_some() {
                issues.push(
                    format!("{path}.from_column"),
                    "a sql_expression feature reads what its expression names; remove `from_column`",
                );
            }
            if e.expression.trim().is_empty() {
                issues.push(
                    format!("{path}.transformation.expression"),
                    "expression must not be empty",
                );
            }
        }
        Some(TransformSpec::SparkFunction(t)) => {
            if t.functions.is_empty() {
                issues.push(
                    format!("{path}.transformation.functions"),
                    "at least one function is required",
                );
            }
            for (j, func) in t.functions.iter().enumerate() {
                if !is_identifier(&func.function) {
                    issues.push(
                        format!("{path}.transformation.functions[{j}].function"),
                        format!("`{}` is not a function name", func.function),
                    );
                }
            }
            if let Some(w) = &t.window {
                if w.mode == WindowMode::RollingWindows {
                    issues.push(
                        format!("{path}.transformation.window.mode"),
                        "rolling_windows belong to aggregated feature sets; use fixed_windows or row_windows",
                    );
                }
                if w.definitions.is_empty() {
                    issues.push(
                        format!("{path}.transformation.window.definitions"),
                        "at least one window is required",
                    );
                }
                if w.partition_by.to_vec().is_empty() {
                    issues.push(
                        format!("{path}.transformation.window.partition_by"),
                        "at least one column is required",
                    );
                }
                for (j, d) in w.definitions.iter().enumerate() {
                    match WindowDefinition::parse(d, w.mode) {
                        Err(e) => issues.push(format!("{path}.transformation.window.definitions[{j}]"), e),
                        // a row window's unit is any word, and it is part of the column names
                        Ok(def) if !is_identifier(&def.name()) => issues.push(
                            format!("{path}.transformation.window.definitions[{j}]"),
                            format!(
                                "window `{d}` names the column `{}__{}_{}`, which is not an identifier: write the \
                                     unit with letters, digits and `_`",
                                f.name,
                                t.functions.first().map_or("<function>", |func| func.function.as_str()),
                                def.name()
                            ),
                        ),
                        Ok(_) => {}
                    }
                }
            }
        }
        Some(TransformSpec::Aggregated(t)) => {
            if t.functions.is_empty() {
                issues.push(
                    format!("{path}.transformation.functions"),
                    "at least one function is required",
                );
            }
            for (j, func) in t.functions.iter().enumerate() {
                let name = func.function.to_ascii_lowercase();
                if !AGGREGATE_FUNCTIONS.contains(&name.as_str()) {
                    let known = if matches!(name.as_str(), "percentile_approx" | "mode" | "most_frequent_set") {
                        format!("`{}` is not supported yet", func.function)
                    } else {
                        format!(
                            "unknown aggregate `{}`{}",
                            func.function,
                            crate::error::hint(&name, AGGREGATE_FUNCTIONS.iter().copied())
                        )
                    };
                    issues.push(
                        format!("{path}.transformation.functions[{j}].function"),
                        format!("{known}; allowed: {}", AGGREGATE_FUNCTIONS.join(", ")),
                    );
                }
            }
            if t.filter_expression.as_deref().is_some_and(|e| e.trim().is_empty()) {
                issues.push(
                    format!("{path}.transformation.filter_expression"),
                    "filter_expression must not be empty",
                );
            }
        }
        Some(TransformSpec::H3(h)) => {
            if h.resolutions.is_empty() {
                issues.push(
                    format!("{path}.transformation.resolutions"),
                    "at least one resolution is required",
                );
            }
            for (j, r) in h.resolutions.iter().enumerate() {
                if *r > 15 {
                    issues.push(
                        format!("{path}.transformation.resolutions[{j}]"),
                        format!("H3 resolution {r} does not exist (0-15)"),
                    );
                }
            }
        }
        Some(TransformSpec::Stack(t)) if t.columns.is_empty() => {
            issues.push(
                format!("{path}.transformation.columns"),
                "at least one column pattern is required",
            );
        }
        Some(TransformSpec::Stack(_)) => {}
        None => {}
    }
    for col in feature_output_columns(f) {
        if let Some(first) = seen.insert(col.clone(), path.to_string()) {
            issues.push(
                format!("{path}.name"),
                format!("output column `{col}` is already produced by {first}"),
            );
        }
    }
}

/// Aggregate functions of an aggregated feature set (Butterfree's `AggregatedTransform`).
pub const AGGREGATE_FUNCTIONS: &[&str] = &[
    "avg",
    "mean",
    "sum",
    "count",
    "min",
    "max",
    "stddev_pop",
    "stddev",
    "stddev_samp",
    "var_pop",
    "var_samp",
    "variance",
    "approx_count_distinct",
    "collect_set",
    "collect_list",
    "first",
    "last",
];

/// The aggregate functions computed over rolling windows (from mergeable per-slide partials).
pub const ROLLING_WINDOW_FUNCTIONS: &[&str] = &[
    "avg",
    "mean",
    "sum",
    "count",
    "min",
    "max",
    "stddev_pop",
    "stddev",
    "stddev_samp",
    "var_pop",
    "var_samp",
    "variance",
];

/// The slide of an aggregated feature set's windows, in seconds (default one day).
pub fn aggregation_slide_seconds(a: &crate::spec::AggregationSpec) -> Result<i64, String> {
    match &a.slide {
        None => Ok(86_400),
        Some(s) => WindowDefinition::parse(s, WindowMode::RollingWindows)
            .map(|w| w.seconds().unwrap_or(86_400))
            .map_err(|e| e.replace("window `", "slide `")),
    }
}

/// Butterfree's `AggregatedFeatureSet` rules, plus what Borboleta needs to compute windows
/// from per-slide partial aggregates.
fn validate_aggregation(fs: &crate::spec::FeatureSetSpec, issues: &mut SpecIssues) {
    for (i, f) in fs.features.iter().enumerate() {
        if !matches!(f.transformation, Some(TransformSpec::Aggregated(_))) {
            issues.push(
                format!("feature_set.features[{i}].transformation"),
                format!(
                    "feature `{}`: every feature of an aggregated feature set needs `type: aggregated` \
                     (Butterfree's AggregatedTransform)",
                    f.name
                ),
            );
        }
    }
    for (i, k) in fs.keys.iter().enumerate() {
        if matches!(k.transformation, Some(TransformSpec::Aggregated(_))) {
            issues.push(
                format!("feature_set.keys[{i}].transformation"),
                "a key cannot be aggregated",
            );
        }
    }
    let Some(a) = &fs.aggregation else { return };
    let slide = match aggregation_slide_seconds(a) {
        Ok(s) => Some(s),
        Err(e) => {
            issues.push("feature_set.aggregation.slide", e);
            None
        }
    };
    if a.slide.is_some() && a.windows.is_empty() {
        issues.push("feature_set.aggregation.slide", "a slide needs `windows`");
    }
    for (j, d) in a.windows.iter().enumerate() {
        let path = format!("feature_set.aggregation.windows[{j}]");
        match WindowDefinition::parse(d, WindowMode::RollingWindows) {
            Err(e) => issues.push(path, e),
            Ok(w) => {
                if let (Some(slide), Some(secs)) = (slide, w.seconds()) {
                    if secs < slide {
                        issues.push(path, format!("window `{d}` is shorter than the slide"));
                    } else if secs % slide != 0 {
                        issues.push(
                            path,
                            format!(
                                "window `{d}` is not a whole number of slides ({slide} s): windows are \
                                 combined from per-slide partial aggregates"
                            ),
                        );
                    }
                }
            }
        }
    }
    if !a.windows.is_empty() {
        for (i, f) in fs.features.iter().enumerate() {
            if let Some(TransformSpec::Aggregated(t)) = &f.transformation {
                for (j, func) in t.functions.iter().enumerate() {
                    let name = func.function.to_ascii_lowercase();
                    if AGGREGATE_FUNCTIONS.contains(&name.as_str())
                        && !ROLLING_WINDOW_FUNCTIONS.contains(&name.as_str())
                    {
                        issues.push(
                            format!("feature_set.features[{i}].transformation.functions[{j}].function"),
                            format!(
                                "`{}` is not supported over rolling windows yet; allowed: {}",
                                func.function,
                                ROLLING_WINDOW_FUNCTIONS.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }
    if let Some(d) = &a.distinct
        && d.subset.is_empty()
    {
        issues.push(
            "feature_set.aggregation.distinct.subset",
            "the distinct subset can't be empty",
        );
    }
    if let Some(p) = &a.pivot {
        if p.column.trim().is_empty() {
            issues.push("feature_set.aggregation.pivot.column", "must not be empty");
        }
        if p.values.as_ref().is_some_and(Vec::is_empty) {
            issues.push("feature_set.aggregation.pivot.values", "at least one value is required");
        }
        for (j, v) in p.values.iter().flatten().enumerate() {
            let name = v.name();
            // a prefix may start with a digit (`1_amount__avg`, as Butterfree names it)
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                issues.push(
                    format!("feature_set.aggregation.pivot.values[{j}]"),
                    format!(
                        "pivot value `{name}` prefixes column names (`{name}_<feature>__<function>`): it must be \
                         letters, digits and `_` (filter or map the other values in the source query)"
                    ),
                );
            }
        }
    }
    let names = crate::naming::feature_columns(fs);
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.clone()) {
            issues.push("feature_set.features", format!("output column `{n}` is produced twice"));
        }
    }
}

/// What a streaming pipeline cannot do (yet): anything that needs history across micro-batches.
fn validate_streaming(spec: &FeatureSetPipelineSpec, issues: &mut SpecIssues) {
    let fs = &spec.feature_set;
    if fs.deduplicate_rows == Some(true) {
        issues.push(
            "feature_set.deduplicate_rows",
            "the duplicate-row filter compares a row with the previous row of its key, which may be in an \
             earlier micro-batch: it is off on streams (as in Butterfree); remove `deduplicate_rows: true`",
        );
    }
    if fs.is_aggregated() {
        issues.push(
            "feature_set.aggregation",
            "an aggregated feature set groups rows across micro-batches: it is not supported on streaming \
             pipelines yet (run it in batch)",
        );
    }
    for (i, f) in fs.features.iter().enumerate() {
        if let Some(TransformSpec::SparkFunction(t)) = &f.transformation
            && t.window.is_some()
        {
            issues.push(
                format!("feature_set.features[{i}].transformation.window"),
                format!(
                    "feature `{}`: a windowed function needs the rows of earlier micro-batches; windows are \
                     not supported on streaming pipelines yet",
                    f.name
                ),
            );
        }
    }
    for (i, r) in spec.readers.iter().enumerate() {
        if !r.is_stream() {
            continue;
        }
        for (j, step) in r.pre_processing().iter().enumerate() {
            if matches!(
                step,
                crate::spec::PreProcessingSpec::ForwardFill { .. } | crate::spec::PreProcessingSpec::Pivot { .. }
            ) {
                issues.push(
                    format!("readers[{i}].pre_processing[{j}]"),
                    "forward_fill and pivot need the rows of earlier micro-batches: not supported on a stream",
                );
            }
        }
    }
    for (i, w) in spec.writers.iter().enumerate() {
        if let WriterSpec::HistoricalFeatureStore(h) = w
            && h.interval_mode
        {
            issues.push(
                format!("writers[{i}].interval_mode"),
                "a streaming pipeline appends one file per micro-batch and partition; `interval_mode` \
                 (replace the partitions of a run) is for batch runs",
            );
        }
    }
    if let Some(s) = &spec.streaming {
        if s.max_rows_per_batch == Some(0) {
            issues.push("streaming.max_rows_per_batch", "must be at least 1");
        }
        if s.debug_max_rows == 0 {
            issues.push("streaming.debug_max_rows", "must be at least 1");
        }
        if s.available_now && s.processing_time_ms > 0 {
            issues.push(
                "streaming.available_now",
                "`available_now` processes what is there and stops; it takes no `processing_time_ms`",
            );
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
