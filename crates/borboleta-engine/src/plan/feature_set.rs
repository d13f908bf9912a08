//! A row-level FeatureSet as a DataFusion plan: keys, `timestamp`, features (naming rules of
//! Butterfree), the consecutive-duplicate filter and the date filter.
//!
//! Over 600 lines: a third of it is unit tests; the planner itself is about 600 lines, one transform per function.

use std::sync::Arc;

use arrow::datatypes::DataType;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use borboleta_core::{
    FeatureDataType, FeatureSetSpec, FeatureSpec, SpecIssues, TimestampFeatureSpec, TransformSpec, WindowDefinition,
    WindowMode, feature_columns, key_columns,
};
use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, SortExpr, WindowFrame, WindowFrameBound, WindowFrameUnits, lit,
};
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::{Error, Result};
use crate::plan::cast::{NullCounter, parse_timestamp, spark_cast};
use crate::plan::util::{check_column, clean_df_error, column};
use crate::windows::row_windows::orders_ties;
use crate::windows::row_windows::{Frame, WindowJob};

/// Hidden column: the timestamp in whole epoch seconds, the order of fixed windows.
pub(crate) const ORDER_SECONDS: &str = "__borboleta_ts_seconds";

/// Aggregate functions allowed over windows: DataFusion slides each of them (tested one by one).
/// The same list as over rolling windows: the aggregates whose states merge.
pub const WINDOW_FUNCTIONS: &[&str] = borboleta_core::validate::ROLLING_WINDOW_FUNCTIONS;

/// The aggregate of a window function. Over floating-point values, `avg`, `sum`, `stddev*` and
/// `var*` are Spark-exact ([`crate::windows::sliding`]); the rest are DataFusion's own (they slide; the
/// Spark overrides in the session may not).
fn window_udaf(name: &str, float_input: bool) -> Option<Arc<datafusion::logical_expr::AggregateUDF>> {
    use crate::windows::sliding::{SlidingKind, sliding_udaf};
    use datafusion::functions_aggregate::{count, min_max, sum};
    if let Some(kind) = SlidingKind::of(name, float_input) {
        return Some(sliding_udaf(kind));
    }
    Some(match name {
        "sum" => sum::sum_udaf(),
        "count" => count::count_udaf(),
        "min" => min_max::min_udaf(),
        "max" => min_max::max_udaf(),
        _ => return None,
    })
}

/// Options of one run of the feature set.
#[derive(Debug, Clone, Default)]
pub struct FeatureSetOptions {
    /// Keep rows with `date(timestamp) >= start_date` (UTC).
    pub start_date: Option<NaiveDate>,
    /// Keep rows with `date(timestamp) <= end_date` (UTC).
    pub end_date: Option<NaiveDate>,
    /// Streaming input: the duplicate-row filter is off unless asked for.
    pub streaming: bool,
    /// Planned only for the output schema and the spec checks, before a run's dates are known
    /// (checks that need the dates, such as windows needing an end date, wait for the run).
    pub probe: bool,
}

/// Builds the feature set's plan on `source`. Collects every problem as a spec issue.
///
/// Window features and the duplicate-row filter run in [`crate::windows::row_windows`]'s operator when it
/// computes all of them (windows by the keys, over the timestamp, with its functions), else as
/// DataFusion window functions.
pub fn plan_feature_set(
    ctx: &SessionContext,
    source: DataFrame,
    fs: &FeatureSetSpec,
    opts: &FeatureSetOptions,
    counter: &NullCounter,
) -> Result<DataFrame> {
    let deduplicate = fs.deduplicate_rows.unwrap_or(!opts.streaming);
    let windows = fs.features.iter().any(has_window);
    if (windows || deduplicate)
        && operator_can_defer(fs)
        && let Some(df) = plan_with(ctx, source.clone(), fs, opts, counter, true)?
    {
        return Ok(df);
    }
    plan_with(ctx, source, fs, opts, counter, false)
        .map(|df| df.unwrap_or_else(|| unreachable!("DataFusion plans every window")))
}

fn has_window(f: &FeatureSpec) -> bool {
    matches!(&f.transformation, Some(TransformSpec::SparkFunction(t)) if t.window.is_some())
}

