//! `borboleta-bench`: in-process measurements that a CLI run cannot give (see
//! `docs/benchmarks.md`; `bench/run.py` drives everything).
//!
//! `borboleta-bench stream --data <dir> --work <dir>`: case (c), the streaming file pipeline of
//! Butterfree's `pipeline_stream.py`. A streaming pipeline (JSON file reader with
//! `stream: true` → the 3 non-window row-level features → online debug table, checkpoint on)
//! is started on an empty folder; then the `single-*.json` files of `--data` are dropped one at
//! a time (written to a staging folder, then renamed in) and each file's latency is the time
//! from the start of its write until the pipeline has committed its rows; then the
//! `burst-*.json` files are dropped at once and the burst time is until all their rows are in.
//! Prints one JSON object.
//!
//! Cases (d) and (e) (Kafka → Cassandra, online lookups): `spec`, `produce`, `freshness` and
//! `lookup`, in [`online`].

mod online;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::array::{Array, Int64Array};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Borboleta benchmarks (docs/benchmarks.md)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Case (c): per-file latency and burst throughput of a streaming file pipeline.
    Stream {
        /// Folder with `single-NNNN.json` and `burst-NNNN.json` (JSON lines, made by
        /// `bench/gen_stream.py`).
        #[arg(long)]
        data: PathBuf,
        /// Scratch folder (input, staging, checkpoint); emptied first.
        #[arg(long)]
        work: PathBuf,
        /// Use only the first N single files (default: all).
        #[arg(long)]
        files: Option<usize>,
        /// Use only the first N burst files (default: all).
        #[arg(long)]
        burst_files: Option<usize>,
        /// Seconds to wait for a file's rows before giving up.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Cases (d)/(e): write the Kafka → Cassandra spec into `<dir>/spec.yaml`.
    Spec {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9092")]
        servers: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        keyspace: String,
        #[arg(long, default_value = "127.0.0.1:9042")]
        cassandra: String,
        /// `streaming.max_rows_per_batch`.
        #[arg(long, default_value_t = 200_000)]
        max_rows: u64,
    },
    /// Case (d): a new topic with `events` events over `ids` keys.
    Produce {
        #[arg(long, default_value = "127.0.0.1:9092")]
        servers: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        events: u64,
        #[arg(long)]
        ids: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Case (d): freshness at a steady rate (runs the CLI's stream on a new topic).
    Freshness {
        /// The `borboleta` binary.
        #[arg(long)]
        borboleta: PathBuf,
        /// A spec made by `spec` for `topic`.
        #[arg(long)]
        spec: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9092")]
        servers: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 10_000)]
        ids: u64,
        /// Seconds of traffic before the first probe.
        #[arg(long, default_value_t = 3)]
        warmup: u64,
    },
    /// Case (e): lookups over one warm connection.
    Lookup {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        ids: u64,
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
        /// Keys per call.
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
}

const NAME: &str = "events_stream_features";

/// The spec of `pipeline_stream.py` (`bench/specs/stream.yaml`, shared with `stream_cli.py`).
fn stream_spec(input: &Path, checkpoint: &Path) -> String {
    include_str!("../specs/stream.yaml")
        .replace("@INPUT@", &input.display().to_string())
        .replace("@CHECKPOINT@", &checkpoint.display().to_string())
}

/// The files of `dir` whose name starts with `prefix`, sorted, with their contents and line counts.
fn load(dir: &Path, prefix: &str, limit: Option<usize>) -> Result<Vec<(String, Vec<u8>, u64)>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    if let Some(n) = limit {
        names.truncate(n);
    }
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n))?;
            let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
            Ok((n, bytes, lines))
        })
        .collect()
}

/// Writes the file into `staging`, then renames it into `input` (the stream never sees half a file).
fn drop_file(name: &str, bytes: &[u8], staging: &Path, input: &Path) -> Result<()> {
    let tmp = staging.join(name);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, input.join(name))?;
    Ok(())
}

