//! The batch runner: readers → source query → feature set → writers.
//!
//! Over 600 lines: the built pipeline: opening readers, planning once, the batch run and explain share its private plan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch};
use arrow::compute::{filter_record_batch, is_not_null};
use arrow::datatypes::SchemaRef;
use borboleta_core::naming::{HISTORICAL_DEBUG_PREFIX, ONLINE_DEBUG_PREFIX};
use borboleta_core::{FeatureSetPipelineSpec, IncrementalStrategySpec, SpecIssues, key_columns};
use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::logical_expr::ExprSchemable;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use tracing::{info, warn};

use crate::connector::{Reader, StreamReader, WriteContext, WriteMetrics, Writer};
use crate::error::{Error, Result};
use crate::memory::MemoryTable;
use crate::plan::cast::NullCounter;
use crate::plan::feature_set::{FeatureSetOptions, date_range_predicate, plan_feature_set, to_timestamp_expr};
use crate::plan::util::{clean_df_error, rows_read};
use crate::sink::FeatureSink;

/// Options of one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// First date (inclusive, UTC) to read and compute.
    pub start_date: Option<NaiveDate>,
    /// Last date (inclusive, UTC).
    pub end_date: Option<NaiveDate>,
    /// Called with the number of feature rows computed so far.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("start_date", &self.start_date)
            .field("end_date", &self.end_date)
            .finish()
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Rows read by the readers.
    pub rows_read: u64,
    /// Feature rows computed (after dedup and date filters).
    pub rows_computed: u64,
    /// Rows dropped because a key was null.
    pub rows_null_key: u64,
    /// Values that became null because a cast failed.
    pub values_nulled_by_casts: u64,
    /// Per writer: name and metrics.
    pub writers: Vec<(String, WriteMetrics)>,
    /// Wall time per stage.
    pub stages: Vec<(String, Duration)>,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rows read: {}", self.rows_read)?;
        writeln!(f, "feature rows: {}", self.rows_computed)?;
        if self.rows_null_key > 0 {
            writeln!(f, "rows with a null key (not written): {}", self.rows_null_key)?;
        }
        writeln!(f, "values nulled by casts: {}", self.values_nulled_by_casts)?;
        if self.rows_computed == 0 {
            writeln!(f, "no feature rows: nothing was written")?;
        }
        for (name, m) in &self.writers {
            write!(f, "{name}: {} rows ({})", m.rows_written, m.detail)?;
            if m.rejected.null_timestamp + m.rejected.future_timestamp > 0 {
                write!(
                    f,
                    "; not written: {} with a null timestamp, {} in the future",
                    m.rejected.null_timestamp, m.rejected.future_timestamp
                )?;
            }
            writeln!(f)?;
        }
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|(s, d)| format!("{s} {:.3}s", d.as_secs_f64()))
            .collect();
        write!(f, "time: {}", stages.join(", "))
    }
}

/// A FeatureSetPipeline ready to run: readers opened, plan checked, writers prepared.
pub struct FeatureSetPipeline {
    spec: Arc<FeatureSetPipelineSpec>,
    ctx: SessionContext,
    /// The readers, in the spec's order, each with the table it opened.
    readers: Vec<(Arc<dyn Reader>, Arc<dyn TableProvider>)>,
    sink: FeatureSink,
    stream: Option<StreamParts>,
}

impl std::fmt::Debug for FeatureSetPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureSetPipeline")
            .field("feature_set", &self.spec.feature_set.name)
            .field("writers", &self.sink.writers())
            .finish_non_exhaustive()
    }
}

impl FeatureSetPipeline {
    /// Opens the readers, plans the query and the feature set (every problem is reported at
    /// once, before anything is written), and prepares the writers.
    pub async fn try_new(
        spec: FeatureSetPipelineSpec,
        readers: Vec<Arc<dyn Reader>>,
        writers: Vec<Arc<dyn Writer>>,
    ) -> Result<Self> {
        Self::try_new_in(crate::session::new_session(), spec, readers, writers).await
    }

