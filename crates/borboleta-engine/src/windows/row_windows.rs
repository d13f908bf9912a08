//! Row-level windows and the consecutive-duplicate filter in one pass over the rows sorted once.
//!
//! Planned with DataFusion, a row-level feature set with a window feature sorts its rows twice
//! (by key and time for the window, then by key, time and every feature for the filter) and
//! slides each window through per-row scalar conversions. [`RowWindowsExec`] does both in one
//! operator instead: it groups the rows by key (a hash map, then a counting sort), sorts each
//! key's rows by timestamp (ties by the other features, as the filter orders them), computes
//! every window over each key's rows, and keeps a row only when it is its key's first or differs
//! from the row before it. Output is produced a few thousand rows at a time, whole keys per batch.
//!
//! Windows give Spark's results exactly (see [`crate::windows::sliding`]): each value is the left-to-right
//! fold of its frame, in frame order; a frame that only grew is extended, one that lost rows is
//! folded again from its first row, as Spark does. Fixed windows are RANGE frames over the
//! timestamp in whole epoch seconds (`[s - length, s]`, peers included); row windows are the
//! current row and the `n - 1` rows before it.
//!
//! Over 600 lines: one operator: planning, grouping, per-key folds and the duplicate filter share its packed row layout.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::cmp::distinct;
use arrow::compute::{cast, filter_record_batch, interleave};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimestampMicrosecondType};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{HashMap, Result as DfResult};
use datafusion::datasource::TableType;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::error::Result;
use crate::plan::cast::spark_cast_array;
use crate::plan::util::column;
use crate::windows::sliding::{Fold, SlidingKind};

/// What a window computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowKind {
    /// A Spark-exact floating-point aggregate over the values cast to double.
    Sliding(SlidingKind),
    /// The number of non-null values.
    Count,
}

/// The rows a window covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// RANGE over the timestamp in whole epoch seconds: `[s - seconds, s]`, peers included.
    Range { seconds: i64 },
    /// ROWS: the current row and the `size - 1` before it.
    Rows { size: usize },
}

/// One window feature column.
#[derive(Debug, Clone)]
pub(crate) struct WindowJob {
    /// The (hidden) input column with the window's argument.
    pub input: String,
    /// The aggregate, and the function's name as written (for `explain`).
    pub kind: WindowKind,
    pub function: String,
    pub frame: Frame,
    /// The definition as written, for `explain`.
    pub definition: String,
    /// The output column and its type (the result is cast to it with Spark's rules).
    pub output: String,
    pub dtype: DataType,
}

impl WindowJob {
    /// The aggregate behind a window function name, when this operator computes it.
    pub(crate) fn kind_of(function: &str, float_input: bool) -> Option<WindowKind> {
        match function {
            "count" => Some(WindowKind::Count),
            f => SlidingKind::of(f, float_input).map(WindowKind::Sliding),
        }
    }
}

/// Where an output feature comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// An input column, as it is.
    Column(usize),
    /// A window job (its index in `jobs`).
    Window(usize),
}

#[derive(Debug)]
struct Config {
    /// The first `keys` input columns are the keys; the timestamp follows.
    keys: usize,
    features: Vec<Source>,
    /// Each job with the index of its input column.
    jobs: Vec<(usize, WindowJob)>,
    /// Input columns that order rows with the same key and timestamp.
    ties: Vec<usize>,
    deduplicate: bool,
}

/// Whether the duplicate-row filter can compare a column of this type here (arrow's `distinct`
/// kernel on plain types).
pub(crate) fn comparable(t: &DataType) -> bool {
    orders_ties(t) || matches!(t, DataType::LargeUtf8 | DataType::Utf8View)
}

