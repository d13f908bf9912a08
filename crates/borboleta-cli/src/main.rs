//! `borboleta`: run, validate and explain feature-set pipelines; read the online store.
//!
//! Over 600 lines: the command line is one clap definition and one dispatch per subcommand; the output helpers live in out.rs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use borboleta::{Error, FeatureSetPipelineSpec, PipelineOptions, RunOptions};
use clap::{Parser, Subcommand, ValueEnum};

#[macro_use]
mod out;

/// mimalloc instead of glibc's malloc: glibc keeps one arena per thread that allocated, and a
/// long run's memory then grows with its length (the 50M-row aggregated benchmark: 421 MiB with
/// glibc, 240-285 MiB with one or two arenas; docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Butterfree's feature-set pipelines, in Rust.
#[derive(Parser, Debug)]
#[command(name = "borboleta", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline once over a date range.
    Run(RunArgs),
    /// Check a spec (and its readers' schemas and the plan) without running it, with the
    /// arguments `run` would get: it fails where `run` would refuse to start.
    Validate {
        /// The pipeline spec (YAML).
        spec: PathBuf,
        #[command(flatten)]
        dates: RunDates,
        /// Streaming: the run will have no checkpoint (`run --no-checkpoint`).
        #[arg(long)]
        no_checkpoint: bool,
    },
    /// Print the pipeline's metadata (Butterfree's Metadata): feature set, source, sink, and
    /// every output column with its type and description.
    Describe {
        /// The pipeline spec (YAML).
        spec: PathBuf,
        /// `json` (Butterfree's to_json) or `markdown` (a page for a catalog).
        #[arg(long, value_enum, default_value_t = DescribeFormat::Json)]
        format: DescribeFormat,
    },
    /// Print the pipeline: readers, writers, and the query plan.
    Explain {
        /// The pipeline spec (YAML).
        spec: PathBuf,
        /// First date of the plan's date filter (YYYY-MM-DD).
        #[arg(long)]
        start_date: Option<String>,
        /// Last date of the plan's date filter (YYYY-MM-DD).
        #[arg(long)]
        end_date: Option<String>,
        /// Also print the physical plan (files, partitions, operators).
        #[arg(long)]
        physical: bool,
    },
    /// Bring the Cassandra online tables and the historical tables up to date with specs.
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Read the online store.
    Online {
        #[command(subcommand)]
        command: OnlineCommand,
    },
    /// Inspect or rewind a streaming pipeline's checkpoint.
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CheckpointCommand {
    /// The committed epochs, the epoch to replay, and the readers' positions.
    Show {
        /// The pipeline spec (YAML).
        spec: PathBuf,
    },
    /// Rewind the checkpoint (the pipeline must be stopped).
    Reset {
        /// The pipeline spec (YAML).
        spec: PathBuf,
        /// Forget every position: the next run reads everything again.
        #[arg(long, conflicts_with = "to_time", required_unless_present = "to_time")]
        to_earliest: bool,
        /// Count as processed only the data older than this instant (RFC 3339, or a UTC date).
        #[arg(long)]
        to_time: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum MigrateCommand {
    /// Create missing keyspaces (with `create_keyspace: true`), tables and columns; record new
    /// historical columns. Retyped columns are refused. Every problem is listed before anything
    /// is applied.
    Apply {
        /// A spec, or a folder of specs (every .yaml/.yml under it).
        path: PathBuf,
        /// Print the statements; apply nothing.
        #[arg(long)]
        dry_run: bool,
        /// A retyped column or other keys: drop the Cassandra table and create it anew, empty
        /// (its rows are lost; backfill it with a batch run).
        #[arg(long)]
        allow_destructive: bool,
        /// Also write each statement and its outcome as JSON lines to this file (default:
        /// `migration-logs/<UTC time>.jsonl`).
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        write_logs: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum OnlineCommand {
    /// Delete keys from the online store, with a timestamp of now: the delete wins over every
    /// event up to now (an older event replayed later does not bring the row back).
    Delete {
        /// The pipeline spec (YAML) whose online store to change.
        spec: PathBuf,
        /// A key as `column=value` (comma-separated for composite keys); repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// The current features of one or more keys.
    Get {
        /// The pipeline spec (YAML) whose online store to read.
        spec: PathBuf,
        /// A key as `column=value` (comma-separated for composite keys); repeat for several.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// The dates of a run (`run` and `validate`).
#[derive(clap::Args, Debug, Default)]
struct RunDates {
    /// First date to compute (YYYY-MM-DD, inclusive, UTC).
    #[arg(long)]
    start_date: Option<String>,
    /// Last date to compute (YYYY-MM-DD, inclusive, UTC).
    #[arg(long)]
    end_date: Option<String>,
    /// Butterfree's run_for_date: start and end on this date.
    #[arg(long, conflicts_with_all = ["start_date", "end_date"])]
    date: Option<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The pipeline spec (YAML).
    spec: PathBuf,
    #[command(flatten)]
    dates: RunDates,
    /// Run every writer in debug mode (in-memory tables) and print their tables.
    #[arg(long)]
    debug: bool,
    /// A SQL query over the debug tables, printed after the run; repeat for several.
    #[arg(long = "sql")]
    sql: Vec<String>,
    /// Output format of printed tables.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Cap of the query memory pool in MiB: sorts and aggregations spill to the temporary folder
    /// beyond it (default: no cap; also BORBOLETA_MEMORY_LIMIT_MB).
    #[arg(long, env = "BORBOLETA_MEMORY_LIMIT_MB")]
    memory_limit_mb: Option<usize>,
    /// Streaming: run without a checkpoint (a restart reads everything again).
    #[arg(long)]
    no_checkpoint: bool,
    /// Streaming: process the data that is there, then stop.
    #[arg(long)]
    available_now: bool,
    /// Streaming: seconds between two refreshes of the debug tables or `--sql` queries.
    #[arg(long, default_value_t = 1.0)]
    sql_interval: f64,
    /// Streaming: serve the stream's metrics in Prometheus format at http://<addr>/metrics.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

/// Formats of `describe`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum DescribeFormat {
    /// Butterfree's `Metadata.to_json()`.
    Json,
    /// Butterfree's `Metadata.to_markdown()`.
    Markdown,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Output {
    Table,
    Jsonl,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BORBOLETA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // the reader of stdout went away (`| head`): the command ends quietly, as Unix tools do
        Err(e) if e.downcast_ref::<out::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            let code = match e.downcast_ref::<Error>() {
                Some(err) if err.is_spec_error() => 2,
                _ if e.downcast_ref::<borboleta::core::Error>().is_some() => 2,
                _ => 1,
            };
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

fn load(spec: &PathBuf) -> anyhow::Result<FeatureSetPipelineSpec> {
    FeatureSetPipelineSpec::parse_yaml_file(spec).map_err(|e| Error::from(e).into())
}

fn date(arg: &str, s: &Option<String>) -> anyhow::Result<Option<chrono::NaiveDate>> {
    match s {
        None => Ok(None),
        Some(s) => borboleta::core::time::parse_date(s)
            .map(Some)
            .map_err(|m| Error::spec(arg, m).into()),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Validate {
            spec,
            dates,
            no_checkpoint,
        } => {
            let s = load(&spec)?;
            let checks = RunChecks {
                dates: &dates,
                no_checkpoint,
                debug: false,
            };
            let (p, ..) = build_for_run(s, &checks, &PipelineOptions::default()).await?;
            let cols: Vec<String> = p
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{}:{}", f.name(), f.data_type()))
                .collect();
            outln!("ok: {} ({})", spec.display(), p.spec().feature_set.name)?;
            outln!("columns: {}", cols.join(", "))?;
            Ok(())
        }
        Command::Explain {
            spec,
            start_date,
            end_date,
            physical,
        } => {
            let s = load(&spec)?;
            let opts = RunOptions {
                start_date: date("--start-date", &start_date)?,
                end_date: date("--end-date", &end_date)?,
                progress: None,
            };
            let mut out = String::new();
            out.push_str(&format!(
                "feature set: {} (entity {})\n",
                s.feature_set.name, s.feature_set.entity
            ));
            let p = borboleta::build_pipeline(s, &PipelineOptions::default()).await?;
            for r in p.readers() {
                out.push_str(&format!("reader {}: {}\n", r.id(), r.describe().detail));
            }
            for w in p.writers() {
                out.push_str(&format!("writer: {}\n", w.describe().detail));
            }
            out.push_str(&format!(
                "columns: {}\n",
                borboleta::core::output_columns(&p.spec().feature_set).join(", ")
            ));
            out.push_str(&p.explain(&opts, physical).await?);
            outln!("{}", redact(&out))?;
            Ok(())
        }
        Command::Describe { spec, format } => {
            let s = load(&spec)?;
            let p = borboleta::build_pipeline(s, &PipelineOptions::default()).await?;
            match format {
                DescribeFormat::Json => {
                    let doc = vec![borboleta::describe::describe(&p)];
                    outln!("{}", serde_json::to_string_pretty(&doc)?)?;
                }
                DescribeFormat::Markdown => out!("{}", borboleta::describe::describe_markdown(&p))?,
            }
            Ok(())
        }
        Command::Checkpoint { command } => checkpoint(command).await,
        Command::Migrate {
            command:
                MigrateCommand::Apply {
                    path,
                    dry_run,
                    allow_destructive,
                    write_logs,
                },
        } => migrate(&path, dry_run, allow_destructive, write_logs).await,
        Command::Online {
            command: OnlineCommand::Delete { spec, keys },
        } => {
            let s = load(&spec)?;
            let n = borboleta::online_delete(&s, &parse_keys(&keys)?).await?;
            outln!("deleted {n} key(s)")?;
            Ok(())
        }
        Command::Online {
            command: OnlineCommand::Get { spec, keys, output },
        } => {
            let s = load(&spec)?;
            let parsed = parse_keys(&keys)?;
            let batch = borboleta::online_get(&s, &parsed).await?;
            print_batches(&[batch], output)?;
            Ok(())
        }
    }
}

/// `borboleta migrate apply`.
async fn migrate(
    path: &Path,
    dry_run: bool,
    allow_destructive: bool,
    write_logs: Option<PathBuf>,
) -> anyhow::Result<()> {
    use borboleta::migrate::{self, MigrateOptions};
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for file in migrate::spec_files(path)? {
        match FeatureSetPipelineSpec::parse_yaml_file(&file) {
            Ok(s) => specs.push((file, s)),
            Err(e) => problems.push(borboleta::core::SpecIssue::new(
                file.display().to_string(),
                e.to_string(),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Spec(borboleta::core::SpecIssues(problems)).into());
    }
    let opts = MigrateOptions {
        dry_run,
        allow_destructive,
    };
    let plan = migrate::plan(&specs, opts).await?;
    let mut log = Vec::new();
    let now = chrono::Utc::now();
    let entry = |step: &migrate::Step, statement: String, status: &str| {
        serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "spec": step.spec.display().to_string(),
            "feature_set": step.feature_set,
            "target": step.target,
            "statement": statement,
            "status": status,
        })
    };
    // A closed stdout does not stop a migration half-way: the statements are still applied and
    // logged, and the command ends quietly after that.
    let mut printed: anyhow::Result<()> = Ok(());
    let mut say = |args: std::fmt::Arguments<'_>| {
        if printed.is_ok() {
            printed = out::print(args);
        }
    };
    for step in &plan.steps {
        say(format_args!(
            "-- {}: feature set {} -> {}\n",
            step.spec.display(),
            step.feature_set,
            step.target
        ));
        if step.notes.is_empty() && step.actions.is_empty() {
            say(format_args!("--   up to date\n"));
        }
        for n in &step.notes {
            say(format_args!("--   {n}\n"));
        }
        if dry_run {
            for a in &step.actions {
                say(format_args!("{}\n", a.text()));
                log.push(entry(step, a.text(), "dry-run"));
            }
        }
    }
    if dry_run {
        let n: usize = plan.steps.iter().map(|s| s.actions.len()).sum();
        say(format_args!("dry run: {n} statement(s), nothing applied\n"));
    } else {
        let result = migrate::apply(&plan, |step, a| {
            say(format_args!("{}\n", a.text()));
            log.push(entry(step, a.text(), "applied"));
        })
        .await;
        match result {
            Ok(n) => say(format_args!("applied {n} statement(s)\n")),
            Err(e) => {
                write_migration_log(write_logs.as_deref(), now, &log)?;
                return Err(e.into());
            }
        }
    }
    write_migration_log(write_logs.as_deref(), now, &log)?;
    printed
}

/// Writes the migration log (`--write-logs`), if asked.
fn write_migration_log(
    path: Option<&Path>,
    now: chrono::DateTime<chrono::Utc>,
    log: &[serde_json::Value],
) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let path = if path.as_os_str().is_empty() {
        PathBuf::from("migration-logs").join(format!("{}.jsonl", now.format("%Y-%m-%dT%H-%M-%SZ")))
    } else {
        path.to_path_buf()
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for l in log {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    eprintln!("migration log: {}", path.display());
    Ok(())
}

/// `column=value[,column=value]` per key.
fn parse_keys(keys: &[String]) -> anyhow::Result<Vec<Vec<(String, String)>>> {
    let mut parsed = Vec::new();
    for k in keys {
        let mut kv = Vec::new();
        for part in k.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                return Err(Error::spec("--key", format!("`{part}` is not `column=value`")).into());
            };
            kv.push((name.trim().to_string(), value.trim().to_string()));
        }
        parsed.push(kv);
    }
    Ok(parsed)
}

/// What `run` is asked to do, as far as it decides whether the run may start.
struct RunChecks<'a> {
    dates: &'a RunDates,
    no_checkpoint: bool,
    debug: bool,
}

/// Builds the pipeline of a run and checks the run's arguments against the spec: the dates
/// (`borboleta_core::validate::validate_run_dates`) and a stream's checkpoint. `run` and
/// `validate` both go through here, so `validate` fails exactly where `run` would refuse to
/// start; every problem, of the spec or of the arguments, is reported at once.
async fn build_for_run(
    spec: FeatureSetPipelineSpec,
    checks: &RunChecks<'_>,
    opts: &PipelineOptions,
) -> anyhow::Result<(
    borboleta::FeatureSetPipeline,
    Option<chrono::NaiveDate>,
    Option<chrono::NaiveDate>,
)> {
    let mut issues = borboleta::core::SpecIssues::default();
    let mut parse = |arg: &str, s: &Option<String>| {
        let d = s.as_deref().map(borboleta::core::time::parse_date)?;
        d.map_err(|m| issues.push(arg, m)).ok()
    };
    let d = &checks.dates;
    let (start_date, end_date) = match &d.date {
        Some(_) => {
            let day = parse("--date", &d.date);
            (day, day)
        }
        None => (parse("--start-date", &d.start_date), parse("--end-date", &d.end_date)),
    };
    // the dates are checked once they parse (a date that does not is not also a missing one)
    if issues.is_empty() {
        issues = borboleta::core::validate::validate_run_dates(&spec, start_date, end_date);
    }
    if spec.is_streaming() && !checks.no_checkpoint {
        match borboleta::checkpoint_dir(&spec) {
            // --debug writes nowhere durable: it must not move the pipeline's checkpoint
            Some(_) if checks.debug => issues.push(
                "--debug",
                "--debug writes to in-memory tables only, so it must not move the pipeline's checkpoint: \
                 add --no-checkpoint",
            ),
            Some(_) => {}
            None => {
                if let Err(Error::Spec(i)) = borboleta::stream_options(&spec, &Default::default()) {
                    issues.0.extend(i.0);
                }
            }
        }
    }
    spec.locate(&mut issues);
    match borboleta::build_pipeline(spec, opts).await {
        Ok(p) => {
            issues.into_result().map_err(Error::from)?;
            Ok((p, start_date, end_date))
        }
        Err(Error::Spec(mut built)) => {
            built.0.extend(issues.0);
            Err(Error::Spec(built).into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let spec = load(&args.spec)?;
    let opts = PipelineOptions {
        debug: args.debug,
        memory_limit: args.memory_limit_mb.map(|m| m << 20),
        ..Default::default()
    };
    let checks = RunChecks {
        dates: &args.dates,
        no_checkpoint: args.no_checkpoint,
        debug: args.debug,
    };
    let (pipeline, start_date, end_date) = build_for_run(spec, &checks, &opts).await?;
    if pipeline.is_streaming() {
        let start = borboleta::StreamStartOptions {
            no_checkpoint: args.no_checkpoint,
            available_now: args.available_now,
        };
        let opts = borboleta::stream_options(pipeline.spec(), &start)?;
        return run_stream(Arc::new(pipeline), opts, &args).await;
    }
    let bar = if std::io::stderr().is_terminal() && !args.quiet {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message("computing features");
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };
    // A spinner on a terminal; otherwise a log line at the first rows and then at most every 2 s.
    let progress: Option<Arc<dyn Fn(u64) + Send + Sync>> = match (&bar, args.quiet) {
        (Some(b), _) => {
            let b = b.clone();
            Some(Arc::new(move |rows: u64| b.set_message(format!("{rows} feature rows"))))
        }
        (None, false) => {
            let last: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
            Some(Arc::new(move |rows: u64| {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                    *last = Some(std::time::Instant::now());
                    eprintln!("progress: {rows} feature rows computed");
                }
            }))
        }
        (None, true) => None,
    };
    let summary = pipeline
        .run(RunOptions {
            start_date,
            end_date,
            progress,
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    if !args.quiet {
        eprintln!("{summary}");
    }
    print_debug_output(&pipeline, &args).await
}

/// Prints the `--sql` queries, or every debug table (sorted) with `--debug` or debug writers.
async fn print_debug_output(pipeline: &borboleta::FeatureSetPipeline, args: &RunArgs) -> anyhow::Result<()> {
    if !args.sql.is_empty() {
        for q in &args.sql {
            let batches = pipeline.sql(q).await?.collect().await?;
            print_batches(&batches, args.output)?;
        }
    } else if args.debug || pipeline.spec().writers.iter().any(|w| w.debug_mode()) {
        for table in pipeline.debug_tables() {
            let df = pipeline.session().table(table.as_str()).await?;
            let schema = df.schema().as_arrow().clone();
            let order = schema
                .fields()
                .iter()
                .map(|f| borboleta::engine::plan::util::column(f.name()).sort(true, false))
                .collect();
            let mut batches = df.sort(order)?.collect().await?;
            if !matches!(args.output, Output::Table) {
                // jsonl and csv carry the table's name in a first `table` column, so that the
                // tables printed one after another can be told apart.
                batches = batches
                    .iter()
                    .map(|b| with_table_column(b, &table))
                    .collect::<anyhow::Result<_>>()?;
            }
            if matches!(args.output, Output::Table) {
                outln!("{table}")?;
                let cols: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}:{}", f.name(), sql_type(f.data_type())))
                    .collect();
                outln!("columns: {}", cols.join(", "))?;
            }
            print_batches(&batches, args.output)?;
        }
    }
    Ok(())
}

/// Runs a streaming pipeline until it stops (`--available-now`, SIGINT or SIGTERM). The debug
/// tables or `--sql` queries are printed at most once per `--sql-interval` while it runs, from
/// this task (never from the epoch loop), and once more at the end.
async fn run_stream(
    pipeline: Arc<borboleta::FeatureSetPipeline>,
    opts: borboleta::StreamOptions,
    args: &RunArgs,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let available_now = opts.available_now;
    let listener = match args.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::spec("--metrics-addr", format!("cannot listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    let handle = borboleta::engine::stream::start(&pipeline, opts).await?;
    let metrics = listener.map(|l| serve_metrics(l, handle.status_source()));
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let interval = Duration::from_secs_f64(args.sql_interval.max(0.01));
    // Tables are printed when asked for (--debug or --sql): a long stream's debug tables can
    // hold millions of rows. With --available-now the run ends by itself: print them once then.
    let asked = !args.sql.is_empty() || args.debug;
    let live = asked && !available_now;
    let terminal = std::io::stdout().is_terminal();
    let mut printed_epoch = None;
    // A print that fails (stdout closed, a bad --sql query) stops the stream after the current
    // epoch, as a signal does; its error is returned once the stream has stopped.
    let mut print_error = None;
    let mut tick = tokio::time::interval(interval);
    while !handle.is_finished() {
        tokio::select! {
            _ = sigint.recv() => { eprintln!("stopping after the current epoch"); handle.stop(); }
            _ = sigterm.recv() => handle.stop(),
            _ = tick.tick() => {
                let epoch = handle.status().last_epoch_written;
                if live && print_error.is_none() && epoch.is_some() && epoch != printed_epoch {
                    printed_epoch = epoch;
                    let printed = async {
                        if terminal {
                            out!("\x1b[2J\x1b[H")?;
                        }
                        outln!("-- epoch {} --", epoch.unwrap_or_default())?;
                        print_debug_output(&pipeline, args).await
                    }
                    .await;
                    if let Err(e) = printed {
                        handle.stop();
                        print_error = Some(e);
                    }
                }
            }
        }
    }
    let status = handle.join().await;
    if let Some(m) = metrics {
        m.abort();
    }
    let status = status?;
    if !args.quiet {
        eprintln!(
            "stream stopped: {} epochs, {} rows read, {} feature rows, {} records dead-lettered; last committed epoch: {}",
            status.epochs,
            status.input_rows,
            status.output_rows,
            status.dead_lettered,
            status.last_committed.map_or("none".into(), |e| e.to_string())
        );
        for (writer, rows) in &status.writer_rows {
            eprintln!("  {writer}: {rows} rows written");
        }
    }
    if let Some(e) = print_error {
        return Err(e);
    }
    if (asked || available_now) && (!live || printed_epoch != status.last_epoch_written) {
        print_debug_output(&pipeline, args).await?;
    }
    Ok(())
}

/// Serves `GET /metrics` (Prometheus text format), on a task the caller aborts.
fn serve_metrics(
    listener: tokio::net::TcpListener,
    status: impl Fn() -> borboleta::StreamStatus + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let status = Arc::new(status);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let status = Arc::clone(&status);
            // one short request per connection; a slow client only delays itself
            let _ = tokio::time::timeout(Duration::from_secs(5), async move {
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let (code, body) = if request.starts_with("GET /metrics") {
                    ("200 OK", status().prometheus())
                } else {
                    ("404 Not Found", "see /metrics\n".to_string())
                };
                let response = format!(
                    "HTTP/1.1 {code}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            })
            .await;
        }
    })
}

async fn checkpoint(command: CheckpointCommand) -> anyhow::Result<()> {
    use borboleta::engine::stream::checkpoint::Checkpoint;
    let spec_path = match &command {
        CheckpointCommand::Show { spec } | CheckpointCommand::Reset { spec, .. } => spec,
    };
    let spec = load(spec_path)?;
    let Some(dir) = borboleta::checkpoint_dir(&spec) else {
        return Err(Error::spec(
            "streaming.checkpoint_path",
            "the spec has no checkpoint: set `streaming.checkpoint_path` or STREAM_CHECKPOINT_PATH",
        )
        .into());
    };
    match command {
        CheckpointCommand::Show { .. } => {
            let state = Checkpoint::read_only(&dir).state()?;
            outln!("checkpoint: {}", dir.display())?;
            outln!(
                "last committed epoch: {}",
                state.last_committed().map_or("none".into(), |e| e.to_string())
            )?;
            if let Some(c) = &state.compact {
                outln!(
                    "positions after epoch {}: {}",
                    c.epoch,
                    serde_json::to_string(&c.positions)?
                )?;
            }
            let last = state.last_committed();
            for (o, c) in &state.epochs {
                let status = match c {
                    Some(c) => format!("committed at {}, {} feature rows", c.committed_at, c.rows),
                    None if last.is_some_and(|l| o.epoch < l) => "committed with a later epoch".into(),
                    None => "planned, not committed: replayed over the same range on restart".into(),
                };
                outln!("epoch {}: {status}", o.epoch)?;
                for (reader, range) in &o.ranges {
                    outln!("  {reader}: {range}")?;
                }
            }
            Ok(())
        }
        CheckpointCommand::Reset { to_time, .. } => {
            let ck = Checkpoint::lock(&dir)?;
            let pipeline = borboleta::build_pipeline(spec, &PipelineOptions::default()).await?;
            let positions = match to_time {
                None => None,
                Some(t) => {
                    let time = parse_instant(&t)?;
                    let mut positions = std::collections::BTreeMap::new();
                    for r in pipeline.stream_readers() {
                        positions.insert(r.id().to_string(), r.position_at_time(time)?);
                    }
                    Some(positions)
                }
            };
            ck.reset(positions)?;
            ck.set_fingerprint(&pipeline.fingerprint())?;
            outln!("checkpoint {} reset", dir.display())?;
            Ok(())
        }
    }
}

/// An instant: RFC 3339, or a date (midnight UTC).
fn parse_instant(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = borboleta::core::time::parse_date(s).map_err(|m| Error::spec("--to-time", m))?;
    Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// Spark SQL names of Arrow types, as Butterfree's scenarios write them.
fn sql_type(t: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType as T;
    match t {
        T::Int32 => "int".into(),
        T::Int64 => "bigint".into(),
        T::Float32 => "float".into(),
        T::Float64 => "double".into(),
        T::Utf8 | T::LargeUtf8 | T::Utf8View => "string".into(),
        T::Boolean => "boolean".into(),
        T::Date32 => "date".into(),
        T::Timestamp(_, Some(_)) => "timestamp".into(),
        T::Timestamp(_, None) => "timestamp_ntz".into(),
        T::Decimal128(p, s) => format!("decimal({p},{s})"),
        T::List(f) => format!("array<{}>", sql_type(f.data_type())),
        other => other.to_string().to_lowercase(),
    }
}

/// `batch` with a first column `table` holding `name` on every row.
fn with_table_column(batch: &RecordBatch, name: &str) -> anyhow::Result<RecordBatch> {
    use arrow::datatypes::{DataType, Field, Schema};
    let mut fields = vec![Arc::new(Field::new("table", DataType::Utf8, false))];
    fields.extend(batch.schema().fields().iter().cloned());
    let mut columns: Vec<arrow::array::ArrayRef> =
        vec![Arc::new(arrow::array::StringArray::from(vec![name; batch.num_rows()]))];
    columns.extend(batch.columns().iter().cloned());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Most rows a `table` output prints (a pretty table is built whole in memory, and a longer one
/// is no use on a terminal): the rest is counted; `jsonl` and `csv` print every row.
const TABLE_MAX_ROWS: usize = 10_000;

fn print_batches(batches: &[RecordBatch], output: Output) -> anyhow::Result<()> {
    match output {
        Output::Table => {
            let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let mut shown = Vec::new();
            let mut left = TABLE_MAX_ROWS;
            for b in batches {
                if left == 0 {
                    break;
                }
                let n = b.num_rows().min(left);
                shown.push(b.slice(0, n));
                left -= n;
            }
            outln!("{}", arrow::util::pretty::pretty_format_batches(&shown)?)?;
            if total > TABLE_MAX_ROWS {
                outln!(
                    "({total} rows; the first {TABLE_MAX_ROWS} shown: --output jsonl or csv prints them all, --sql selects)"
                )?;
            }
        }
        Output::Jsonl => {
            // every column on every line: a null is `null`, not a missing field
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(out::Stdout);
            for b in batches {
                w.write(b).map_err(out::or_closed)?;
            }
            w.finish().map_err(out::or_closed)?;
        }
        Output::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(out::Stdout);
            for b in batches {
                w.write(b).map_err(out::or_closed)?;
            }
        }
    }
    Ok(())
}

/// Hides credentials in URLs (`scheme://user:password@host`) and `password=`-style settings.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut l = line.to_string();
        if let Some(scheme) = l.find("://") {
            let rest = &l[scheme + 3..];
            if let Some(at) = rest.find('@') {
                let creds = &rest[..at];
                if !creds.contains('/') && !creds.contains(' ') {
                    l = format!("{}://***@{}", &l[..scheme], &rest[at + 1..]);
                }
            }
        }
        for key in ["password=", "secret=", "token="] {
            if let Some(i) = l.to_ascii_lowercase().find(key) {
                let start = i + key.len();
                let end = l[start..]
                    .find(|c: char| c.is_whitespace() || c == ',' || c == '&')
                    .map_or(l.len(), |e| start + e);
                l.replace_range(start..end, "***");
            }
        }
        out.push_str(&l);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_credentials() {
        assert_eq!(super::redact("s3://key:secret@bucket/x"), "s3://***@bucket/x");
        assert_eq!(super::redact("a password=hunter2, b"), "a password=***, b");
    }
}