/// Polls the stream's counters every ~200 µs until `expected` rows are written.
fn wait_rows(handle: &borboleta::StreamHandle, expected: u64, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let s = handle.status();
        if s.output_rows >= expected {
            return Ok(());
        }
        if !s.running {
            bail!("the stream stopped with {} of {expected} rows", s.output_rows);
        }
        if t0.elapsed() > timeout {
            bail!("{} of {expected} rows after {timeout:?}: {s:?}", s.output_rows);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// user + system CPU-seconds of this process, all threads (`/proc/self/stat`, clock ticks of
/// 1/100 s; `getrusage` would need `unsafe`, which the workspace forbids).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // after the comm: state(0) ppid(1) ... utime(11) stime(12)
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A `Vm*:` line of `/proc/self/status`, in MiB.
fn vm_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn stream(
    data: &Path,
    work: &Path,
    files: Option<usize>,
    burst_files: Option<usize>,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let t_process = Instant::now();
    let single = load(data, "single-", files)?;
    let burst = load(data, "burst-", burst_files)?;
    if single.is_empty() {
        bail!("no single-*.json files in {}", data.display());
    }
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    let (input, staging, ckpt) = (work.join("input"), work.join("staging"), work.join("checkpoint"));
    for d in [&input, &staging, &ckpt] {
        std::fs::create_dir_all(d)?;
    }
    let spec_path = work.join("stream.yaml");
    std::fs::write(&spec_path, stream_spec(&input, &ckpt))?;

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let t = Instant::now();
    let handle = rt.block_on(async {
        let spec = borboleta::FeatureSetPipelineSpec::from_yaml_file(&spec_path)?;
        let opts = borboleta::stream_options(&spec, &borboleta::StreamStartOptions::default())?;
        let pipeline = borboleta::build_pipeline(spec, &borboleta::PipelineOptions::default()).await?;
        let handle = borboleta::engine::stream::start(&Arc::new(pipeline), opts).await?;
        anyhow::Ok(handle)
    })?;
    let start_s = t.elapsed().as_secs_f64();

    // The main thread is not a runtime worker: it polls with std sleeps, the stream runs on
    // the runtime's workers.
    let mut expected = 0u64;
    let mut latencies = Vec::with_capacity(single.len());
    for (name, bytes, lines) in &single {
        expected += lines;
        let t = Instant::now();
        drop_file(name, bytes, &staging, &input)?;
        wait_rows(&handle, expected, timeout).with_context(|| format!("waiting for {name}"))?;
        latencies.push(t.elapsed().as_secs_f64());
    }
    let single_epochs = handle.status().epochs;

    let burst_events: u64 = burst.iter().map(|(_, _, l)| l).sum();
    let t = Instant::now();
    for (name, bytes, _) in &burst {
        drop_file(name, bytes, &staging, &input)?;
    }
    expected += burst_events;
    wait_rows(&handle, expected, timeout).context("waiting for the burst")?;
    let burst_s = t.elapsed().as_secs_f64();
    let status = handle.status();

    let t = Instant::now();
    let table_rows = rt.block_on(async {
        let batches = handle
            .sql(&format!("select count(*) from online_feature_store__{NAME}"))
            .await?
            .collect()
            .await?;
        let col = batches[0].column(0);
        let counts = col
            .as_any()
            .downcast_ref::<Int64Array>()
            .context("count(*) is not an Int64")?;
        anyhow::Ok(if counts.is_empty() { 0 } else { counts.value(0) as u64 })
    })?;
    let count_s = t.elapsed().as_secs_f64();
    if table_rows != expected {
        bail!("the debug table has {table_rows} rows, {expected} expected");
    }
    handle.stop();
    rt.block_on(handle.join())?;
    let stop_s = t_process.elapsed().as_secs_f64();

    let rest = if latencies.len() > 1 {
        &latencies[1..]
    } else {
        &latencies[..]
    };
    let file_rows = single[0].2;
    Ok(serde_json::json!({
        "pipeline": "stream",
        "system": "borboleta",
        "finished_at": chrono::Utc::now().to_rfc3339(),
        "files": single.len(),
        "rows_per_file": file_rows,
        "burst_files": burst.len(),
        "burst_events": burst_events,
        "start_s": round(start_s, 4),
        "latencies_s": latencies.iter().map(|l| round(*l, 6)).collect::<Vec<_>>(),
        "first_file_latency_s": round(latencies[0], 6),
        "median_file_latency_s": round(median(rest), 6),
        "min_file_latency_s": round(rest.iter().copied().fold(f64::INFINITY, f64::min), 6),
        "max_file_latency_s": round(rest.iter().copied().fold(0.0, f64::max), 6),
        "file_events_per_s": (single.iter().map(|s| s.2).sum::<u64>() as f64 / latencies.iter().sum::<f64>()).round(),
        "burst_s": round(burst_s, 4),
        "burst_events_per_s": (burst_events as f64 / burst_s).round(),
        "burst_epochs": status.epochs - single_epochs,
        "epochs": status.epochs,
        "input_rows": status.input_rows,
        "output_rows": status.output_rows,
        "table_rows": table_rows,
        "count_s_at_end": round(count_s, 4),
        "total_s": round(stop_s, 3),
        "cpu_s": cpu_seconds(),
        "peak_rss_mib": vm_mib("VmHWM:").map(|m| round(m, 1)),
    }))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Stream {
            data,
            work,
            files,
            burst_files,
            timeout,
        } => {
            let result = stream(&data, &work, files, burst_files, Duration::from_secs(timeout))?;
            println!("RESULT {result}");
        }
        Cmd::Spec {
            dir,
            servers,
            topic,
            keyspace,
            cassandra,
            max_rows,
        } => {
            let text = online::kafka_cassandra_spec(
                &servers,
                &topic,
                &keyspace,
                &cassandra,
                &dir.join("checkpoint"),
                max_rows,
            );
            println!("{}", online::write_spec(&dir, &text)?.display());
        }
        Cmd::Produce {
            servers,
            topic,
            events,
            ids,
            partitions,
        } => {
            let r = runtime()?.block_on(online::produce(&servers, &topic, events, ids, partitions))?;
            println!("RESULT {r}");
        }
        Cmd::Freshness {
            borboleta,
            spec,
            servers,
            topic,
            rate,
            seconds,
            ids,
            warmup,
        } => {
            let r = runtime()?.block_on(online::freshness(
                &borboleta, &spec, &servers, &topic, rate, seconds, ids, warmup,
            ))?;
            println!("RESULT {r}");
        }
        Cmd::Lookup {
            spec,
            ids,
            calls,
            batch,
        } => {
            let r = runtime()?.block_on(online::lookup(&spec, ids, calls, batch))?;
            println!("RESULT {r}");
        }
    }
    Ok(())
}
