//! [`RollingWindowsExec`]: rolling windows of an aggregated feature set from per-(key, slide
//! bucket) partial aggregates (see [`crate::plan::aggregated`] for how they are planned).
//!
//! Its input plan (the partial aggregation, sorted by key and bucket) runs inside `execute`; for
//! each key the operator sweeps the buckets once, combining those of each window (Chan's formula
//! for the variances) at the window ends where something changes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef, UInt32Type};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use borboleta_core::{DistinctKeep, FeatureDataType};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;

use crate::plan::cast::spark_cast_array;
use crate::windows::exec::{fmt_inner_plan, inner_plan_metrics, project};

/// Seconds of a day.
pub(crate) const DAY_SECONDS: i64 = 86_400;
/// Hidden column of the partial aggregates: the slide bucket of an event.
pub(crate) const BUCKET: &str = "__borboleta_bucket";
/// Hidden column: the pivot value's index.
pub(crate) const PIVOT: &str = "__borboleta_pivot";
/// Hidden column: the `with_distinct` value.
pub(crate) const DISTINCT: &str = "__borboleta_distinct";

/// One aggregate of one feature: its function, result type and the feature's value column.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub(crate) function: String,
    pub(crate) dtype: FeatureDataType,
    pub(crate) feature: usize,
}

/// One output column of the windowed aggregation.
#[derive(Debug, Clone)]
pub(crate) struct OutputColumn {
    pub(crate) pivot: Option<u32>,
    pub(crate) aggregate: Aggregate,
    pub(crate) buckets: i64,
}

#[derive(Debug)]
pub(crate) struct SweepConfig {
    pub(crate) keys: usize,
    pub(crate) slide_micros: i64,
    /// One-day slide: the daily grid from the first event's day to the end date.
    pub(crate) grid: bool,
    /// First output instant kept (start date 00:00), if any.
    pub(crate) start: Option<i64>,
    /// Output instants before this (the day after the end date).
    pub(crate) end_exclusive: i64,
    pub(crate) features: usize,
    pub(crate) pivot: bool,
    pub(crate) distinct: Option<DistinctKeep>,
    pub(crate) columns: Vec<OutputColumn>,
    /// The windows' lengths in slides, distinct, ascending.
    pub(crate) window_buckets: Vec<i64>,
    pub(crate) deduplicate: bool,
    pub(crate) windows: Vec<String>,
}

/// The input plan (partial aggregates) of the operator's table, if `provider` is one.
pub(crate) fn input_plan(provider: &dyn TableProvider) -> Option<&LogicalPlan> {
    provider.downcast_ref::<RollingWindowsTable>().map(|t| &t.partials)
}

/// The windowed aggregation as a table: scanning it runs the partial aggregation and the sweep.
#[derive(Debug)]
pub(crate) struct RollingWindowsTable {
    pub(crate) partials: LogicalPlan,
    pub(crate) config: Arc<SweepConfig>,
    pub(crate) schema: SchemaRef,
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
