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

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, UInt32Type};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use borboleta_core::naming::{TIMESTAMP_COLUMN, aggregated_feature_columns};
use borboleta_core::validate::aggregation_slide_seconds;
use borboleta_core::{
    AggregationSpec, DistinctKeep, FeatureDataType, FeatureSetSpec, PivotValue, SpecIssues, TransformSpec,
    WindowDefinition, WindowMode, key_columns,
};
use chrono::NaiveDate;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{FunctionRegistry, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, col, lit, when};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::cast::{NullCounter, spark_cast, spark_cast_array};
use crate::error::{Error, Result};
use crate::feature_set::{FeatureSetOptions, check_column, clean_df_error, column, date_filter, deduplicate_rows};

const DAY_SECONDS: i64 = 86_400;
const BUCKET: &str = "__borboleta_bucket";
const PIVOT: &str = "__borboleta_pivot";
const DISTINCT: &str = "__borboleta_distinct";

/// One aggregate of one feature: its function, result type and the feature's value column.
#[derive(Debug, Clone)]
struct Aggregate {
    function: String,
    dtype: FeatureDataType,
    feature: usize,
}

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
    let df = crate::feature_set::apply_keys_and_timestamp(ctx, source, fs, counter, &mut issues)?;
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

// ------------------------------------------------------------------ rolling windows

/// One output column of the windowed aggregation.
#[derive(Debug, Clone)]
struct OutputColumn {
    pivot: Option<u32>,
    aggregate: Aggregate,
    buckets: i64,
}

#[derive(Debug)]
struct SweepConfig {
    keys: usize,
    slide_micros: i64,
    /// One-day slide: the daily grid from the first event's day to the end date.
    grid: bool,
    /// First output instant kept (start date 00:00), if any.
    start: Option<i64>,
    /// Output instants before this (the day after the end date).
    end_exclusive: i64,
    features: usize,
    pivot: bool,
    distinct: Option<DistinctKeep>,
    columns: Vec<OutputColumn>,
    /// The windows' lengths in slides, distinct, ascending.
    window_buckets: Vec<i64>,
    deduplicate: bool,
    windows: Vec<String>,
}

/// The input plan (partial aggregates) of the operator's table, if `provider` is one.
pub(crate) fn input_plan(provider: &dyn TableProvider) -> Option<&LogicalPlan> {
    provider.downcast_ref::<RollingWindowsTable>().map(|t| &t.partials)
}

/// The windowed aggregation as a table: scanning it runs the partial aggregation and the sweep.
#[derive(Debug)]
struct RollingWindowsTable {
    partials: LogicalPlan,
    config: Arc<SweepConfig>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for RollingWindowsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Temporary
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = state.create_physical_plan(&self.partials).await?;
        let exec: Arc<dyn ExecutionPlan> = Arc::new(RollingWindowsExec::new(
            input,
            Arc::clone(&self.config),
            Arc::clone(&self.schema),
        ));
        project(exec, &self.schema, projection)
    }
}

/// `exec` with only the `projection` columns of its `schema` (a table scan's projection).
pub(crate) fn project(
    exec: Arc<dyn ExecutionPlan>,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    match projection {
        None => Ok(exec),
        Some(p) => {
            let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = p
                .iter()
                .map(|&i| {
                    let name = schema.field(i).name().clone();
                    let c: Arc<dyn PhysicalExpr> =
                        Arc::new(datafusion::physical_expr::expressions::Column::new(&name, i));
                    (c, name)
                })
                .collect();
            Ok(Arc::new(
                datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, exec)?,
            ))
        }
    }
}