/// The feature set's windows and duplicate-row filter as one operator over `df`, which holds the
/// keys, the timestamp (microseconds), the features that are not windows (named as in the
/// output) and each job's input column. The output has the keys, the timestamp and `features`.
pub(crate) fn plan_row_windows(
    ctx: &SessionContext,
    df: DataFrame,
    keys: &[String],
    timestamp: &str,
    features: &[String],
    jobs: Vec<WindowJob>,
    deduplicate: bool,
) -> Result<DataFrame> {
    let mut select: Vec<Expr> = keys.iter().map(|k| column(k)).collect();
    select.push(column(timestamp));
    let mut input_names: Vec<String> = keys.to_vec();
    input_names.push(timestamp.to_string());
    let mut sources = Vec::new();
    for f in features {
        match jobs.iter().position(|j| &j.output == f) {
            Some(j) => sources.push(Source::Window(j)),
            None => {
                sources.push(Source::Column(input_names.len()));
                input_names.push(f.clone());
                select.push(column(f));
            }
        }
    }
    let mut with_inputs = Vec::new();
    for job in jobs {
        let at = match input_names.iter().position(|n| n == &job.input) {
            Some(i) => i,
            None => {
                input_names.push(job.input.clone());
                select.push(column(&job.input));
                input_names.len() - 1
            }
        };
        with_inputs.push((at, job));
    }
    let df = df.select(select)?;
    let input_schema = df.schema().as_arrow().clone();
    let mut fields: Vec<Field> = input_schema.fields()[..=keys.len()]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut ties = Vec::new();
    for (f, s) in features.iter().zip(&sources) {
        match s {
            Source::Column(i) => {
                let field = input_schema.field(*i);
                if orders_ties(field.data_type()) {
                    ties.push(*i);
                }
                fields.push(field.clone());
            }
            Source::Window(j) => fields.push(Field::new(f, with_inputs[*j].1.dtype.clone(), true)),
        }
    }
    let config = Config {
        keys: keys.len(),
        features: sources,
        jobs: with_inputs,
        ties,
        deduplicate,
    };
    let name = format!(
        "row_windows(windows: [{}], duplicate-row filter: {})",
        config
            .jobs
            .iter()
            .map(|(_, j)| format!("{}({}) over {}", j.function, j.input, j.definition))
            .collect::<Vec<_>>()
            .join(", "),
        if deduplicate { "on" } else { "off" }
    );
    let table = RowWindowsTable {
        input: df.logical_plan().clone(),
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

/// The input plan of the operator's table, if `provider` is one.
pub(crate) fn input_plan(provider: &dyn TableProvider) -> Option<&LogicalPlan> {
    provider.downcast_ref::<RowWindowsTable>().map(|t| &t.input)
}

/// The operator as a table: scanning it runs the input plan and the windows.
#[derive(Debug)]
struct RowWindowsTable {
    input: LogicalPlan,
    config: Arc<Config>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for RowWindowsTable {
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
        let input = state.create_physical_plan(&self.input).await?;
        let partitions = state.config().target_partitions();
        let exec: Arc<dyn ExecutionPlan> = Arc::new(RowWindowsExec::new(
            input,
            Arc::clone(&self.config),
            Arc::clone(&self.schema),
            partitions,
        ));
        crate::windows::exec::project(exec, &self.schema, projection)
    }
}

/// Computes row-level windows and the duplicate-row filter (see the module doc). Its input plan
/// runs inside `execute`, once for all output partitions; each partition computes its share of
/// the keys.
#[derive(Debug)]
pub struct RowWindowsExec {
    input: Arc<dyn ExecutionPlan>,
    config: Arc<Config>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    partitions: usize,
    grouped: Arc<tokio::sync::OnceCell<Result<Arc<Grouped>, Arc<datafusion::error::DataFusionError>>>>,
}

impl RowWindowsExec {
    fn new(input: Arc<dyn ExecutionPlan>, config: Arc<Config>, schema: SchemaRef, partitions: usize) -> Self {
        let partitions = partitions.max(1);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            config,
            schema,
            properties: Arc::new(properties),
            partitions,
            grouped: Arc::new(tokio::sync::OnceCell::new()),
        }
    }
}

impl DisplayAs for RowWindowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let c = &self.config;
        write!(f, "RowWindowsExec: windows=[")?;
        for (i, (_, j)) in c.jobs.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{} = {}({}) over {}", j.output, j.function, j.input, j.definition)?;
        }
        write!(f, "], dedup={}, partitions={}; input:", c.deduplicate, self.partitions)?;
        crate::windows::exec::fmt_inner_plan(&self.input, f)
    }
}

