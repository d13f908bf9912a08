//! Butterfree's `AggregatedFeatureSet`: aggregate functions per keys + timestamp, or over rolling
//! windows aligned to the Unix epoch in UTC, with pivots, `with_distinct` and filter expressions.
//!
//! Without windows the aggregation is one DataFusion `GROUP BY keys, timestamp`. With windows,
//! each event is aggregated **once**, into its key's slide bucket (a day by default): DataFusion
//! computes per-(key, bucket) partial states (count, sum, min, max, and mean + M2 for variances),
//! and [`RollingWindowsExec`] combines the buckets of each window (Chan's formula for the
//! variances) at the window ends where something changes — never copying an event into every
//! window that contains it, as Spark does. With the default one-day slide the output is
//! Butterfree's daily grid (every key × every day from the first event to `end_date`) reduced by
//! the duplicate-row filter to its change points; with another slide, only window ends with
//! events appear (Butterfree's full outer join of the windows).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use borboleta_core::naming::{TIMESTAMP_COLUMN, aggregated_feature_columns};
use borboleta_core::validate::aggregation_slide_seconds;
use borboleta_core::{
    AggregationSpec, DistinctKeep, FeatureSetSpec, PivotValue, SpecIssues, TransformSpec, WindowDefinition, WindowMode,
    key_columns,
};
use chrono::NaiveDate;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{Expr, ExprFunctionExt, ExprSchemable, col, lit, when};
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::{Error, Result};
use crate::plan::cast::{NullCounter, spark_cast};
use crate::plan::feature_set::{FeatureSetOptions, date_filter, deduplicate_rows};
use crate::plan::util::{check_column, clean_df_error, column};
use crate::windows::rolling::{
    Aggregate, BUCKET, DAY_SECONDS, DISTINCT, OutputColumn, PIVOT, RollingWindowsTable, SweepConfig,
};

/// The days a read must go back so that the first output day's windows are complete
/// (Butterfree's `define_start_date`): the largest window in whole days, plus one.
pub fn read_back_days(fs: &FeatureSetSpec) -> i64 {
    let Some(a) = &fs.aggregation else { return 0 };
    let largest = a
        .windows
        .iter()
        .filter_map(|d| WindowDefinition::parse(d, WindowMode::RollingWindows).ok())
        .filter_map(|w| w.seconds())
        .max();
    largest.map_or(0, |s| s / DAY_SECONDS + 1)
}