    /// [`Self::try_new`] in a given session (one from [`crate::session::new_session`], with the
    /// caller's object stores or functions registered).
    pub async fn try_new_in(
        ctx: SessionContext,
        spec: FeatureSetPipelineSpec,
        readers: Vec<Arc<dyn Reader>>,
        writers: Vec<Arc<dyn Writer>>,
    ) -> Result<Self> {
        let mut issues = borboleta_core::validate::validate(&spec);
        let readers = bind_readers(&spec, readers)?;
        let mut opened_readers = Vec::new();
        let streaming = spec.is_streaming();
        let mut parts = StreamParts {
            streams: Vec::new(),
            statics: Vec::new(),
        };
        for (i, reader) in readers.iter().enumerate() {
            let opened = match reader.as_stream() {
                Some(s) => s.open(&ctx).await.map(|schema| {
                    let table = Arc::new(MemoryTable::new(schema));
                    parts.streams.push((s, Arc::clone(&table)));
                    table as Arc<dyn TableProvider>
                }),
                // On a stream, static tables are loaded once (and refreshed), not re-read per epoch.
                None if streaming => reader.table_provider(&ctx).await.map(|raw| {
                    let table = Arc::new(MemoryTable::new(raw.schema()));
                    parts.statics.push((raw, Arc::clone(&table)));
                    table as Arc<dyn TableProvider>
                }),
                None => reader.table_provider(&ctx).await,
            };
            match opened {
                Ok(p) => opened_readers.push((Arc::clone(reader), p)),
                Err(Error::Spec(mut s)) => {
                    for issue in &mut s.0 {
                        if !issue.path.starts_with("readers") {
                            issue.path = format!("readers[{i}].{}", issue.path);
                        }
                    }
                    issues.0.extend(s.0);
                }
                // an unreachable server is not a spec problem (exit 1, a retry may help)
                Err(e) => return Err(e),
            }
        }
        if opened_readers.len() < readers.len() {
            return Err(Error::Spec(issues));
        }
        let schema_probe = Self {
            spec: Arc::new(spec),
            ctx,
            readers: opened_readers,
            sink: FeatureSink::new(
                writers,
                WriteContext {
                    feature_set: Arc::new(borboleta_core::FeatureSetSpec::new("", "")),
                    schema: Arc::new(arrow::datatypes::Schema::empty()),
                    keys: vec![],
                    streaming,
                },
            ),
            stream: streaming.then_some(parts),
        };
        let probe_opts = FeatureSetOptions {
            streaming,
            probe: true,
            ..Default::default()
        };
        let df = match schema_probe.plan(&probe_opts).await {
            Ok((df, _)) => df,
            Err(Error::Spec(s)) => {
                issues.0.extend(s.0);
                return Err(Error::Spec(issues));
            }
            Err(e) => return Err(e),
        };
        issues.into_result().map_err(Error::from)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut p = schema_probe;
        let wctx = WriteContext {
            feature_set: Arc::new(p.spec.feature_set.clone()),
            schema,
            keys: key_columns(&p.spec.feature_set),
            streaming,
        };
        p.sink = FeatureSink::new(p.sink.writers().to_vec(), wctx);
        for w in p.sink.writers() {
            w.prepare(&p.ctx, p.sink.write_context())?;
        }
        Ok(p)
    }

    /// Whether a reader streams: run it with [`Self::start_stream`].
    pub fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// The streaming readers.
    pub fn stream_readers(&self) -> Vec<Arc<dyn StreamReader>> {
        self.stream
            .iter()
            .flat_map(|p| p.streams.iter().map(|(r, _)| Arc::clone(r)))
            .collect()
    }

    pub(crate) fn stream_parts(&self) -> Option<StreamParts> {
        self.stream.clone()
    }

    /// The streaming plan (planned once, run every epoch).
    pub(crate) async fn plan_stream(&self) -> Result<DataFrame> {
        let opts = FeatureSetOptions {
            streaming: true,
            ..Default::default()
        };
        Ok(self.plan(&opts).await?.0)
    }

    /// What identifies this pipeline in a checkpoint: its readers (a change needs a reset) and
    /// its whole spec.
    pub fn fingerprint(&self) -> crate::stream::checkpoint::Fingerprint {
        use borboleta_core::time::stable_hash;
        let identity: Vec<serde_json::Value> = self.readers.iter().map(|(r, _)| r.identity()).collect();
        let spec_json = serde_json::to_string(self.spec.as_ref()).unwrap_or_default();
        crate::stream::checkpoint::Fingerprint {
            readers: format!(
                "{:016x}",
                stable_hash(serde_json::Value::from(identity).to_string().as_bytes())
            ),
            spec: format!("{:016x}", stable_hash(spec_json.as_bytes())),
            reader_ids: self.readers.iter().map(|(r, _)| r.id().to_string()).collect(),
        }
    }