/// Combines per-(key, slide bucket) partial aggregates into rolling windows (see the module doc).
/// Its input plan (the partial aggregation, sorted by key and bucket) runs inside `execute`.
#[derive(Debug)]
pub struct RollingWindowsExec {
    input: Arc<dyn ExecutionPlan>,
    config: Arc<SweepConfig>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RollingWindowsExec {
    fn new(input: Arc<dyn ExecutionPlan>, config: Arc<SweepConfig>, schema: SchemaRef) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            config,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for RollingWindowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let c = &self.config;
        write!(
            f,
            "RollingWindowsExec: windows=[{}], slide={}s, {}, dedup={}; partial aggregates:",
            c.windows.join(", "),
            c.slide_micros / 1_000_000,
            if c.grid {
                "daily grid"
            } else {
                "window ends with events"
            },
            c.deduplicate,
        )?;
        // the partial aggregation runs inside this operator: show its plan under it
        fmt_inner_plan(&self.input, f)
    }
}

/// An operator's inner plan (one it runs inside `execute`), under its own line.
pub(crate) fn fmt_inner_plan(input: &Arc<dyn ExecutionPlan>, f: &mut fmt::Formatter) -> fmt::Result {
    let input = datafusion::physical_plan::displayable(input.as_ref())
        .indent(true)
        .to_string();
    for line in input.lines() {
        write!(f, "\n    | {line}")?;
    }
    Ok(())
}

/// The metrics of an operator that runs `input` inside `execute`: as a leaf, it reports the rows
/// its inner plan read (the run summary's "rows read").
pub(crate) fn inner_plan_metrics(
    input: &Arc<dyn ExecutionPlan>,
) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
    use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder};
    let set = ExecutionPlanMetricsSet::new();
    MetricBuilder::new(&set)
        .output_rows(0)
        .add(crate::pipeline::rows_read(input) as usize);
    Some(set.clone_inner())
}

impl ExecutionPlan for RollingWindowsExec {
    fn name(&self) -> &str {
        "RollingWindowsExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }
    /// As a leaf, reports the rows its inner plan read (the run summary's "rows read").
    fn metrics(&self) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
        inner_plan_metrics(&self.input)
    }
    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = Arc::clone(&self.input);
        let config = Arc::clone(&self.config);
        let schema = Arc::clone(&self.schema);
        let out_schema = Arc::clone(&self.schema);
        let fut = async move {
            let batches = datafusion::physical_plan::collect(input, context).await?;
            Sweeper::new(batches, config, schema)
        };
        let stream = futures::stream::once(fut).flat_map(|sweeper| match sweeper {
            Ok(s) => futures::stream::unfold(s, |mut s| async move { s.next_batch().map(|b| (b, s)) }).boxed(),
            Err(e) => futures::stream::iter(vec![Err(e)]).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, stream)))
    }
}