/// Builds an aggregated feature set's plan on `source`.
pub async fn plan_aggregated(
    ctx: &SessionContext,
    source: DataFrame,
    fs: &FeatureSetSpec,
    opts: &FeatureSetOptions,
    counter: &NullCounter,
) -> Result<DataFrame> {
    let default_agg = AggregationSpec::default();
    let agg = fs.aggregation.as_ref().unwrap_or(&default_agg);
    let mut issues = SpecIssues::default();
    let df = crate::plan::feature_set::apply_keys_and_timestamp(ctx, source, fs, counter, &mut issues)?;
    // The value each feature aggregates: its input column, nulled where its filter fails.
    let mut aggregates = Vec::new();
    let mut values = Vec::new();
    for (i, f) in fs.features.iter().enumerate() {
        let Some(TransformSpec::Aggregated(t)) = &f.transformation else {
            continue; // reported by the validation
        };
        let path = format!("feature_set.features[{i}]");
        let input = f.from_column.clone().unwrap_or_else(|| f.name.clone());
        let mut value = match check_column(&df, &input) {
            Ok(e) => e,
            Err(m) => {
                let field = if f.from_column.is_some() { "from_column" } else { "name" };
                issues.push(format!("{path}.{field}"), m);
                continue;
            }
        };
        if let Some(filter) = &t.filter_expression {
            match df.parse_sql_expr(filter) {
                Ok(cond) => match cond.get_type(df.schema()) {
                    Ok(_) => value = when(cond, value).end()?,
                    Err(e) => issues.push(format!("{path}.transformation.filter_expression"), clean_df_error(&e)),
                },
                Err(e) => issues.push(format!("{path}.transformation.filter_expression"), clean_df_error(&e)),
            }
        }
        let name = format!("__borboleta_value_{}", values.len());
        for func in &t.functions {
            aggregates.push(Aggregate {
                function: func.function.to_ascii_lowercase(),
                dtype: func.dtype,
                feature: values.len(),
            });
        }
        values.push((name, value));
    }
    let keys = key_columns(fs);
    let mut subset = Vec::new();
    if let Some(d) = &agg.distinct {
        for (j, c) in d.subset.iter().enumerate() {
            match check_column(&df, c) {
                Ok(e) => subset.push(e),
                Err(m) => issues.push(format!("feature_set.aggregation.distinct.subset[{j}]"), m),
            }
        }
    }
    let pivot_col = match &agg.pivot {
        Some(p) => match check_column(&df, &p.column) {
            Ok(e) => Some(e),
            Err(m) => {
                issues.push("feature_set.aggregation.pivot.column", m);
                None
            }
        },
        None => None,
    };
    if !agg.windows.is_empty() && opts.end_date.is_none() && !opts.probe {
        issues.push(
            "feature_set.aggregation.windows",
            "an aggregated feature set with windows needs an end date: run with --end-date (or --date)",
        );
    }
    issues.into_result()?;

    let pivot_values = match (&agg.pivot, &pivot_col) {
        (Some(p), Some(c)) => Some(match &p.values {
            Some(v) => v.clone(),
            None => discover_pivot_values(&df, c, p.max_values.unwrap_or(10_000)).await?,
        }),
        _ => None,
    };
    let pivot_names: Vec<String> = pivot_values.iter().flatten().map(PivotValue::name).collect();
    let names = aggregated_feature_columns(fs, &pivot_names);

    // keys, timestamp, the values, the pivot index and the distinct identity
    let mut select: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    select.push(column(TIMESTAMP_COLUMN));
    for (n, v) in &values {
        select.push(v.clone().alias(n));
    }
    if let (Some(values), Some(c)) = (&pivot_values, &pivot_col) {
        // the index of the row's pivot value in `values`; null for a value not listed
        let mut e = lit(ScalarValue::UInt32(None));
        if let Some((first, rest)) = values.split_first() {
            let mut b = when(c.clone().eq(pivot_literal(first)), lit(0u32));
            for (idx, v) in rest.iter().enumerate() {
                b = b.when(c.clone().eq(pivot_literal(v)), lit(idx as u32 + 1));
            }
            e = b.end()?;
        }
        select.push(e.alias(PIVOT));
    }
    if !subset.is_empty() {
        let parts: Vec<Expr> = subset
            .iter()
            .flat_map(|e| {
                [
                    datafusion::functions::expr_fn::coalesce(vec![
                        spark_cast(e.clone(), DataType::Utf8, &NullCounter::default()),
                        lit("\u{0}null"),
                    ]),
                    lit("\u{1f}"),
                ]
            })
            .collect();
        select.push(datafusion::functions::expr_fn::concat(parts).alias(DISTINCT));
    }
    let df = df.select(select)?;
    let floats: Vec<bool> = aggregates.iter().map(|a| a.dtype.to_arrow().is_floating()).collect();
    let keep = agg.distinct.as_ref().map(|d| d.keep).unwrap_or_default();

    if agg.windows.is_empty() {
        let df = group_by_timestamp(ctx, df, &keys, &aggregates, &pivot_values, &names, keep, counter)?;
        let df = null_nans(df, &names, &floats)?;
        let df = date_filter(df, fs.timestamp.dtype, opts)?;
        let df = if fs.deduplicate_rows.unwrap_or(true) {
            deduplicate_rows(df, &keys, &names)?
        } else {
            df
        };
        return Ok(df);
    }

    // rolling windows: per-(key, slide bucket) partial states, combined by RollingWindowsExec
    let slide = aggregation_slide_seconds(agg).map_err(|m| Error::spec("feature_set.aggregation.slide", m))?;
    let window_buckets: Vec<i64> = agg
        .windows
        .iter()
        .filter_map(|d| WindowDefinition::parse(d, WindowMode::RollingWindows).ok())
        .filter_map(|w| w.seconds())
        .map(|s| s / slide)
        .collect();
    let bucket = Expr::Cast(datafusion::logical_expr::Cast::new(
        Box::new(datafusion::functions::expr_fn::floor(
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(column(TIMESTAMP_COLUMN)),
                DataType::Int64,
            ))
            .cast_to(&DataType::Float64, df.schema())?
                / lit((slide * 1_000_000) as f64),
        )),
        DataType::Int64,
    ));
    let mut df = df.with_column(BUCKET, bucket)?;
    let mut group: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    group.push(col(BUCKET));
    if !subset.is_empty() {
        // one row per key, slide bucket and distinct identity, whatever its pivot value
        df = keep_one_per_distinct(df, group.clone(), keep)?;
        group.push(col(DISTINCT));
    }
    if pivot_values.is_some() {
        group.push(col(PIVOT));
    }
    let mut partials = Vec::new();
    for (i, (name, _)) in values.iter().enumerate() {
        // only the partial states the feature's functions need
        let needs = |fs: &[&str]| {
            aggregates
                .iter()
                .any(|a| a.feature == i && fs.contains(&a.function.as_str()))
        };
        let v = col(name.as_str()).cast_to(&DataType::Float64, df.schema())?;
        use datafusion::functions_aggregate::expr_fn as f;
        partials.push(f::count(col(name.as_str())).alias(format!("__c{i}")));
        partials.push(f::sum(v.clone()).alias(format!("__s{i}")));
        if needs(&["min"]) {
            partials.push(f::min(v.clone()).alias(format!("__min{i}")));
        }
        if needs(&["max"]) {
            partials.push(f::max(v.clone()).alias(format!("__max{i}")));
        }
        if needs(&["stddev_pop", "stddev", "stddev_samp", "var_pop", "var_samp", "variance"]) {
            partials.push(f::var_pop(v).alias(format!("__var{i}")));
        }
    }
    let mut order: Vec<_> = group.iter().map(|e| e.clone().sort(true, true)).collect();
    order.truncate(keys.len() + 1);
    let partials = df.aggregate(group, partials)?.sort(order)?;

    let key_fields: Vec<Field> = keys
        .iter()
        .map(|k| {
            partials
                .schema()
                .field_with_unqualified_name(k)
                .map(|f| f.as_ref().clone())
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut fields = key_fields;
    fields.push(Field::new(TIMESTAMP_COLUMN, fs.timestamp.dtype.to_arrow(), true));
    let n_pivots = pivot_values.as_ref().map_or(1, Vec::len);
    let mut columns = Vec::new();
    for p in 0..n_pivots {
        for a in &aggregates {
            for k in &window_buckets {
                columns.push(OutputColumn {
                    pivot: pivot_values.as_ref().map(|_| p as u32),
                    aggregate: a.clone(),
                    buckets: *k,
                });
            }
        }
    }
    for (c, name) in columns.iter().zip(&names) {
        fields.push(Field::new(name, c.aggregate.dtype.to_arrow(), true));
    }
    let end_day = opts.end_date.map(day_index).unwrap_or(0);
    let config = SweepConfig {
        keys: keys.len(),
        slide_micros: slide * 1_000_000,
        grid: slide == DAY_SECONDS,
        start: opts.start_date.map(|d| day_index(d) * DAY_SECONDS * 1_000_000),
        end_exclusive: (end_day + 1) * DAY_SECONDS * 1_000_000,
        features: values.len(),
        pivot: pivot_values.is_some(),
        distinct: (!subset.is_empty()).then_some(keep),
        columns,
        window_buckets: {
            let mut w = window_buckets.clone();
            w.sort_unstable();
            w.dedup();
            w
        },
        deduplicate: fs.deduplicate_rows.unwrap_or(true),
        windows: agg.windows.clone(),
    };
    // the scan's name tells `explain` what the windowed aggregation does
    let name = format!(
        "rolling_windows(windows: [{}], slide: {} s, {}, partial aggregates per key and slide)",
        config.windows.join(", "),
        slide,
        if config.grid {
            "daily grid"
        } else {
            "window ends with events"
        }
    );
    let table = RollingWindowsTable {
        partials: partials.logical_plan().clone(),
        config: Arc::new(config),
        schema: Arc::new(Schema::new(fields)),
    };
    let scan = datafusion::logical_expr::LogicalPlanBuilder::scan(
        name,
        datafusion::datasource::provider_as_source(Arc::new(table)),
        None,
    )?
    .build()?;
    Ok(DataFrame::new(ctx.state(), scan))
}

fn day_index(d: NaiveDate) -> i64 {
    borboleta_core::time::date_start_micros(d).div_euclid(DAY_SECONDS * 1_000_000)
}

fn pivot_literal(v: &PivotValue) -> Expr {
    match v {
        PivotValue::Bool(b) => lit(*b),
        PivotValue::Int(i) => lit(*i),
        PivotValue::Float(f) => lit(*f),
        PivotValue::String(s) => lit(s.clone()),
    }
}

/// The pivot column's distinct values, sorted (Spark's order), at most `max`.
async fn discover_pivot_values(df: &DataFrame, c: &Expr, max: usize) -> Result<Vec<PivotValue>> {
    let values = distinct_sorted(df, c).await?;
    if values.len() > max {
        return Err(Error::spec(
            "feature_set.aggregation.pivot",
            format!(
                "the pivot column has {} distinct values, more than max_values ({max}): list the \
                 `values` to keep, or raise `max_values`",
                values.len()
            ),
        ));
    }
    Ok(values
        .into_iter()
        .map(|v| match v {
            ScalarValue::Boolean(Some(v)) => PivotValue::Bool(v),
            s @ (ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::UInt8(_)
            | ScalarValue::UInt16(_)
            | ScalarValue::UInt32(_)) => PivotValue::Int(s.to_string().parse().unwrap_or_default()),
            ScalarValue::Float32(Some(v)) => PivotValue::Float(f64::from(v)),
            ScalarValue::Float64(Some(v)) => PivotValue::Float(v),
            s => PivotValue::String(s.to_string()),
        })
        .collect())
}

/// The distinct non-null values of `e` over `df`, sorted (the order Spark's pivot finds them in),
/// in one query.
pub(crate) async fn distinct_sorted(df: &DataFrame, e: &Expr) -> DfResult<Vec<ScalarValue>> {
    let batches = df
        .clone()
        .select(vec![e.clone().alias("v")])?
        .filter(col("v").is_not_null())?
        .distinct()?
        .sort(vec![col("v").sort(true, true)])?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            out.push(ScalarValue::try_from_array(b.column(0), i)?);
        }
    }
    Ok(out)
}