    /// The sink driver over the writers.
    pub fn sink(&self) -> &FeatureSink {
        &self.sink
    }

    /// The readers, in the spec's order.
    pub fn readers(&self) -> impl Iterator<Item = &Arc<dyn Reader>> {
        self.readers.iter().map(|(r, _)| r)
    }

    /// The writers.
    pub fn writers(&self) -> &[Arc<dyn Writer>] {
        self.sink.writers()
    }

    /// What the writers know about the rows.
    pub fn write_context(&self) -> &WriteContext {
        self.sink.write_context()
    }

    /// The session: debug tables are registered here and can be queried with [`Self::sql`].
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The spec.
    pub fn spec(&self) -> &FeatureSetPipelineSpec {
        &self.spec
    }

    /// Schema of the feature rows.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.sink.write_context().schema)
    }

    /// Runs a SQL query in the pipeline's session (debug tables included).
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        self.ctx
            .sql(query)
            .await
            .map_err(|e| Error::spec("--sql", clean_df_error(&e)))
    }

    /// Names of the debug tables of this pipeline.
    pub fn debug_tables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.starts_with(ONLINE_DEBUG_PREFIX) || t.starts_with(HISTORICAL_DEBUG_PREFIX))
            .collect();
        names.sort();
        names
    }

    /// Registers the readers' views for these dates and plans the feature set.
    async fn plan(&self, opts: &FeatureSetOptions) -> Result<(DataFrame, NullCounter)> {
        self.plan_unlocated(opts).await.map_err(|e| self.locate(e))
    }

    /// Adds the spec-file line to each problem of a spec error.
    fn locate(&self, mut e: Error) -> Error {
        if let Error::Spec(issues) = &mut e {
            self.spec.locate(issues);
        }
        e
    }

    async fn plan_unlocated(&self, opts: &FeatureSetOptions) -> Result<(DataFrame, NullCounter)> {
        let counter = NullCounter::default();
        let mut issues = SpecIssues::default();
        for (i, reader) in self.spec.readers.iter().enumerate() {
            // bound by id when the pipeline was built
            let Some((_, provider)) = self.readers.iter().find(|(r, _)| r.id() == reader.id()) else {
                return Err(Error::Internal(format!("reader `{}` has no table", reader.id())));
            };
            let path = format!("readers[{i}]");
            let mut df = self.ctx.read_table(Arc::clone(provider))?;
            use crate::hooks::{HookPoint, run as run_hooks};
            df = run_hooks(
                &self.ctx,
                df,
                &reader.hooks().pre,
                &format!("{path}.hooks.pre"),
                HookPoint::ReaderPre(reader.id().to_string()),
            )
            .await?;
            if !reader.columns().is_empty() {
                let mut exprs = Vec::new();
                for (j, c) in reader.columns().iter().enumerate() {
                    match df
                        .parse_sql_expr(&c.expression)
                        .and_then(|e| e.get_type(df.schema()).map(|_| e))
                    {
                        Ok(e) => exprs.push(e.alias(&c.alias)),
                        Err(e) => issues.push(format!("{path}.columns[{j}].expression"), clean_df_error(&e)),
                    }
                }
                if exprs.len() == reader.columns().len() {
                    df = df.select(exprs)?;
                }
            }
            if !reader.pre_processing().is_empty() {
                df = crate::plan::preprocess::apply(
                    &self.ctx,
                    df,
                    reader.pre_processing(),
                    &path,
                    &counter,
                    &mut issues,
                )
                .await?;
            }
            if let Some(inc) = reader.incremental_strategy()
                && (opts.start_date.is_some() || opts.end_date.is_some())
            {
                // an aggregated feature set's windows reach back before the first output day
                // (Butterfree's `define_start_date`)
                let back = crate::plan::aggregated::read_back_days(&self.spec.feature_set);
                let read = FeatureSetOptions {
                    start_date: opts.start_date.map(|d| d - chrono::Duration::days(back)),
                    ..opts.clone()
                };
                match incremental_filter(&df, inc, &read, &counter) {
                    Ok(d) => df = d,
                    Err(m) => issues.push(format!("{path}.incremental_strategy"), m),
                }
            }
            df = run_hooks(
                &self.ctx,
                df,
                &reader.hooks().post,
                &format!("{path}.hooks.post"),
                HookPoint::ReaderPost(reader.id().to_string()),
            )
            .await?;
            self.ctx.deregister_table(reader.id())?;
            self.ctx.register_table(reader.id(), df.into_view())?;
        }
        issues.into_result().map_err(Error::from)?;
        let source = self
            .ctx
            .sql(&self.spec.source.query)
            .await
            .map_err(|e| Error::spec("source.query", clean_df_error(&e)))?;
        let source = DataFrame::new(
            self.ctx.state(),
            crate::plan::spark_sql::spark_casts(source.logical_plan().clone(), &counter)?,
        );
        use crate::hooks::{HookPoint, run as run_hooks};
        let source = run_hooks(
            &self.ctx,
            source,
            &self.spec.source.hooks.post,
            "source.hooks.post",
            HookPoint::SourcePost,
        )
        .await?;
        if opts.streaming {
            let stream_tables: Vec<*const ()> = self
                .stream
                .iter()
                .flat_map(|p| p.streams.iter().map(|(_, t)| Arc::as_ptr(t) as *const ()))
                .collect();
            let problems = stateful_on_stream(source.logical_plan(), &stream_tables);
            if !problems.is_empty() {
                return Err(Error::spec(
                    "source.query",
                    format!(
                        "on streaming input the query may only project, filter, unnest and join with static \
                         tables; it has {}, which on a stream would only see one micro-batch at a time \
                         (stateful streaming SQL is not supported yet)",
                        problems.join(", ")
                    ),
                ));
            }
        }
        let fs = &self.spec.feature_set;
        let source = run_hooks(
            &self.ctx,
            source,
            &fs.hooks.pre,
            "feature_set.hooks.pre",
            HookPoint::FeatureSetPre,
        )
        .await?;
        let df = if fs.is_aggregated() {
            crate::plan::aggregated::plan_aggregated(&self.ctx, source, fs, opts, &counter).await?
        } else {
            plan_feature_set(&self.ctx, source, fs, opts, &counter)?
        };
        let df = run_hooks(
            &self.ctx,
            df,
            &fs.hooks.post,
            "feature_set.hooks.post",
            HookPoint::FeatureSetPost,
        )
        .await?;
        let sink = self
            .spec
            .sink
            .as_ref()
            .map(|s| s.hooks.pre.as_slice())
            .unwrap_or_default();
        let df = run_hooks(&self.ctx, df, sink, "sink.hooks.pre", HookPoint::SinkPre).await?;
        Ok((df, counter))
    }

    /// The optimized logical plan as indented text, and the physical plan too when asked (no
    /// secrets: plans hold no credentials; the physical plan names files and partition counts).
    pub async fn explain(&self, opts: &RunOptions, physical: bool) -> Result<String> {
        let (df, _) = self
            .plan(&FeatureSetOptions {
                start_date: opts.start_date,
                end_date: opts.end_date,
                streaming: self.is_streaming(),
                probe: false,
            })
            .await?;
        let logical = df.clone().into_optimized_plan()?;
        let mut out = format!("logical plan:\n{}\n", logical.display_indent());
        // the operators that run their own input plan: show it too
        for (name, input) in operator_inputs(&logical) {
            let input = self.ctx.state().optimize(&input)?;
            out.push_str(&format!("input of {name}:\n{}\n", input.display_indent()));
        }
        if physical {
            let plan = df.create_physical_plan().await?;
            out.push_str(&format!(
                "physical plan:\n{}",
                datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
            ));
        }
        Ok(out)
    }

    /// Butterfree's `run_for_date`: `run` with start and end on the same date.
    pub async fn run_for_date(&self, date: NaiveDate) -> Result<RunSummary> {
        self.run(RunOptions {
            start_date: Some(date),
            end_date: Some(date),
            progress: None,
        })
        .await
    }

    /// Runs the pipeline once over the dates of `opts` (inclusive, UTC).
    pub async fn run(&self, opts: RunOptions) -> Result<RunSummary> {
        if self.is_streaming() {
            return Err(Error::spec(
                "readers",
                "this pipeline streams (a reader has `stream: true`): start it with `start_stream`",
            ));
        }
        if let (Some(s), Some(e)) = (opts.start_date, opts.end_date)
            && s > e
        {
            return Err(Error::spec(
                "--start-date",
                format!("start date {s} is after end date {e}"),
            ));
        }
        let mut summary = RunSummary::default();
        let t0 = Instant::now();
        let (df, counter) = self
            .plan(&FeatureSetOptions {
                start_date: opts.start_date,
                end_date: opts.end_date,
                streaming: false,
                probe: false,
            })
            .await?;
        let plan = df.create_physical_plan().await?;
        summary.stages.push(("plan".into(), t0.elapsed()));

        let t1 = Instant::now();
        let mut stream = execute_stream(Arc::clone(&plan), self.ctx.task_ctx())?;
        let wctx = self.sink.write_context();
        let key_idx: Vec<usize> = wctx
            .keys
            .iter()
            .map(|k| wctx.schema.index_of(k))
            .collect::<std::result::Result<_, _>>()?;
        let mut sink = self.sink.run(None);
        // Window operators emit many small batches (one per run of complete partitions): the
        // writers get them coalesced to ~8k rows (a small batch costs per column in every
        // writer, and a debug table would keep each one's buffers).
        let mut coalescer = arrow::compute::BatchCoalescer::new(self.schema(), 8192);
        let (mut batches_in, mut batches_out) = (0u64, 0u64);
        let mut input_done = false;
        loop {
            let batch = match coalescer.next_completed_batch() {
                Some(b) => b,
                None if input_done => break,
                None => match stream.next().await {
                    Some(batch) => {
                        let batch = drop_null_keys(batch?, &key_idx, &mut summary.rows_null_key)?;
                        batches_in += 1;
                        if batch.num_rows() > 0 {
                            // Butterfree's input schema is "any": re-attach ours (nullability may differ).
                            coalescer.push_batch(RecordBatch::try_new(self.schema(), batch.columns().to_vec())?)?;
                        }
                        continue;
                    }
                    None => {
                        coalescer.finish_buffered_batch()?;
                        input_done = true;
                        continue;
                    }
                },
            };
            batches_out += 1;
            summary.rows_computed += batch.num_rows() as u64;
            sink.write(batch).await?;
            if let Some(p) = &opts.progress {
                p(summary.rows_computed);
            }
        }
        info!(
            batches_in,
            batches_out,
            rows = summary.rows_computed,
            "feature rows computed"
        );
        summary.stages.push(("compute".into(), t1.elapsed()));
        summary.rows_read = rows_read(&plan);
        summary.values_nulled_by_casts = counter.get();

        let t2 = Instant::now();
        match sink.commit().await? {
            Some(written) => summary.writers = written,
            None => warn!("the run produced no feature rows: nothing was written"),
        }
        summary.stages.push(("write".into(), t2.elapsed()));
        if summary.rows_null_key > 0 {
            warn!(rows = summary.rows_null_key, "rows with a null key were not written");
        }
        Ok(summary)
    }
}