/// Mergeable partial state of one feature over some buckets.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    n: i64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl State {
    /// Chan et al.'s parallel merge of (n, mean, M2); sums, mins and maxes combine directly.
    fn merge(&mut self, o: &State) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        let (na, nb) = (self.n as f64, o.n as f64);
        self.mean += delta * nb / n as f64;
        self.m2 += o.m2 + delta * delta * na * nb / n as f64;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.n = n;
    }

    fn value(&self, function: &str) -> Value {
        let n = self.n as f64;
        let f = |v: f64| if v.is_nan() { Value::Null } else { Value::F(v) };
        match function {
            "count" => Value::I(self.n),
            _ if self.n == 0 => Value::Null,
            "sum" => f(self.sum),
            "avg" | "mean" => f(self.sum / n),
            "min" => f(self.min),
            "max" => f(self.max),
            "stddev_pop" => f((self.m2 / n).sqrt()),
            "var_pop" => f(self.m2 / n),
            _ if self.n < 2 => Value::Null,
            "stddev" | "stddev_samp" => f((self.m2 / (n - 1.0)).sqrt()),
            "var_samp" | "variance" => f(self.m2 / (n - 1.0)),
            _ => Value::Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Null,
    F(f64),
    I(i64),
}

/// One partial row: a key's bucket (and pivot, distinct identity) with a state per feature.
struct Cell {
    bucket: i64,
    pivot: u32,
    distinct: u32,
    states: Vec<State>,
}

/// Rows per output batch of the sweep.
const CHUNK_ROWS: usize = 16_384;

/// The sweep over the sorted partial aggregates, one key at a time, yielding output batches of
/// about [`CHUNK_ROWS`] rows (the output is never held whole).
struct Sweeper {
    config: Arc<SweepConfig>,
    schema: SchemaRef,
    batch: RecordBatch,
    key_cols: Vec<ArrayRef>,
    key_rows: arrow::row::Rows,
    global_first: Option<i64>,
    position: usize,
}

impl Sweeper {
    fn new(batches: Vec<RecordBatch>, config: Arc<SweepConfig>, schema: SchemaRef) -> DfResult<Self> {
        let batch = match batches.first() {
            Some(first) => concat_batches(&first.schema(), &batches)?,
            None => RecordBatch::new_empty(Arc::new(Schema::empty())),
        };
        drop(batches);
        let key_cols: Vec<ArrayRef> = if batch.num_columns() == 0 {
            Vec::new()
        } else {
            (0..config.keys).map(|i| Arc::clone(batch.column(i))).collect()
        };
        let converter = RowConverter::new(key_cols.iter().map(|c| SortField::new(c.data_type().clone())).collect())?;
        let key_rows = converter.convert_columns(&key_cols)?;
        let global_first = batch.column_by_name(BUCKET).and_then(|b| {
            let b = b.as_primitive::<Int64Type>();
            b.iter().flatten().min()
        });
        Ok(Self {
            config,
            schema,
            batch,
            key_cols,
            key_rows,
            global_first,
            position: 0,
        })
    }

    /// The next output batch, or `None` when every key is done.
    fn next_batch(&mut self) -> Option<DfResult<RecordBatch>> {
        let rows = self.batch.num_rows();
        if self.position >= rows {
            return None;
        }
        let config = Arc::clone(&self.config);
        let by_name = |n: &str| self.batch.column_by_name(n).cloned();
        let buckets = by_name(BUCKET)?;
        let buckets = buckets.as_primitive::<Int64Type>();
        let pivots = by_name(PIVOT);
        let pivots = pivots.as_ref().map(|a| a.as_primitive::<UInt32Type>());
        let distincts = by_name(DISTINCT);
        let distincts = distincts.as_ref().map(|a| a.as_string::<i32>());
        let floats = |name: String| by_name(&name).map(|a| a.as_primitive::<Float64Type>().clone());
        let feature_cols: Vec<_> = (0..config.features)
            .map(|i| {
                (
                    by_name(&format!("__c{i}")).map(|a| a.as_primitive::<Int64Type>().clone()),
                    floats(format!("__s{i}")),
                    floats(format!("__min{i}")),
                    floats(format!("__max{i}")),
                    floats(format!("__var{i}")),
                )
            })
            .collect();
        let mut out = Output::new(config.columns.len());
        let mut distinct_ids: HashMap<String, u32> = HashMap::new();
        while self.position < rows && out.ts.len() < CHUNK_ROWS {
            let start = self.position;
            let mut end = start + 1;
            while end < rows && self.key_rows.row(end) == self.key_rows.row(start) {
                end += 1;
            }
            let mut cells = Vec::with_capacity(end - start);
            for r in start..end {
                if buckets.is_null(r) {
                    continue; // no timestamp: in no window
                }
                let states = feature_cols
                    .iter()
                    .map(|(c, s, mn, mx, var)| {
                        let n = c.as_ref().map_or(0, |c| c.value(r));
                        let f = |a: &Option<arrow::array::Float64Array>| {
                            a.as_ref().map_or(0.0, |a| if a.is_null(r) { 0.0 } else { a.value(r) })
                        };
                        let sum = f(s);
                        State {
                            n,
                            sum,
                            min: f(mn),
                            max: f(mx),
                            mean: if n > 0 { sum / n as f64 } else { 0.0 },
                            m2: f(var) * n as f64,
                        }
                    })
                    .collect();
                let distinct = match distincts {
                    Some(d) => {
                        let next = distinct_ids.len() as u32;
                        *distinct_ids.entry(d.value(r).to_string()).or_insert(next)
                    }
                    None => 0,
                };
                cells.push(Cell {
                    bucket: buckets.value(r),
                    pivot: pivots.map_or(0, |p| if p.is_null(r) { u32::MAX } else { p.value(r) }),
                    distinct,
                    states,
                });
            }
            distinct_ids.clear();
            sweep_key(&cells, start as u64, self.global_first, &config, &mut out);
            self.position = end;
        }
        Some(out.into_batch(&self.key_cols, &config, &self.schema))
    }
}

/// Output rows of the sweep being gathered into a batch.
struct Output {
    key_rows: Vec<u64>,
    ts: Vec<i64>,
    values: Vec<Vec<Value>>,
}

impl Output {
    fn new(columns: usize) -> Self {
        Self {
            key_rows: Vec::new(),
            ts: Vec::new(),
            values: vec![Vec::new(); columns],
        }
    }

    fn push(&mut self, row: &[Value], ts: i64, key_row: u64) {
        self.key_rows.push(key_row);
        self.ts.push(ts);
        for (col, v) in self.values.iter_mut().zip(row) {
            col.push(*v);
        }
    }

    fn into_batch(self, key_cols: &[ArrayRef], config: &SweepConfig, schema: &SchemaRef) -> DfResult<RecordBatch> {
        let indices = arrow::array::UInt64Array::from(self.key_rows);
        let mut columns: Vec<ArrayRef> = Vec::new();
        for k in key_cols {
            columns.push(take(k.as_ref(), &indices, None)?);
        }
        let tz = match schema.field(config.keys).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        columns.push(Arc::new(TimestampMicrosecondArray::from(self.ts).with_timezone_opt(tz)));
        for (c, values) in config.columns.iter().zip(self.values) {
            let raw: ArrayRef = if c.aggregate.function == "count" {
                Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
                    Value::I(i) => Some(*i),
                    _ => None,
                })))
            } else {
                Arc::new(Float64Array::from_iter(values.iter().map(|v| match v {
                    Value::F(f) => Some(*f),
                    Value::I(i) => Some(*i as f64),
                    Value::Null => None,
                })))
            };
            columns.push(spark_cast_array(&raw, &c.aggregate.dtype.to_arrow())?);
        }
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// Every window end of one key where the output may change; emits the rows that survive the
/// date filter and (when on) the duplicate-row filter.
#[allow(clippy::too_many_arguments)]
fn sweep_key(cells: &[Cell], key_row: u64, global_first: Option<i64>, config: &SweepConfig, out: &mut Output) {
    let slide = config.slide_micros;
    let lo_end = config
        .start
        .map(|s| s.div_euclid(slide) + i64::from(s.rem_euclid(slide) != 0));
    let hi_end = (config.end_exclusive - 1).div_euclid(slide); // last end whose instant is in range
    let mut ends: Vec<i64> = Vec::new();
    let (first_end, last_end) = if config.grid {
        let Some(g) = global_first else { return };
        (g.max(lo_end.unwrap_or(i64::MIN)), hi_end)
    } else {
        (lo_end.unwrap_or(i64::MIN), hi_end)
    };
    if first_end > last_end {
        return;
    }
    if config.grid {
        ends.push(first_end);
        for c in cells {
            for k in &config.window_buckets {
                ends.push(c.bucket + 1);
                ends.push(c.bucket + k + 1);
            }
        }
    } else {
        for c in cells {
            for k in &config.window_buckets {
                ends.extend(c.bucket + 1..=c.bucket + k);
            }
        }
    }
    ends.retain(|e| (first_end..=last_end).contains(e));
    ends.sort_unstable();
    ends.dedup();

    let mut previous: Option<Vec<Value>> = None;
    let mut previous_end: Option<i64> = None;
    for &e in &ends {
        let row = row_at(cells, e, config);
        if config.grid && !config.deduplicate {
            // fill the unchanged days since the previous change point
            if let (Some(prev), Some(pe)) = (&previous, previous_end) {
                for d in pe + 1..e {
                    out.push(prev, d * slide, key_row);
                }
            }
        }
        let same = previous.as_ref().is_some_and(|p| same_row(p, &row, config));
        if !(config.deduplicate && same) {
            out.push(&row, e * slide, key_row);
        }
        previous = Some(row);
        previous_end = Some(e);
    }
    if config.grid
        && !config.deduplicate
        && let (Some(prev), Some(pe)) = (&previous, previous_end)
    {
        for d in pe + 1..=last_end {
            out.push(prev, d * slide, key_row);
        }
    }
}