/// Whether window features can be computed after all the others: no later feature reads a
/// window's output (checked conservatively, by name).
fn operator_can_defer(fs: &FeatureSetSpec) -> bool {
    let Some(first) = fs.features.iter().position(has_window) else {
        return true;
    };
    let outputs: Vec<String> = fs
        .features
        .iter()
        .filter(|f| has_window(f))
        .flat_map(borboleta_core::naming::feature_output_columns)
        .collect();
    let mentions = |text: &str| outputs.iter().any(|o| text.contains(o.as_str()));
    fs.features[first..].iter().filter(|f| !has_window(f)).all(|f| {
        let input = f.from_column.as_deref().unwrap_or(&f.name);
        !mentions(input)
            && match &f.transformation {
                Some(TransformSpec::SqlExpression(s)) => !mentions(&s.expression),
                Some(TransformSpec::SparkFunction(_)) | None => true,
                _ => false,
            }
    })
}

/// Where window features are planned.
pub(crate) enum Windows {
    /// As DataFusion window functions.
    DataFusion,
    /// Deferred to the row-windows operator (their inputs are hidden columns).
    Operator { keys: Vec<String>, jobs: Vec<WindowJob> },
    /// A window the operator cannot compute: plan again with DataFusion.
    Unsupported,
}

/// The plan with windows in the operator (`operator`; `None` if it cannot compute them all) or
/// as DataFusion window functions.
fn plan_with(
    ctx: &SessionContext,
    source: DataFrame,
    fs: &FeatureSetSpec,
    opts: &FeatureSetOptions,
    counter: &NullCounter,
    operator: bool,
) -> Result<Option<DataFrame>> {
    let mut issues = SpecIssues::default();
    let mut df = apply_keys_and_timestamp(ctx, source, fs, counter, &mut issues)?;
    let keys = key_columns(fs);
    let features = feature_columns(fs);
    let deduplicate = fs.deduplicate_rows.unwrap_or(!opts.streaming);
    // Arrow casts timestamps to their raw unit (microseconds): whole seconds, rounded down like
    // Spark's cast (also before 1970), are `(us - ((us % 1e6) + 1e6) % 1e6) / 1e6`.
    let micros = Expr::Cast(datafusion::logical_expr::Cast::new(
        Box::new(column(TIMESTAMP_COLUMN)),
        DataType::Int64,
    ));
    let m = || lit(1_000_000i64);
    let below = ((micros.clone() % m()) + m()) % m();
    df = df.with_column(ORDER_SECONDS, (micros - below) / m())?;
    let mut windows = if operator {
        Windows::Operator {
            keys: keys.clone(),
            jobs: Vec::new(),
        }
    } else {
        Windows::DataFusion
    };
    for (i, f) in fs.features.iter().enumerate() {
        df = apply_feature(
            ctx,
            df,
            f,
            &format!("feature_set.features[{i}]"),
            counter,
            &mut issues,
            &mut windows,
        );
    }
    issues.into_result()?;

    df = match windows {
        Windows::Unsupported => return Ok(None),
        Windows::Operator { jobs, .. } => {
            let schema = df.schema();
            let type_of = |c: &str| {
                schema
                    .field_with_unqualified_name(c)
                    .map(|f| f.data_type().clone())
                    .ok()
            };
            let micros = matches!(
                type_of(TIMESTAMP_COLUMN),
                Some(DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _))
            );
            // the filter compares and orders values with arrow's kernels: plain types only
            let comparable = !deduplicate
                || features.iter().all(|f| match jobs.iter().find(|j| &j.output == f) {
                    Some(j) => crate::windows::row_windows::comparable(&j.dtype),
                    None => type_of(f).is_some_and(|t| crate::windows::row_windows::comparable(&t)),
                });
            if !micros || !comparable {
                return Ok(None);
            }
            crate::windows::row_windows::plan_row_windows(
                ctx,
                df,
                &keys,
                TIMESTAMP_COLUMN,
                &features,
                jobs,
                deduplicate,
            )?
        }
        Windows::DataFusion => {
            let mut out: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
            out.push(column(TIMESTAMP_COLUMN));
            out.extend(features.iter().map(|f| column(f)));
            df = df.select(out)?;
            if deduplicate {
                df = deduplicate_rows(df, &keys, &features)?;
            }
            df
        }
    };
    Ok(Some(date_filter(df, fs.timestamp.dtype, opts)?))
}

/// The key features, then the timestamp feature (problems of the keys go to `issues`; a bad
/// timestamp stops here, since everything after needs it).
pub(crate) fn apply_keys_and_timestamp(
    ctx: &SessionContext,
    mut df: DataFrame,
    fs: &FeatureSetSpec,
    counter: &NullCounter,
    issues: &mut SpecIssues,
) -> Result<DataFrame> {
    for (i, key) in fs.keys.iter().enumerate() {
        df = apply_feature(
            ctx,
            df,
            key,
            &format!("feature_set.keys[{i}]"),
            counter,
            issues,
            &mut Windows::DataFusion,
        );
    }
    match apply_timestamp(df.clone(), &fs.timestamp, counter) {
        Ok(d) => Ok(d),
        Err(e) => {
            issues.push("feature_set.timestamp", e);
            Err(Error::Spec(std::mem::take(issues)))
        }
    }
}