/// `with_distinct`: keep one row per `group` + distinct identity: the latest (or earliest) by time.
fn keep_one_per_distinct(df: DataFrame, mut group: Vec<Expr>, keep: DistinctKeep) -> Result<DataFrame> {
    use datafusion::functions_window::expr_fn::row_number;
    let schema = df.schema().clone();
    group.push(col(DISTINCT));
    let rn = row_number()
        .partition_by(group)
        .order_by(vec![column(TIMESTAMP_COLUMN).sort(keep == DistinctKeep::First, true)])
        .build()?;
    let cols: Vec<Expr> = schema.fields().iter().map(|f| column(f.name())).collect();
    Ok(df
        .with_column("__borboleta_rn", rn)?
        .filter(col("__borboleta_rn").eq(lit(1u64)))?
        .select(cols)?)
}

/// The DataFusion aggregate for a Butterfree function name.
pub(crate) fn aggregate_expr(ctx: &SessionContext, function: &str, value: Expr) -> Result<Expr> {
    let udaf = |n: &str| {
        ctx.udaf(n)
            .map_err(|e| Error::Internal(format!("aggregate `{n}` missing from the session: {e}")))
    };
    Ok(match function {
        "avg" | "mean" => udaf("avg")?.call(vec![value]),
        "stddev" | "stddev_samp" => udaf("stddev")?.call(vec![value]),
        "variance" | "var_samp" => udaf("var_samp")?.call(vec![value]),
        "approx_count_distinct" => udaf("approx_distinct")?.call(vec![value]),
        "collect_set" => udaf("array_agg")?
            .call(vec![value.clone()])
            .distinct()
            .filter(value.is_not_null())
            .build()?,
        "collect_list" => udaf("array_agg")?
            .call(vec![value.clone()])
            .filter(value.is_not_null())
            .build()?,
        "first" => udaf("first_value")?.call(vec![value]),
        "last" => udaf("last_value")?.call(vec![value]),
        other => udaf(other)?.call(vec![value]),
    })
}