/// Rows compare as Butterfree's filter compares them: after the cast to each column's type.
fn same_row(a: &[Value], b: &[Value], config: &SweepConfig) -> bool {
    a.iter().zip(b).zip(&config.columns).all(|((x, y), c)| {
        let norm = |v: &Value| -> Value {
            match (v, c.aggregate.dtype) {
                (Value::F(f), FeatureDataType::Float) => Value::F(f64::from(*f as f32)),
                (Value::F(f), FeatureDataType::Integer | FeatureDataType::Bigint) => Value::F(f.trunc()),
                (v, _) => *v,
            }
        };
        norm(x) == norm(y)
    })
}

/// The output row at window end `e` (bucket index): every column's window ends at `e`.
fn row_at(cells: &[Cell], e: i64, config: &SweepConfig) -> Vec<Value> {
    let mut out = Vec::with_capacity(config.columns.len());
    // per (window length, pivot): the merged states, computed once for all functions
    let mut cache: HashMap<(i64, u32), Option<Vec<State>>> = HashMap::new();
    for c in &config.columns {
        let pivot = c.pivot.unwrap_or(0);
        let merged = cache.entry((c.buckets, pivot)).or_insert_with(|| {
            let lo = e - c.buckets;
            let from = cells.partition_point(|x| x.bucket < lo);
            let to = cells.partition_point(|x| x.bucket < e);
            let in_window = &cells[from..to];
            let in_range = in_window.iter().filter(|x| !config.pivot || x.pivot == pivot);
            let mut states = vec![State::default(); config.features];
            let mut any = false;
            match config.distinct {
                None => {
                    for cell in in_range {
                        any = true;
                        for (s, cs) in states.iter_mut().zip(&cell.states) {
                            s.merge(cs);
                        }
                    }
                }
                Some(keep) => {
                    // one cell per distinct identity: the latest (last) or earliest (first) bucket
                    // (chosen across pivot values, as Butterfree dedups before it pivots)
                    let mut chosen: HashMap<u32, &Cell> = HashMap::new();
                    for cell in in_window {
                        let slot = chosen.entry(cell.distinct).or_insert(cell);
                        if keep == DistinctKeep::Last && cell.bucket > slot.bucket {
                            *slot = cell;
                        }
                    }
                    let mut picked: Vec<&&Cell> =
                        chosen.values().filter(|c| !config.pivot || c.pivot == pivot).collect();
                    picked.sort_by_key(|c| (c.bucket, c.distinct));
                    any = !picked.is_empty();
                    for cell in picked {
                        for (s, cs) in states.iter_mut().zip(&cell.states) {
                            s.merge(cs);
                        }
                    }
                }
            }
            any.then_some(states)
        });
        out.push(match merged {
            None => Value::Null,
            Some(states) => states[c.aggregate.feature].value(&c.aggregate.function),
        });
    }
    out
}

#[cfg(test)]
#[path = "aggregated_tests.rs"]
mod tests;