pub(crate) fn apply_feature(
    ctx: &SessionContext,
    df: DataFrame,
    f: &FeatureSpec,
    path: &str,
    counter: &NullCounter,
    issues: &mut SpecIssues,
    windows: &mut Windows,
) -> DataFrame {
    let input = f.from_column.clone().unwrap_or_else(|| f.name.clone());
    let r: std::result::Result<DataFrame, (String, String)> = (|| match &f.transformation {
        None => {
            let e = check_column(&df, &input).map_err(|m| (field_path(path, f), m))?;
            let e = match f.dtype {
                Some(t) => spark_cast(e, t.to_arrow(), counter),
                None => e,
            };
            df.clone()
                .with_column(&f.name, e)
                .map_err(|e| (path.to_string(), e.to_string()))
        }
        Some(TransformSpec::SqlExpression(s)) => {
            let p = format!("{path}.transformation.expression");
            let e = df
                .parse_sql_expr(&s.expression)
                .map_err(|e| (p.clone(), clean_df_error(&e)))?;
            e.get_type(df.schema()).map_err(|e| (p.clone(), clean_df_error(&e)))?;
            let e = match f.dtype {
                Some(t) => spark_cast(e, t.to_arrow(), counter),
                None => e,
            };
            df.clone().with_column(&f.name, e).map_err(|e| (p, clean_df_error(&e)))
        }
        Some(TransformSpec::SparkFunction(t)) => {
            let input_expr = check_column(&df, &input).map_err(|m| (field_path(path, f), m))?;
            let mut out = df.clone();
            let names = borboleta_core::naming::feature_output_columns(f);
            let mut names = names.into_iter();
            for (j, func) in t.functions.iter().enumerate() {
                let fpath = format!("{path}.transformation.functions[{j}].function");
                match &t.window {
                    None => {
                        let udf = ctx.udf(&func.function).map_err(|_| {
                            let msg = if ctx.udaf(&func.function).is_ok() {
                                format!("`{}` is an aggregate: it needs a `window`", func.function)
                            } else {
                                format!(
                                    "unknown function `{}`{}",
                                    func.function,
                                    function_hint(ctx, &func.function)
                                )
                            };
                            (fpath.clone(), msg)
                        })?;
                        let e = spark_cast(udf.call(vec![input_expr.clone()]), func.dtype.to_arrow(), counter);
                        let name = names.next().unwrap_or_default();
                        e.get_type(out.schema())
                            .map_err(|e| (fpath.clone(), clean_df_error(&e)))?;
                        out = out
                            .with_column(&name, e)
                            .map_err(|e| (fpath.clone(), clean_df_error(&e)))?;
                    }
                    Some(w) => {
                        let fname = func.function.to_ascii_lowercase();
                        let float_input = input_expr
                            .get_type(out.schema())
                            .is_ok_and(|t| matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64));
                        // Any other aggregate (collect_set, median, first, ...) cannot slide.
                        let udaf = window_udaf(&fname, float_input).ok_or_else(|| {
                            (
                                fpath.clone(),
                                format!(
                                    "`{}` cannot be computed over a sliding window; allowed: {}",
                                    func.function,
                                    WINDOW_FUNCTIONS.join(", ")
                                ),
                            )
                        })?;
                        let mut partition = Vec::new();
                        for (k, p) in w.partition_by.to_vec().iter().enumerate() {
                            partition.push(
                                check_column(&out, p)
                                    .map_err(|m| (format!("{path}.transformation.window.partition_by[{k}]"), m))?,
                            );
                        }
                        for d in &w.definitions {
                            // An invalid definition is reported by the static validation.
                            let Ok(def) = WindowDefinition::parse(d, w.mode) else {
                                continue;
                            };
                            let name = names.next().unwrap_or_default();
                            if let Windows::Operator { keys, jobs } = windows {
                                let mut by: Vec<String> = w.partition_by.to_vec();
                                let mut k = keys.clone();
                                by.sort();
                                k.sort();
                                let by_time = w.order_by.as_deref().is_none_or(|c| c == TIMESTAMP_COLUMN);
                                match WindowJob::kind_of(&fname, float_input) {
                                    Some(kind) if by == k && by_time => {
                                        let input = format!("__borboleta_window_input_{}", jobs.len());
                                        out = out
                                            .with_column(&input, input_expr.clone())
                                            .map_err(|e| (fpath.clone(), clean_df_error(&e)))?;
                                        jobs.push(WindowJob {
                                            input,
                                            kind,
                                            function: fname.clone(),
                                            frame: match def.mode {
                                                WindowMode::RowWindows => Frame::Rows {
                                                    size: usize::try_from(def.size).unwrap_or(1),
                                                },
                                                _ => Frame::Range {
                                                    seconds: def.seconds().unwrap_or(0),
                                                },
                                            },
                                            definition: d.clone(),
                                            output: name,
                                            dtype: func.dtype.to_arrow(),
                                        });
                                        continue;
                                    }
                                    _ => *windows = Windows::Unsupported,
                                }
                            }
                            let (order, frame) = window_order_and_frame(&def, w.order_by.as_deref());
                            let e = Expr::from(WindowFunction::new(udaf.clone(), vec![input_expr.clone()]))
                                .partition_by(partition.clone())
                                .order_by(vec![order])
                                .window_frame(frame)
                                .build()
                                .map_err(|e| (fpath.clone(), e.to_string()))?;
                            let e = spark_cast(e, func.dtype.to_arrow(), counter);
                            out = out
                                .with_column(&name, e)
                                .map_err(|e| (fpath.clone(), clean_df_error(&e)))?;
                        }
                    }
                }
            }
            Ok(out)
        }
        Some(TransformSpec::H3(h)) => {
            let tpath = format!("{path}.transformation");
            let lat = check_column(&df, &h.lat_column).map_err(|m| (format!("{tpath}.lat_column"), m))?;
            let lng = check_column(&df, &h.lng_column).map_err(|m| (format!("{tpath}.lng_column"), m))?;
            let names = borboleta_core::naming::h3_columns(h);
            let mut out = df.clone();
            for (r, name) in h.resolutions.iter().zip(&names) {
                // Butterfree treats 0.0 as a missing coordinate
                let missing = lat.clone().eq(lit(0.0)).or(lng.clone().eq(lit(0.0)));
                let cell = crate::plan::geo::h3_udf().call(vec![lat.clone(), lng.clone(), lit(i64::from(*r))]);
                let e = datafusion::logical_expr::when(missing, lit(ScalarValue::Utf8(None)))
                    .otherwise(cell)
                    .map_err(|e| (tpath.clone(), e.to_string()))?;
                out = out
                    .with_column(name, e)
                    .map_err(|e| (tpath.clone(), clean_df_error(&e)))?;
            }
            if h.stack {
                out = stack(out, &names, f, counter).map_err(|m| (tpath.clone(), m))?;
            }
            Ok(out)
        }
        Some(TransformSpec::Stack(t)) => {
            let tpath = format!("{path}.transformation.columns");
            let available: Vec<String> = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| !n.starts_with("__borboleta"))
                .collect();
            let selected =
                crate::plan::geo::stack_columns(&available, &t.columns, t.is_regex).map_err(|m| (tpath.clone(), m))?;
            stack(df.clone(), &selected, f, counter).map_err(|m| (tpath, m))
        }
        Some(_) => Err((path.to_string(), "this transformation is not supported yet".to_string())),
    })();
    match r {
        Ok(d) => d,
        Err((p, m)) => {
            issues.push(p, m);
            df
        }
    }
}