/// What in `plan` would keep state across micro-batches of the streaming tables `streams`
/// (identified by their address: views are inlined, so names are gone).
fn stateful_on_stream(plan: &datafusion::logical_expr::LogicalPlan, streams: &[*const ()]) -> Vec<String> {
    use datafusion::logical_expr::LogicalPlan as P;
    fn reads_stream(plan: &P, streams: &[*const ()]) -> bool {
        match plan {
            P::TableScan(t) => datafusion::datasource::source_as_provider(&t.source)
                .is_ok_and(|p| streams.contains(&(Arc::as_ptr(&p) as *const ()))),
            _ => plan.inputs().iter().any(|i| reads_stream(i, streams)),
        }
    }
    let mut found = Vec::new();
    let mut visit = |node: &P| {
        let streaming_inputs = node.inputs().iter().filter(|i| reads_stream(i, streams)).count();
        if streaming_inputs == 0 {
            return;
        }
        let all_stream = streaming_inputs == node.inputs().len();
        let what = match node {
            P::Aggregate(_) => Some("a GROUP BY or an aggregate"),
            P::Distinct(_) => Some("DISTINCT"),
            P::Window(_) => Some("a window function"),
            P::Limit(_) => Some("a LIMIT"),
            P::Join(_) if streaming_inputs > 1 => Some("a join of two streams"),
            P::Join(j) => {
                use datafusion::common::JoinType as J;
                let left_streams = reads_stream(&j.left, streams);
                let static_kept = match j.join_type {
                    J::Full => true,
                    J::Left | J::LeftAnti | J::LeftSemi | J::LeftMark => !left_streams,
                    J::Right | J::RightAnti | J::RightSemi | J::RightMark => left_streams,
                    J::Inner => false,
                };
                static_kept.then_some(
                    "an outer join that keeps the static table's unmatched rows (emitted again every micro-batch)",
                )
            }
            P::Union(_) if !all_stream => {
                Some("a UNION of a stream with a static table (emitted again every micro-batch)")
            }
            _ => None,
        };
        if let Some(w) = what
            && !found.iter().any(|f: &String| f == w)
        {
            found.push(w.to_string());
        }
    };
    let _ = plan.apply_with_subqueries(|node| {
        visit(node);
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

fn drop_null_keys(batch: RecordBatch, key_idx: &[usize], dropped: &mut u64) -> Result<RecordBatch> {
    if key_idx.iter().all(|i| batch.column(*i).null_count() == 0) {
        return Ok(batch);
    }
    let mut mask = is_not_null(batch.column(key_idx[0]))?;
    for i in &key_idx[1..] {
        mask = arrow::compute::and(&mask, &is_not_null(batch.column(*i))?)?;
    }
    let out = filter_record_batch(&batch, &mask)?;
    *dropped += (batch.num_rows() - out.num_rows()) as u64;
    Ok(out)
}

/// The input plans of the scans of [`crate::windows::row_windows`]' and [`crate::plan::aggregated`]'s operators
/// in `plan`, with the scan's name.
fn operator_inputs(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Vec<(String, datafusion::logical_expr::LogicalPlan)> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut out = Vec::new();
    let _ = plan.apply(|node| {
        if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            && let Some(input) = crate::windows::row_windows::input_plan(provider.as_ref())
                .or_else(|| crate::windows::rolling::input_plan(provider.as_ref()))
        {
            let name = scan.table_name.to_string();
            let name = name.split('(').next().unwrap_or_default().to_string();
            out.push((name, input.clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// Butterfree's incremental strategy: keep rows whose date (UTC) is within the run's dates.
fn incremental_filter(
    df: &DataFrame,
    inc: &IncrementalStrategySpec,
    opts: &FeatureSetOptions,
    counter: &NullCounter,
) -> std::result::Result<DataFrame, String> {
    use arrow::datatypes::{DataType, TimeUnit};
    let target = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let parse = |sql: &str| df.parse_sql_expr(sql).map_err(|e| clean_df_error(&e));
    let (expr, from_ms, mask) = if let Some(c) = &inc.column {
        (parse(c)?, false, None)
    } else if let Some(c) = &inc.from_milliseconds {
        (parse(c)?, true, None)
    } else if let Some(c) = &inc.from_string {
        (parse(c)?, false, inc.mask.as_deref())
    } else {
        (parse("make_date(year, month, day)")?, false, None)
    };
    let t = expr.get_type(df.schema()).map_err(|e| clean_df_error(&e))?;
    let ts = to_timestamp_expr(expr, &t, from_ms, mask, &target, counter)?;
    let pred = date_range_predicate(ts, Some("UTC".into()), opts);
    match pred {
        Some(p) => df.clone().filter(p).map_err(|e| clean_df_error(&e)),
        None => Ok(df.clone()),
    }
}

/// The parts of the pipeline the loop uses.
#[derive(Clone)]
pub(crate) struct StreamParts {
    /// Per streaming reader: the reader and the table its epoch rows are published to.
    pub streams: Vec<(Arc<dyn StreamReader>, Arc<MemoryTable>)>,
    /// The static readers' raw tables and the in-memory copies the plan reads.
    pub statics: Vec<(Arc<dyn datafusion::catalog::TableProvider>, Arc<MemoryTable>)>,
}

/// `readers` in the order of the spec's readers, each matched by id: every spec reader needs
/// exactly one reader, and every reader a spec reader.
fn bind_readers(spec: &FeatureSetPipelineSpec, mut readers: Vec<Arc<dyn Reader>>) -> Result<Vec<Arc<dyn Reader>>> {
    let mut bound = Vec::with_capacity(readers.len());
    for r in &spec.readers {
        match readers.iter().position(|x| x.id() == r.id()) {
            Some(i) => bound.push(readers.remove(i)),
            None => return Err(Error::Internal(format!("no reader was built for `{}`", r.id()))),
        }
    }
    if let Some(extra) = readers.first() {
        return Err(Error::Internal(format!("reader `{}` is not in the spec", extra.id())));
    }
    Ok(bound)
}