impl ExecutionPlan for RowWindowsExec {
    fn name(&self) -> &str {
        "RowWindowsExec"
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
        crate::windows::exec::inner_plan_metrics(&self.input)
    }
    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = Arc::clone(&self.input);
        let config = Arc::clone(&self.config);
        let schema = Arc::clone(&self.schema);
        let cell = Arc::clone(&self.grouped);
        let partitions = self.partitions;
        let fut = async move {
            // the first partition to get here runs the input; the others wait for it
            // (an error is kept too: the input must not run twice)
            let grouped = cell
                .get_or_init(|| async move {
                    // the rows are held until every key is done: accounted in the memory pool, so
                    // that `--memory-limit-mb` stops the run with a clear error before any write
                    let reservation = MemoryConsumer::new("RowWindowsExec").register(context.memory_pool());
                    let grouped = async {
                        let batches = datafusion::physical_plan::collect(input, context).await?;
                        Ok(Arc::new(Grouped::new(batches, config, reservation)?))
                    };
                    grouped.await.map_err(Arc::new)
                })
                .await
                .as_ref()
                .map_err(|e| datafusion::error::DataFusionError::Shared(Arc::clone(e)))?;
            // a contiguous share of the keys
            let groups = grouped.ends.len();
            let (from, to) = (groups * partition / partitions, groups * (partition + 1) / partitions);
            Ok::<_, datafusion::error::DataFusionError>(Cursor {
                grouped: Arc::clone(grouped),
                schema,
                next_group: from,
                end_group: to,
            })
        };
        let stream = futures::stream::once(fut).flat_map(|cursor| match cursor {
            Ok(c) => futures::stream::unfold(c, |mut c| async move { c.next_batch().map(|b| (b, c)) }).boxed(),
            Err(e) => futures::stream::iter(vec![Err(e)]).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// Rows per output batch (before the duplicate-row filter), in whole keys.
const CHUNK_ROWS: usize = 16_384;

/// Rows per input batch at most (longer batches are sliced), so that a row's batch and position
/// pack into a `u32`.
const ROW_BITS: u32 = 13;
const BATCH_ROWS: usize = 1 << ROW_BITS;

/// The input rows grouped by key, shared by the output partitions.
#[derive(Debug)]
struct Grouped {
    config: Arc<Config>,
    /// The input, in batches of at most [`BATCH_ROWS`] rows.
    batches: Vec<RecordBatch>,
    /// Every input row as `batch << ROW_BITS | row`, grouped by key (keys in order of first
    /// appearance, a key's rows in input order).
    rows: Vec<u32>,
    /// The end of each key's rows in `rows`.
    ends: Vec<usize>,
    /// Orders rows with equal keys and timestamps (the tie columns).
    ties: Option<RowConverter>,
    /// The memory they hold, in the query's pool (released when the last partition is done).
    _reservation: MemoryReservation,
}

impl Grouped {
    fn new(input: Vec<RecordBatch>, config: Arc<Config>, reservation: MemoryReservation) -> DfResult<Self> {
        reservation.try_grow(input.iter().map(RecordBatch::get_array_memory_size).sum())?;
        // zero-copy slices
        let mut batches = Vec::with_capacity(input.len());
        for b in input {
            let mut from = 0;
            while from < b.num_rows() {
                let len = BATCH_ROWS.min(b.num_rows() - from);
                batches.push(b.slice(from, len));
                from += len;
            }
        }
        if batches.len() > (u32::MAX >> ROW_BITS) as usize {
            return Err(datafusion::error::DataFusionError::Execution(format!(
                "{} input batches in one run of a row-level window feature set: at most {}",
                batches.len(),
                u32::MAX >> ROW_BITS
            )));
        }
        let (group_of, groups) = group_ids(&batches, config.keys)?;
        // counting sort by group, rows of a group in input order
        let mut ends = vec![0usize; groups];
        for &g in &group_of {
            ends[g as usize] += 1;
        }
        let mut at = Vec::with_capacity(groups);
        let mut total = 0;
        for e in ends.iter_mut() {
            at.push(total);
            total += *e;
            *e = total;
        }
        let mut rows = vec![0u32; total];
        let mut k = 0;
        for (b, batch) in batches.iter().enumerate() {
            for r in 0..batch.num_rows() {
                let g = group_of[k] as usize;
                rows[at[g]] = ((b as u32) << ROW_BITS) | r as u32;
                at[g] += 1;
                k += 1;
            }
        }
        drop(group_of);
        reservation.try_grow(rows.len() * size_of::<u32>())?;
        tracing::debug!(
            rows = total,
            keys = groups,
            held_mib = reservation.size() >> 20,
            "row windows: input grouped by key"
        );
        let ties = match batches.first() {
            Some(first) if !config.ties.is_empty() => Some(RowConverter::new(
                config
                    .ties
                    .iter()
                    .map(|&i| SortField::new(first.schema().field(i).data_type().clone()))
                    .collect(),
            )?),
            _ => None,
        };
        Ok(Self {
            config,
            batches,
            rows,
            ends,
            ties,
            _reservation: reservation,
        })
    }

    /// Column `c` at the packed rows `rows`.
    fn gather(&self, c: usize, rows: &[(usize, usize)]) -> DfResult<ArrayRef> {
        let arrays: Vec<&dyn Array> = self.batches.iter().map(|b| b.column(c).as_ref()).collect();
        Ok(interleave(&arrays, rows)?)
    }
}

/// A packed row as `(batch, row)`.
fn unpack(x: u32) -> (usize, usize) {
    ((x >> ROW_BITS) as usize, (x as usize) & (BATCH_ROWS - 1))
}

/// One output partition's way through its keys.
struct Cursor {
    grouped: Arc<Grouped>,
    schema: SchemaRef,
    next_group: usize,
    end_group: usize,
}

impl Cursor {
    /// The next output batch, or `None` when every key is done.
    fn next_batch(&mut self) -> Option<DfResult<RecordBatch>> {
        let mut out = None;
        // a batch whose rows all were duplicates is skipped
        while out.is_none() && self.next_group < self.end_group {
            out = match self.chunk() {
                Ok(b) if b.num_rows() == 0 => None,
                r => Some(r),
            };
        }
        out
    }

    /// Sorts, computes and filters the next keys' rows (about [`CHUNK_ROWS`]).
    fn chunk(&mut self) -> DfResult<RecordBatch> {
        let g = &*self.grouped;
        let config = &g.config;
        let keys = config.keys;
        let start = if self.next_group == 0 {
            0
        } else {
            g.ends[self.next_group - 1]
        };
        let mut groups = Vec::new(); // (start, end) within the chunk
        let mut end = start;
        while self.next_group < self.end_group && end - start < CHUNK_ROWS {
            let e = g.ends[self.next_group];
            groups.push((end - start, e - start));
            end = e;
            self.next_group += 1;
        }
        // each key's rows by timestamp (nulls first), then input order
        let ts_cols: Vec<_> = g
            .batches
            .iter()
            .map(|b| b.column(keys).as_primitive::<TimestampMicrosecondType>())
            .collect();
        let mut keyed: Vec<((bool, i64), u32)> = g.rows[start..end]
            .iter()
            .map(|&x| {
                let (b, r) = unpack(x);
                let ts = ts_cols[b];
                let t = if ts.is_null(r) { (false, 0) } else { (true, ts.value(r)) };
                (t, x)
            })
            .collect();
        for &(s, e) in &groups {
            let group = &mut keyed[s..e];
            group.sort_unstable();
            if let Some(conv) = &g.ties {
                // rows with the same timestamp: by the other features, as the filter orders them
                let mut i = 0;
                while i < group.len() {
                    let mut j = i + 1;
                    while j < group.len() && group[j].0 == group[i].0 {
                        j += 1;
                    }
                    if j - i > 1 {
                        sort_ties(&mut group[i..j], g, conv)?;
                    }
                    i = j;
                }
            }
        }
        let indices: Vec<(usize, usize)> = keyed.iter().map(|(_, x)| unpack(*x)).collect();
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        // a key's value is the same on all its rows: gathered once per key, then repeated
        let firsts: Vec<(usize, usize)> = groups.iter().map(|&(s, _)| indices[s]).collect();
        let repeat = arrow::array::UInt32Array::from_iter_values(
            groups
                .iter()
                .enumerate()
                .flat_map(|(i, &(s, e))| std::iter::repeat_n(i as u32, e - s)),
        );
        for c in 0..keys {
            columns.push(arrow::compute::take(g.gather(c, &firsts)?.as_ref(), &repeat, None)?);
        }
        // the timestamps are sorted already
        let ts =
            arrow::array::TimestampMicrosecondArray::from_iter(keyed.iter().map(|((valid, t), _)| valid.then_some(*t)))
                .with_data_type(self.schema.field(keys).data_type().clone());
        drop(keyed);
        columns.push(Arc::new(ts.clone()));
        let mut windows: Vec<Option<ArrayRef>> = vec![None; config.jobs.len()];
        for (j, (input, job)) in config.jobs.iter().enumerate() {
            windows[j] = Some(window_column(job, &g.gather(*input, &indices)?, &ts, &groups)?);
        }
        for s in &config.features {
            columns.push(match s {
                Source::Column(i) => g.gather(*i, &indices)?,
                Source::Window(j) => windows[*j]
                    .take()
                    .unwrap_or_else(|| unreachable!("one output per window")),
            });
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        if !config.deduplicate {
            return Ok(batch);
        }
        let keep = changed_rows(&batch, keys + 1, &groups)?;
        Ok(filter_record_batch(&batch, &keep)?)
    }
}

/// Orders rows with the same key and timestamp by the tie columns (ascending, nulls first, as
/// DataFusion sorts), then by input position.
fn sort_ties(rows: &mut [((bool, i64), u32)], g: &Grouped, conv: &RowConverter) -> DfResult<()> {
    let indices: Vec<(usize, usize)> = rows.iter().map(|(_, x)| unpack(*x)).collect();
    let cols = g
        .config
        .ties
        .iter()
        .map(|&c| g.gather(c, &indices))
        .collect::<DfResult<Vec<_>>>()?;
    let converted = conv.convert_columns(&cols)?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| converted.row(a).cmp(&converted.row(b)).then(rows[a].1.cmp(&rows[b].1)));
    let sorted: Vec<((bool, i64), u32)> = order.iter().map(|&i| rows[i]).collect();
    rows.copy_from_slice(&sorted);
    Ok(())
}

/// A group number per input row (in input order) and the number of groups.
fn group_ids(batches: &[RecordBatch], keys: usize) -> DfResult<(Vec<u32>, usize)> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut ids = Vec::with_capacity(total);
    let Some(first) = batches.first() else {
        return Ok((ids, 0));
    };
    if keys == 1 && first.column(0).data_type() == &DataType::Int64 {
        let mut map: HashMap<Option<i64>, u32> = HashMap::new();
        for b in batches {
            for v in b.column(0).as_primitive::<Int64Type>().iter() {
                let next = map.len() as u32;
                ids.push(*map.entry(v).or_insert(next));
            }
        }
        return Ok((ids, map.len()));
    }
    let conv = RowConverter::new(
        (0..keys)
            .map(|i| SortField::new(first.column(i).data_type().clone()))
            .collect(),
    )?;
    let mut map: HashMap<Vec<u8>, u32> = HashMap::new();
    for b in batches {
        let rows = conv.convert_columns(&b.columns()[..keys])?;
        for row in rows.iter() {
            let next = map.len() as u32;
            ids.push(*map.entry_ref(row.as_ref()).or_insert(next));
        }
    }
    Ok((ids, map.len()))
}

/// The rows the duplicate-row filter keeps: each key's first row, and every row whose features
/// (from column `first_feature` on) are not all the same as the previous row's (nulls equal).
fn changed_rows(batch: &RecordBatch, first_feature: usize, groups: &[(usize, usize)]) -> DfResult<BooleanArray> {
    let n = batch.num_rows();
    let mut keep = vec![false; n];
    for &(s, _) in groups {
        keep[s] = true;
    }
    if n > 1 {
        for c in &batch.columns()[first_feature..] {
            let d = distinct(&c.slice(1, n - 1), &c.slice(0, n - 1))?;
            for (i, changed) in d.values().iter().enumerate() {
                keep[i + 1] |= changed;
            }
        }
    }
    Ok(BooleanArray::new(BooleanBuffer::from(keep), None))
}

/// The window's values over the chunk's rows, sorted by key and timestamp (`groups` are the keys'
/// row ranges), cast to the job's type.
fn window_column(
    job: &WindowJob,
    input: &ArrayRef,
    ts: &arrow::array::TimestampMicrosecondArray,
    groups: &[(usize, usize)],
) -> DfResult<ArrayRef> {
    let values: Vec<Option<f64>> = match job.kind {
        // only whether each value is there
        WindowKind::Count => (0..input.len()).map(|i| input.is_valid(i).then_some(0.0)).collect(),
        WindowKind::Sliding(_) => cast(input, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .iter()
            .collect(),
    };
    let moments = matches!(job.kind, WindowKind::Sliding(k) if k.needs_moments());
    let mut out: Vec<Fold> = Vec::with_capacity(values.len());
    for &(s, e) in groups {
        let frames = frames(job.frame, ts, s, e);
        let mut current: Option<(usize, usize)> = None;
        let mut fold = Fold::default();
        for (lo, hi) in frames {
            match current {
                Some((l, h)) if l == lo && h == hi => {}
                // the frame only grew: extend the fold
                Some((l, h)) if l == lo && hi > h => fold.add_all(&values[h + 1..=hi], moments),
                // rows left it: fold it again from its first row (as Spark does)
                _ => {
                    fold = Fold::default();
                    fold.add_all(&values[lo..=hi], moments);
                }
            }
            current = Some((lo, hi));
            out.push(fold);
        }
    }
    let raw: ArrayRef = match job.kind {
        WindowKind::Count => Arc::new(Int64Array::from_iter_values(out.iter().map(|f| f.n as i64))),
        WindowKind::Sliding(k) => Arc::new(Float64Array::from_iter(out.iter().map(|f| f.value(k)))),
    };
    spark_cast_array(&raw, &job.dtype)
}

/// Each row's frame `(first, last)` (inclusive, chunk positions) in the key's rows `s..e`.
fn frames(frame: Frame, ts: &arrow::array::TimestampMicrosecondArray, s: usize, e: usize) -> Vec<(usize, usize)> {
    match frame {
        Frame::Rows { size } => (s..e).map(|i| ((i + 1).saturating_sub(size).max(s), i)).collect(),
        Frame::Range { seconds } => {
            // rows without a timestamp come first and are each other's peers
            let valid_from = (s..e).find(|&i| ts.is_valid(i)).unwrap_or(e);
            let mut out: Vec<(usize, usize)> = (s..valid_from).map(|_| (s, valid_from - 1)).collect();
            let secs = |i: usize| ts.value(i).div_euclid(1_000_000);
            let (mut lo, mut hi) = (valid_from, valid_from);
            for i in valid_from..e {
                let t = secs(i);
                hi = hi.max(i);
                while hi + 1 < e && secs(hi + 1) == t {
                    hi += 1;
                }
                while secs(lo) < t - seconds {
                    lo += 1;
                }
                out.push((lo, hi));
            }
            out
        }
    }
}

/// Whether the duplicate-row filter orders rows with equal keys and timestamps by a feature of
/// this type (both with DataFusion's window functions and in [`crate::windows::row_windows`]).
pub(crate) fn orders_ties(t: &DataType) -> bool {
    t.is_primitive() || matches!(t, DataType::Utf8 | DataType::Boolean)
}