/// Butterfree's stack: one row per input row and selected column, the column's value in the
/// feature's column (nulls kept), cast to the feature's dtype when it has one.
fn stack(
    df: DataFrame,
    columns: &[String],
    f: &FeatureSpec,
    counter: &NullCounter,
) -> std::result::Result<DataFrame, String> {
    let array = datafusion::functions_nested::expr_fn::make_array(columns.iter().map(|c| column(c)).collect());
    let tmp = "__borboleta_stack";
    let df = df
        .with_column(tmp, array)
        .and_then(|d| d.unnest_columns(&[tmp]))
        .map_err(|e| clean_df_error(&e))?;
    let value = match f.dtype {
        Some(t) => spark_cast(column(tmp), t.to_arrow(), counter),
        None => column(tmp),
    };
    df.with_column(&f.name, value)
        .and_then(|d| d.drop_columns(&[tmp]))
        .map_err(|e| clean_df_error(&e))
}

fn field_path(path: &str, f: &FeatureSpec) -> String {
    if f.from_column.is_some() {
        format!("{path}.from_column")
    } else {
        format!("{path}.name")
    }
}

fn window_order_and_frame(def: &WindowDefinition, order_by: Option<&str>) -> (SortExpr, WindowFrame) {
    let order_col = match order_by {
        Some(c) if c != TIMESTAMP_COLUMN => column(c),
        _ if def.mode == WindowMode::FixedWindows => column(ORDER_SECONDS),
        _ => column(TIMESTAMP_COLUMN),
    };
    let order = order_col.sort(true, true);
    let frame = match def.mode {
        WindowMode::RowWindows => WindowFrame::new_bounds(
            WindowFrameUnits::Rows,
            WindowFrameBound::Preceding(ScalarValue::UInt64(Some((def.size - 1) as u64))),
            WindowFrameBound::CurrentRow,
        ),
        _ => WindowFrame::new_bounds(
            WindowFrameUnits::Range,
            WindowFrameBound::Preceding(ScalarValue::Int64(Some(def.seconds().unwrap_or(0)))),
            WindowFrameBound::CurrentRow,
        ),
    };
    (order, frame)
}