/// No windows: one row per keys + timestamp (Butterfree's `groupBy(keys, timestamp)`).
#[allow(clippy::too_many_arguments)]
fn group_by_timestamp(
    ctx: &SessionContext,
    df: DataFrame,
    keys: &[String],
    aggregates: &[Aggregate],
    pivot_values: &Option<Vec<PivotValue>>,
    names: &[String],
    keep: DistinctKeep,
    counter: &NullCounter,
) -> Result<DataFrame> {
    let mut group: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    group.push(column(TIMESTAMP_COLUMN));
    let df = if df.schema().has_column_with_unqualified_name(DISTINCT) {
        keep_one_per_distinct(df, group.clone(), keep)?
    } else {
        df
    };
    let pivots: Vec<Option<u32>> = match pivot_values {
        Some(v) => (0..v.len() as u32).map(Some).collect(),
        None => vec![None],
    };
    let mut exprs = Vec::new();
    let mut name = names.iter();
    for p in &pivots {
        for a in aggregates {
            let mut value = col(format!("__borboleta_value_{}", a.feature));
            if let Some(p) = p {
                value = when(col(PIVOT).eq(lit(*p)), value).end()?;
            }
            let mut e = aggregate_expr(ctx, &a.function, value)?;
            if let Some(p) = p {
                // Spark's pivot: no row of this value in the group gives null, even for count
                let present =
                    datafusion::functions_aggregate::expr_fn::count(when(col(PIVOT).eq(lit(*p)), lit(1)).end()?);
                e = when(present.gt(lit(0i64)), e).end()?;
            }
            let e = spark_cast(e, a.dtype.to_arrow(), counter);
            exprs.push(e.alias(name.next().cloned().unwrap_or_default()));
        }
    }
    let out = df.aggregate(group, exprs)?;
    let mut cols: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    cols.push(column(TIMESTAMP_COLUMN));
    cols.extend(names.iter().map(|n| column(n)));
    Ok(out.select(cols)?)
}

/// Butterfree replaces NaN by null in every floating-point feature column.
fn null_nans(df: DataFrame, names: &[String], floats: &[bool]) -> Result<DataFrame> {
    let schema = df.schema().clone();
    let mut cols = Vec::new();
    for f in schema.fields() {
        let c = column(f.name());
        let is_float = f.data_type().is_floating();
        let listed = names.iter().position(|n| n == f.name());
        if is_float && listed.is_some_and(|i| floats.get(i).copied().unwrap_or(true)) {
            cols.push(
                when(
                    datafusion::functions::expr_fn::isnan(c.clone()),
                    lit(ScalarValue::try_from(f.data_type())?),
                )
                .otherwise(c)?
                .alias(f.name()),
            );
        } else {
            cols.push(c);
        }
    }
    Ok(df.select(cols)?)
}

#[cfg(test)]
#[path = "aggregated_tests.rs"]
mod tests;