fn function_hint(ctx: &SessionContext, name: &str) -> String {
    let names = ctx.udfs();
    borboleta_core::error::hint(name, names.iter().map(String::as_str))
}

/// The output `timestamp` column, from `from_column` (or `timestamp`) as Butterfree converts it.
pub(crate) fn apply_timestamp(
    df: DataFrame,
    ts: &TimestampFeatureSpec,
    counter: &NullCounter,
) -> std::result::Result<DataFrame, String> {
    let source = ts.from_column.as_deref().unwrap_or(TIMESTAMP_COLUMN);
    let e = check_column(&df, source)?;
    let input_type = e.get_type(df.schema()).map_err(|e| e.to_string())?;
    let target = ts.dtype.to_arrow();
    let e = to_timestamp_expr(e, &input_type, ts.from_ms, ts.mask.as_deref(), &target, counter)?;
    df.with_column(TIMESTAMP_COLUMN, e).map_err(|e| e.to_string())
}

/// Converts any date/time-like expression to `target` (a microsecond timestamp type).
pub fn to_timestamp_expr(
    e: Expr,
    input_type: &DataType,
    from_ms: bool,
    mask: Option<&str>,
    target: &DataType,
    counter: &NullCounter,
) -> std::result::Result<Expr, String> {
    Ok(match input_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => match mask {
            Some(m) => parse_timestamp(e, m, target.clone(), counter),
            None if from_ms => spark_cast(
                spark_cast(e, DataType::Float64, counter) / lit(1000.0),
                target.clone(),
                counter,
            ),
            None => spark_cast(e, target.clone(), counter),
        },
        t if t.is_numeric() => {
            if from_ms {
                spark_cast(
                    spark_cast(e, DataType::Float64, counter) / lit(1000.0),
                    target.clone(),
                    counter,
                )
            } else {
                spark_cast(e, target.clone(), counter)
            }
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            if from_ms || mask.is_some() {
                return Err(format!(
                    "`from_ms` and `mask` apply to numbers and strings; the column is already {input_type}"
                ));
            }
            spark_cast(e, target.clone(), counter)
        }
        other => return Err(format!("cannot make a timestamp from a column of type {other}")),
    })
}

/// Butterfree's consecutive-duplicate filter: per key, ordered by timestamp, drop a row that
/// repeats the previous row's features (nulls equal).
pub(crate) fn deduplicate_rows(df: DataFrame, keys: &[String], features: &[String]) -> Result<DataFrame> {
    use datafusion::functions_window::expr_fn::{lag, row_number};
    let partition: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    let mut order = vec![column(TIMESTAMP_COLUMN).sort(true, true)];
    // Ties on the timestamp: order by the (sortable) features too, so the result is deterministic.
    let schema = df.schema().clone();
    for f in features {
        let sortable = schema
            .field_with_unqualified_name(f)
            .is_ok_and(|fl| orders_ties(fl.data_type()));
        if sortable {
            order.push(column(f).sort(true, true));
        }
    }
    // one window operator for all of them (same partitioning and order): one pass, not one
    // per feature
    let mut windows = vec![
        row_number()
            .partition_by(partition.clone())
            .order_by(order.clone())
            .build()?
            .alias("__borboleta_rn"),
    ];
    for (i, f) in features.iter().enumerate() {
        windows.push(
            lag(column(f), Some(1), None)
                .partition_by(partition.clone())
                .order_by(order.clone())
                .build()?
                .alias(format!("__borboleta_prev_{i}")),
        );
    }
    let df = df.window(windows)?;
    let mut changed: Option<Expr> = None;
    for (i, f) in features.iter().enumerate() {
        let prev = format!("__borboleta_prev_{i}");
        let diff = Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
            Box::new(column(f)),
            datafusion::logical_expr::Operator::IsDistinctFrom,
            Box::new(column(&prev)),
        ));
        changed = Some(match changed {
            Some(c) => c.or(diff),
            None => diff,
        });
    }
    let keep = column("__borboleta_rn").eq(lit(1u64));
    let keep = match changed {
        Some(c) => keep.or(c),
        None => keep,
    };
    let cols: Vec<Expr> = schema.fields().iter().map(|f| column(f.name())).collect();
    Ok(df.filter(keep)?.select(cols)?)
}

pub(crate) fn date_filter(df: DataFrame, ts_type: FeatureDataType, opts: &FeatureSetOptions) -> Result<DataFrame> {
    let tz: Option<Arc<str>> = match ts_type {
        FeatureDataType::TimestampNtz => None,
        _ => Some("UTC".into()),
    };
    Ok(match date_range_predicate(column(TIMESTAMP_COLUMN), tz, opts) {
        Some(p) => df.filter(p)?,
        None => df,
    })
}

/// `ts >= start 00:00 AND ts < (end + 1 day) 00:00` (UTC; either bound optional): the rows whose
/// date is within the run's dates, both inclusive. `None` when no date is given.
pub fn date_range_predicate(ts: Expr, tz: Option<Arc<str>>, opts: &FeatureSetOptions) -> Option<Expr> {
    let at = |d: NaiveDate| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(borboleta_core::time::date_start_micros(d)),
            tz.clone(),
        ))
    };
    let start = opts.start_date.map(|s| ts.clone().gt_eq(at(s)));
    let end = opts.end_date.map(|e| ts.clone().lt(at(e.succ_opt().unwrap_or(e))));
    match (start, end) {
        (Some(s), Some(e)) => Some(s.and(e)),
        (s, e) => s.or(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borboleta_core::{FunctionWindowSpec, OneOrMany};

    async fn source(ctx: &SessionContext) -> DataFrame {
        ctx.sql(
            "select * from (values (1, timestamp '2024-01-01 00:00:00', 1.0, true), \
             (1, timestamp '2024-01-01 00:00:30', 2.0, false), (1, timestamp '2024-01-01 00:02:00', 4.0, true), \
             (2, timestamp '2024-01-01 00:00:00', 8.0, true)) as t(id, timestamp, x, b)",
        )
        .await
        .unwrap()
    }

    /// Every function documented as allowed over windows really slides, in both modes.
    #[tokio::test]
    async fn every_window_function_slides() {
        let ctx = crate::session::new_session();
        for f in WINDOW_FUNCTIONS {
            for mode in [WindowMode::FixedWindows, WindowMode::RowWindows] {
                let def = if mode == WindowMode::FixedWindows {
                    "1 minute"
                } else {
                    "2 events"
                };
                let window = FunctionWindowSpec {
                    partition_by: OneOrMany::One("id".into()),
                    order_by: None,
                    mode,
                    definitions: vec![def.into()],
                };
                let mut fs = FeatureSetSpec::new("fs", "e")
                    .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
                    .with_feature(FeatureSpec::new("x").functions(&[(f, FeatureDataType::Double)], Some(window)));
                fs.deduplicate_rows = Some(false);
                let df = plan_feature_set(
                    &ctx,
                    source(&ctx).await,
                    &fs,
                    &FeatureSetOptions::default(),
                    &NullCounter::default(),
                )
                .unwrap_or_else(|e| panic!("{f} {mode:?}: {e}"));
                let rows: usize = df
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("{f} {mode:?}: {e}"))
                    .iter()
                    .map(|b| b.num_rows())
                    .sum();
                assert_eq!(rows, 4, "{f} {mode:?}");
            }
        }
    }

    /// Random rows with repeated values (for the duplicate-row filter), missing values, several
    /// rows in the same second and, when `ties`, rows with the same key and timestamp.
    fn random_rows(ctx: &SessionContext, n: usize, ties: bool) {
        use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let (mut id, mut region, mut ts, mut x, mut s) = (vec![], vec![], vec![], vec![], vec![]);
        let mut used = std::collections::HashSet::new();
        while id.len() < n {
            let k = next(12) as i64;
            let r = ["north", "south", ""][next(3) as usize];
            // whole seconds over 2 hours, a few with microseconds, a few before 1970
            let mut t = 1_700_000_000_000_000i64 + next(7_200) as i64 * 1_000_000;
            match next(20) {
                0 => t += next(1_000_000) as i64,
                1 => t = -(next(100) as i64) * 1_000_000 - 250_000,
                _ => {}
            }
            // without ties: one row per key and second (rows in the same second are peers)
            if !ties && !used.insert((k, r, t.div_euclid(1_000_000))) {
                continue;
            }
            id.push(k);
            region.push((!r.is_empty()).then_some(r));
            // rows without a timestamp are ties too
            ts.push((!ties || next(50) != 0).then_some(t));
            // halves: sums and averages are exact in any order
            x.push((next(10) != 0).then(|| next(4) as f64 * 0.5));
            s.push((next(8) != 0).then(|| ["a", "b"][next(2) as usize]));
        }
        let batch = arrow::array::RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(id)) as arrow::array::ArrayRef),
            ("region", Arc::new(StringArray::from(region))),
            (
                "timestamp",
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            ),
            ("x", Arc::new(Float64Array::from(x))),
            ("s", Arc::new(StringArray::from(s))),
        ])
        .unwrap();
        let _ = ctx.deregister_table("t");
        ctx.register_batch("t", batch).unwrap();
    }

    /// Every row of a plan's output as text (floats to 12 significant digits), sorted.
    async fn sorted_rows(df: DataFrame) -> Vec<String> {
        let batches = df.collect().await.unwrap();
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| match ScalarValue::try_from_array(c, r).unwrap() {
                        ScalarValue::Float64(Some(v)) => format!("{v:.12e}"),
                        v => v.to_string(),
                    })
                    .collect();
                rows.push(cells.join("|"));
            }
        }
        rows.sort();
        rows
    }

    /// The row-windows operator gives the rows DataFusion's window functions give, for every
    /// function it computes, fixed and row windows, composite keys, missing values and ties,
    /// with and without the duplicate-row filter.
    #[tokio::test]
    async fn row_windows_operator_equals_datafusion_windows() {
        let ctx = crate::session::new_session();
        let fixed = FunctionWindowSpec {
            partition_by: OneOrMany::Many(vec!["region".into(), "id".into()]),
            order_by: None,
            mode: WindowMode::FixedWindows,
            definitions: vec!["10 minutes".into(), "1 hour".into()],
        };
        let rows = FunctionWindowSpec {
            partition_by: OneOrMany::Many(vec!["id".into(), "region".into()]),
            order_by: None,
            mode: WindowMode::RowWindows,
            definitions: vec!["3 events".into()],
        };
        let all: Vec<(&str, FeatureDataType)> = ["avg", "sum", "stddev_pop", "stddev_samp", "var_pop", "variance"]
            .iter()
            .map(|f| (*f, FeatureDataType::Double))
            .chain([("count", FeatureDataType::Bigint)])
            .collect();
        // Without ties every function; with ties (rows of a key in the same second, whose order
        // in the frame is arbitrary) the functions whose results do not depend on that order
        // (sums of halves are exact; Welford's update is not), and fixed windows only (a row
        // window's value depends on the order of ties).
        let exact: Vec<(&str, FeatureDataType)> = all
            .iter()
            .filter(|(f, _)| ["avg", "sum", "count"].contains(f))
            .cloned()
            .collect();
        for (window, ties, functions) in [(fixed.clone(), true, &exact), (fixed, false, &all), (rows, false, &all)] {
            // more rows than one input batch holds (8,192): batches are sliced and rows packed
            random_rows(&ctx, 20_000, ties);
            for dedup in [true, false] {
                let mut fs = FeatureSetSpec::new("fs", "e")
                    .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
                    .with_key(FeatureSpec::new("region").dtype(FeatureDataType::String))
                    .with_feature(FeatureSpec::new("x").dtype(FeatureDataType::Double))
                    .with_feature(FeatureSpec::new("s").dtype(FeatureDataType::String))
                    .with_feature(FeatureSpec::new("x").functions(functions, Some(window.clone())));
                fs.deduplicate_rows = Some(dedup);
                let plan = |operator| {
                    let source = futures::executor::block_on(ctx.table("t")).unwrap();
                    plan_with(
                        &ctx,
                        source,
                        &fs,
                        &FeatureSetOptions::default(),
                        &NullCounter::default(),
                        operator,
                    )
                    .unwrap()
                    .unwrap()
                };
                let (op, df) = (plan(true), plan(false));
                let op_plan = op.logical_plan().display_indent().to_string();
                assert!(op_plan.contains("row_windows"), "{op_plan}");
                let (got, want) = (sorted_rows(op).await, sorted_rows(df).await);
                assert!(want.len() > 5_000, "{} rows", want.len());
                if dedup {
                    assert!(want.len() < 20_000, "the filter dropped nothing: {} rows", want.len());
                }
                assert_eq!(got.len(), want.len(), "{:?} ties={ties} dedup={dedup}", window.mode);
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "{:?} ties={ties} dedup={dedup}", window.mode);
                }
            }
        }
    }

    /// The feature set's plan over table `t`.
    async fn plan_table_t(ctx: &SessionContext, fs: &FeatureSetSpec) -> DataFrame {
        let source = ctx.table("t").await.unwrap();
        plan_feature_set(ctx, source, fs, &FeatureSetOptions::default(), &NullCounter::default()).unwrap()
    }

    /// The rows the operator holds count against the query's memory pool: under a small cap the
    /// run stops with DataFusion's "resources exhausted" error naming the operator.
    #[tokio::test]
    async fn row_windows_operator_memory_is_accounted() {
        let fs = FeatureSetSpec::new("fs", "e")
            .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
            .with_feature(FeatureSpec::new("x").dtype(FeatureDataType::Double));
        for (limit, fails) in [(Some(64 << 10), true), (Some(64 << 20), false)] {
            let ctx = crate::session::new_session_with_memory_limit(limit);
            random_rows(&ctx, 20_000, true);
            let df = plan_table_t(&ctx, &fs).await;
            match df.collect().await {
                Ok(_) => assert!(!fails, "{limit:?}: no error"),
                Err(e) => {
                    let e = e.to_string();
                    assert!(fails, "{limit:?}: {e}");
                    assert!(e.contains("Resources exhausted") && e.contains("RowWindowsExec"), "{e}");
                }
            }
        }
    }

    /// Windows the operator does not compute (`min`, or partitioned by something other than the
    /// keys) are left to DataFusion, as is a feature that reads a window's output.
    #[tokio::test]
    async fn other_windows_stay_with_datafusion() {
        let ctx = crate::session::new_session();
        random_rows(&ctx, 100, true);
        let window = |by: &str| FunctionWindowSpec {
            partition_by: OneOrMany::One(by.into()),
            order_by: None,
            mode: WindowMode::FixedWindows,
            definitions: vec!["1 hour".into()],
        };
        let base = || FeatureSetSpec::new("fs", "e").with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint));
        let mut later = FeatureSpec::new("y").dtype(FeatureDataType::Double);
        later.transformation = Some(TransformSpec::SqlExpression(borboleta_core::SqlExpressionSpec {
            expression: "x__avg_over_1_hour_fixed_windows * 2".into(),
        }));
        let cases = [
            (
                base().with_feature(
                    FeatureSpec::new("x").functions(&[("avg", FeatureDataType::Double)], Some(window("id"))),
                ),
                true,
            ),
            (
                base().with_feature(
                    FeatureSpec::new("x").functions(&[("min", FeatureDataType::Double)], Some(window("id"))),
                ),
                false,
            ),
            (
                base().with_feature(
                    FeatureSpec::new("x").functions(&[("avg", FeatureDataType::Double)], Some(window("s"))),
                ),
                false,
            ),
            (
                base()
                    .with_feature(
                        FeatureSpec::new("x").functions(&[("avg", FeatureDataType::Double)], Some(window("id"))),
                    )
                    .with_feature(later),
                false,
            ),
        ];
        for (fs, operator) in cases {
            let df = plan_table_t(&ctx, &fs).await;
            let plan = df.logical_plan().display_indent().to_string();
            assert_eq!(plan.contains("row_windows"), operator, "{plan}");
            assert_eq!(plan.contains("WindowAggr"), !operator, "{plan}");
            assert!(!df.collect().await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn unslidable_and_unknown_functions_are_spec_errors() {
        let ctx = crate::session::new_session();
        let window = FunctionWindowSpec {
            partition_by: OneOrMany::One("id".into()),
            order_by: None,
            mode: WindowMode::FixedWindows,
            definitions: vec!["1 day".into()],
        };
        let fs = FeatureSetSpec::new("fs", "e")
            .with_key(FeatureSpec::new("id").dtype(FeatureDataType::Bigint))
            .with_feature(
                FeatureSpec::new("x").functions(&[("collect_set", FeatureDataType::ArrayFloat)], Some(window)),
            )
            .with_feature(FeatureSpec::new("x").functions(&[("avg", FeatureDataType::Double)], None))
            .with_feature(FeatureSpec::new("x").functions(&[("coss", FeatureDataType::Double)], None));
        let err = plan_feature_set(
            &ctx,
            source(&ctx).await,
            &fs,
            &FeatureSetOptions::default(),
            &NullCounter::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`collect_set` cannot be computed over a sliding window"),
            "{err}"
        );
        assert!(err.contains("`avg` is an aggregate: it needs a `window`"), "{err}");
        assert!(err.contains("unknown function `coss` (did you mean `cos`?)"), "{err}");
    }
}
