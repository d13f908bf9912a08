//! Streaming file pipelines, scripted in the style of Spark's StreamTest: add files, check the
//! debug table, stop, restart from the checkpoint, add more, check; crash at each step of the
//! checkpoint protocol and by SIGKILL; the dead-letter output. The final outputs must equal a
//! batch run over the same files with dedup off: the historical store as a multiset of rows,
//! the online store as the latest row per key.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use borboleta::{FeatureSetPipelineSpec, PipelineOptions, StreamStartOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::{run_env, text};

const SPEC: &str = r#"
readers:
  - id: events
    type: file
    path: in
    format: json
    stream: STREAM
    schema: {id: bigint, ts: string, amount: double, city: bigint}
  - {id: cities, type: file, path: cities.csv, format: csv}
source:
  query: >
    select e.id, e.ts, e.amount, c.name as city
    from events e left join cities c on e.city = c.city_id
feature_set:
  name: stream_fs
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  DEDUP
  features:
    - {name: amount, dtype: double}
    - {name: city, dtype: string}
writers:
  - {type: online_feature_store, debug_mode: true}
  - {type: historical_feature_store}
  - {type: online_feature_store}
"#;

/// A streaming spec (or, `stream = false`, the batch reference over the same folder).
pub(crate) fn write_spec(dir: &Path, stream: bool, streaming: &str) {
    let spec = SPEC
        .replace("STREAM", if stream { "true" } else { "false" })
        .replace("DEDUP", if stream { "" } else { "deduplicate_rows: false" });
    let spec = if stream {
        format!("{spec}streaming:\n  checkpoint_path: ckpt\n{streaming}")
    } else {
        spec.replace(
            "{type: historical_feature_store}",
            "{type: historical_feature_store, debug_mode: true}",
        )
        .replace("  - {type: online_feature_store}\n", "")
    };
    std::fs::write(dir.join("spec.yaml"), spec).unwrap();
    std::fs::write(dir.join("cities.csv"), "city_id,name\n1,Sao Paulo\n2,Rio\n3,Recife\n").unwrap();
    std::fs::create_dir_all(dir.join("in")).unwrap();
}

/// Sets the historical writer's `commit_interval_seconds`.
fn set_commit_interval(dir: &Path, seconds: u64) {
    let spec = std::fs::read_to_string(dir.join("spec.yaml")).unwrap().replace(
        "{type: historical_feature_store}",
        &format!("{{type: historical_feature_store, commit_interval_seconds: {seconds}}}"),
    );
    std::fs::write(dir.join("spec.yaml"), spec).unwrap();
}

/// Puts a file in the folder the way producers should: write a hidden file, then rename.
pub(crate) fn arrive(dir: &Path, name: &str, content: &str) {
    let tmp = dir.join("in").join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join("in").join(name)).unwrap();
}

/// Deterministic events: `n` rows of file `f` (ids repeat across files; times go back and forth).
pub(crate) fn events(f: u64, n: u64) -> String {
    let mut s = String::new();
    for i in 0..n {
        let x = f * 1000 + i;
        let id = (x * 7919) % 23;
        let minute = (x * 104_729) % 5000;
        s.push_str(&format!(
            "{{\"id\":{id},\"ts\":\"2024-01-{:02} {:02}:{:02}:00\",\"amount\":{}.5,\"city\":{}}}\n",
            1 + minute / 1440,
            (minute % 1440) / 60,
            minute % 60,
            x % 97,
            x % 4
        ));
    }
    s
}

pub(crate) fn json_lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
    }
    let mut lines: Vec<String> = text(&buf).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

pub(crate) fn parquet_rows(table: &Path) -> Vec<String> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    if table.exists() {
        walk(table, &mut files);
    }
    let mut batches = Vec::new();
    for f in files {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        batches.extend(r.map(Result::unwrap));
    }
    json_lines(&batches)
}

/// The streaming run's outputs: historical rows (files) and online rows (embedded store).
pub(crate) fn stream_outputs(dir: &Path) -> (Vec<String>, Vec<String>) {
    let hist = parquet_rows(&dir.join("feature_store/historical/user/stream_fs"));
    let spec = FeatureSetPipelineSpec::parse_yaml_file(dir.join("spec.yaml")).unwrap();
    let (store, table) = borboleta::online_store(&spec).unwrap();
    let online = json_lines(&[store.scan(&table).unwrap()]);
    (hist, online)
}

/// The reference: a batch run over the same files, dedup off.
pub(crate) async fn batch_reference(files: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), false, "");
    for (name, content) in files {
        arrive(dir.path(), name, content);
    }
    let spec = FeatureSetPipelineSpec::parse_yaml_file(dir.path().join("spec.yaml")).unwrap();
    let p = borboleta::build_pipeline(spec, &PipelineOptions::default())
        .await
        .unwrap();
    p.run(borboleta::RunOptions::default()).await.unwrap();
    let q = |sql: &'static str| {
        let p = &p;
        async move { json_lines(&p.sql(sql).await.unwrap().collect().await.unwrap()) }
    };
    (
        q("select id, timestamp, amount, city from historical_feature_store__stream_fs").await,
        q("select * from online_feature_store__stream_fs").await,
    )
}

async fn wait_for_epoch(h: &borboleta::StreamHandle, epoch: u64) {
    let t0 = Instant::now();
    while h.status().last_epoch_written.is_none_or(|e| e < epoch) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "epoch {epoch} not committed: {:?}",
            h.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start(dir: &Path) -> borboleta::StreamHandle {
    let spec = FeatureSetPipelineSpec::parse_yaml_file(dir.join("spec.yaml")).unwrap();
    let opts = borboleta::stream_options(&spec, &StreamStartOptions::default()).unwrap();
    let p = Arc::new(
        borboleta::build_pipeline(spec, &PipelineOptions::default())
            .await
            .unwrap(),
    );
    borboleta::engine::stream::start(&p, opts).await.unwrap()
}

async fn debug_rows(h: &borboleta::StreamHandle) -> Vec<String> {
    let df = h
        .sql("select id, amount, city from online_feature_store__stream_fs")
        .await
        .unwrap();
    json_lines(&df.collect().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_add_check_restart_equals_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    let mut all = Vec::new();

    let h = start(d).await;
    let a = "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"amount\":1.5,\"city\":1}\n\
             {\"id\":2,\"ts\":\"2024-01-01 11:00:00\",\"amount\":2.5,\"city\":2}\n";
    arrive(d, "a.jsonl", a);
    all.push(("a.jsonl".to_string(), a.to_string()));
    wait_for_epoch(&h, 0).await;
    assert_eq!(
        debug_rows(&h).await,
        [
            r#"{"id":1,"amount":1.5,"city":"Sao Paulo"}"#,
            r#"{"id":2,"amount":2.5,"city":"Rio"}"#
        ]
    );
    // Epoch 1 joins other cities: the plan is reused, its join state is not.
    let b = "{\"id\":1,\"ts\":\"2024-01-02 10:00:00\",\"amount\":3.0,\"city\":3}\n\
             {\"id\":3,\"ts\":\"2024-01-01 09:00:00\",\"amount\":4.0,\"city\":9}\n";
    arrive(d, "b.jsonl", b);
    all.push(("b.jsonl".to_string(), b.to_string()));
    wait_for_epoch(&h, 1).await;
    assert_eq!(
        debug_rows(&h).await,
        [
            r#"{"id":1,"amount":1.5,"city":"Sao Paulo"}"#,
            r#"{"id":1,"amount":3.0,"city":"Recife"}"#,
            r#"{"id":2,"amount":2.5,"city":"Rio"}"#,
            r#"{"id":3,"amount":4.0}"#,
        ]
    );
    assert_eq!(h.status().input_rows, 4);
    h.stop();
    let status = h.join().await.unwrap();
    assert_eq!((status.epochs, status.last_committed), (2, Some(1)));

    // Restart: the checkpoint says epochs 0 and 1 are done; only new files are read.
    let h = start(d).await;
    assert_eq!(h.status().last_committed, Some(1));
    let c = events(3, 40);
    arrive(d, "c.jsonl", &c);
    all.push(("c.jsonl".to_string(), c.clone()));
    wait_for_epoch(&h, 2).await;
    assert_eq!(
        debug_rows(&h).await.len(),
        40,
        "a fresh process's debug table has the new epoch only"
    );
    h.stop();
    h.join().await.unwrap();

    let (hist, online) = stream_outputs(d);
    let (ref_hist, ref_online) = batch_reference(&all).await;
    assert_eq!(hist.len(), 44);
    assert_eq!(hist, ref_hist, "historical store = batch run (multiset)");
    assert_eq!(online, ref_online, "online store = latest row per key of the batch run");
}

/// Runs the CLI streaming pipeline over the files that are there, with a failpoint, then
/// again without: the outputs equal the batch reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_crash_at_each_protocol_step_recovers() {
    let files: Vec<(String, String)> = (0..6).map(|f| (format!("f{f:02}.jsonl"), events(f, 30))).collect();
    let (ref_hist, ref_online) = batch_reference(&files).await;
    for fp in ["after_offsets", "during_writers", "before_commit", "after_commit"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_spec(d, true, "  max_rows_per_batch: 30\n");
        set_commit_interval(d, 0);
        for (name, content) in &files {
            arrive(d, name, content);
        }
        let args = ["run", "spec.yaml", "--available-now", "--quiet"];
        let failpoint = format!("{fp}@2");
        let out = run_env(d, &args, &[("BORBOLETA_FAILPOINT", &failpoint)]);
        assert!(!out.status.success(), "{fp}: the failpoint did not fire");
        assert!(
            text(&out.stderr).contains(&format!("failpoint {failpoint}")),
            "{fp}: {}",
            text(&out.stderr)
        );
        let out = run_env(d, &args, &[]);
        assert!(out.status.success(), "{fp}: restart failed: {}", text(&out.stderr));
        let (hist, online) = stream_outputs(d);
        assert_eq!(hist, ref_hist, "{fp}: historical store differs from the batch run");
        assert_eq!(online, ref_online, "{fp}: online store differs from the batch run");
        let show = run_env(d, &["checkpoint", "show", "spec.yaml"], &[]);
        assert!(
            text(&show.stdout).contains("last committed epoch: 5"),
            "{fp}: {}",
            text(&show.stdout)
        );
    }
}

/// ≥ 20 SIGKILLs of the CLI at random moments while files keep arriving; then a drain. No
/// event lost, none duplicated in the historical store, the online store is the latest per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_survives_sigkills_while_files_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    write_spec(&d, true, "  max_rows_per_batch: 20\n");
    // the historical writer gathers epochs for 1 s: kills also hit multi-epoch intervals
    set_commit_interval(&d, 1);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("sigkill test seed: {seed}");
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut files = Vec::new();
    let mut next_file = 0u64;
    let kills = 20;
    for _ in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_borboleta"))
            .args(["run", "spec.yaml", "--quiet"])
            .current_dir(&d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(150 + rand(1500));
        while Instant::now() < deadline {
            let name = format!("k{next_file:03}.jsonl");
            let content = events(100 + next_file, 20);
            arrive(&d, &name, &content);
            files.push((name, content));
            next_file += 1;
            std::thread::sleep(Duration::from_millis(20 + rand(80)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // the killed processes did commit epochs (the kills hit a working stream, not only start-up)
    let show = text(&run_env(&d, &["checkpoint", "show", "spec.yaml"], &[]).stdout);
    let committed: u64 = show
        .lines()
        .find_map(|l| l.strip_prefix("last committed epoch: ")?.parse().ok())
        .unwrap_or(0);
    assert!(committed >= 5, "too few epochs committed before the drain: {show}");
    eprintln!(
        "{kills} kills, {} files, {committed} epochs committed before the drain",
        files.len()
    );
    let out = run_env(&d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
    assert!(out.status.success(), "drain failed: {}", text(&out.stderr));
    let (hist, online) = stream_outputs(&d);
    let (ref_hist, ref_online) = batch_reference(&files).await;
    assert_eq!(hist.len(), files.len() * 20, "every event once in the historical store");
    assert_eq!(
        hist, ref_hist,
        "historical store differs from the batch run after {kills} kills"
    );
    assert_eq!(
        online, ref_online,
        "online store differs from the batch run after {kills} kills"
    );
}

/// Bad lines go to the dead-letter output with file, line and reason; the good ones are written.
#[test]
fn stream_dead_letters_bad_records_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    let future = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%d %H:%M:%S");
    let lines = [
        r#"{"id":1,"ts":"2024-01-01 10:00:00","amount":1.5,"city":1}"#.to_string(),
        "{not json".to_string(),
        r#"{"id":"two","ts":"2024-01-01 10:00:00","amount":1.5,"city":1}"#.to_string(),
        r#"{"id":3,"ts":null,"amount":2.0,"city":1}"#.to_string(),
        format!(r#"{{"id":4,"ts":"{future}","amount":2.0,"city":1}}"#),
        r#"{"id":5,"ts":"2024-01-01 12:00:00","amount":"abc","city":2}"#.to_string(),
        r#"{"id":6,"ts":"2024-01-01 13:00:00","amount":6.0,"city":2}"#.to_string(),
        r#"{"ts":"2024-01-01 13:00:00","amount":7.0,"city":2}"#.to_string(),
    ];
    arrive(d, "mixed.jsonl", &(lines.join("\n") + "\n"));
    let out = run_env(d, &["run", "spec.yaml", "--available-now"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("6 records dead-lettered"),
        "{}",
        text(&out.stderr)
    );
    let dead = std::fs::read_to_string(d.join("ckpt/user/stream_fs/dead_letter/epoch=0.jsonl")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(Option<u64>, String)> = dead
        .iter()
        .map(|v| (v["position"].as_u64(), v["reason"].as_str().unwrap().to_string()))
        .collect();
    let expect = [
        (Some(2), "Json error"),
        (Some(3), "failed to parse \"two\" as Int64"),
        (Some(6), "failed to parse \"abc\" as Float64"),
        (None, "the event time (timestamp) is null"),
        (None, "too far in the future"),
        (None, "a key is null"),
    ];
    assert_eq!(summary.len(), expect.len(), "{summary:?}");
    for (want_pos, want_reason) in expect {
        assert!(
            summary.iter().any(|(p, r)| *p == want_pos && r.contains(want_reason)),
            "missing dead letter {want_pos:?} {want_reason}: {summary:?}"
        );
    }
    // raw records are kept as they were; feature rows as JSON
    assert!(dead.iter().any(|v| v["record"] == "{not json"));
    assert!(dead.iter().all(|v| v["epoch"] == 0));
    let (hist, _) = stream_outputs(d);
    assert_eq!(hist.len(), 2, "{hist:?}");
    assert!(
        hist[0].contains(r#""id":1"#) && hist[1].contains(r#""id":6"#),
        "{hist:?}"
    );
}

/// `--sql` runs while the stream runs (its own task, at most once per interval); SIGTERM stops
/// the stream gracefully (exit 0, the summary says where it stopped).
#[test]
fn stream_live_sql_and_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_borboleta"))
        .args([
            "run",
            "spec.yaml",
            "--sql",
            "select count(*) as n from online_feature_store__stream_fs",
            "--sql-interval",
            "0.05",
            "--metrics-addr",
            &metrics_addr,
        ])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    arrive(d, "a.jsonl", &events(1, 3));
    let mut line = String::new();
    while !seen.contains("| 3 |") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed: {seen}");
        seen.push_str(&line);
        if seen.contains("-- epoch 0 --") && !seen.contains("| 3 |") && seen.lines().count() > 10 {
            panic!("epoch 0 printed without its rows: {seen}");
        }
    }
    arrive(d, "b.jsonl", &events(2, 4));
    while !seen.contains("| 7 |") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed: {seen}");
        seen.push_str(&line);
    }
    // the metrics endpoint reports the same counts
    let metrics = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&metrics_addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    };
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    for want in [
        "borboleta_input_rows_total 7",
        "borboleta_output_rows_total 7",
        "borboleta_last_written_epoch 1",
        "borboleta_writer_rows_total{writer=\"historical_feature_store\"} 7",
    ] {
        assert!(metrics.contains(want), "missing `{want}`:\n{metrics}");
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SIGTERM is a graceful stop: {:?}", out.status);
    let err = text(&out.stderr);
    assert!(err.contains("last committed epoch: 1"), "{err}");
}

/// Ctrl-C while a `--sql` query is being printed still stops the stream: the CLI listens for
/// SIGINT for the whole run, not only while it waits (a SIGINT that came during a print was
/// lost, and the stream ran on).
#[test]
fn stream_sigint_during_a_live_query_stops_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    // a query that takes a while, so that the signal comes while it runs
    let slow = "select sum(value * id) as s from online_feature_store__stream_fs, range(2000000)";
    let mut child = Command::new(env!("CARGO_BIN_EXE_borboleta"))
        .args(["run", "spec.yaml", "--sql", slow, "--sql-interval", "0.01"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    arrive(d, "a.jsonl", &events(1, 3));
    let mut line = String::new();
    while line.trim() != "-- epoch 0 --" {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed");
    }
    // the query of epoch 0 runs now
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().ok();
            child.wait().ok();
            panic!("the stream did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "SIGINT is a graceful stop: {status:?}\n{err}");
    assert!(err.contains("stopping after the current epoch"), "{err}");
    assert!(err.contains("last committed epoch: 0"), "{err}");
}

/// Static readers are reloaded on `static_refresh_seconds`; streaming debug tables keep at
/// most `debug_max_rows` rows; files older than `max_file_age_seconds` are ignored; a batch
/// run may not replace partitions of a table a stream is writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_static_refresh_limits_and_table_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "  static_refresh_seconds: 1\n  debug_max_rows: 3\n");
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace("stream: true", "stream: true\n    max_file_age_seconds: 3600");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    arrive(d, "old.jsonl", &events(7, 5));
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(d.join("in/old.jsonl"))
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    // max_file_age counts back from the newest file seen
    let a = "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"amount\":1.0,\"city\":1}\n\
             {\"id\":2,\"ts\":\"2024-01-01 11:00:00\",\"amount\":2.0,\"city\":1}\n";
    arrive(d, "a.jsonl", a);
    let h = start(d).await;
    wait_for_epoch(&h, 0).await;
    assert_eq!(h.status().input_rows, 2, "the two-day-old file is ignored");

    // a batch run that would replace partitions of the stream's table is refused
    let batch = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace("stream: true\n    max_file_age_seconds: 3600", "stream: false")
        .replace(
            "{type: historical_feature_store}",
            "{type: historical_feature_store, interval_mode: true}",
        );
    let batch = &batch[..batch.find("streaming:").unwrap()];
    let batch_spec = FeatureSetPipelineSpec::from_yaml_str(batch, Some(d), &|_| None).unwrap();
    let err = borboleta::build_pipeline(batch_spec, &PipelineOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("being written by a running stream"), "{err}");

    std::fs::write(d.join("cities.csv"), "city_id,name\n1,Campinas\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = "{\"id\":3,\"ts\":\"2024-01-01 12:00:00\",\"amount\":3.0,\"city\":1}\n\
             {\"id\":4,\"ts\":\"2024-01-01 13:00:00\",\"amount\":4.0,\"city\":1}\n";
    arrive(d, "b.jsonl", b);
    wait_for_epoch(&h, 1).await;
    assert_eq!(
        debug_rows(&h).await,
        [
            r#"{"id":2,"amount":2.0,"city":"Sao Paulo"}"#,
            r#"{"id":3,"amount":3.0,"city":"Campinas"}"#,
            r#"{"id":4,"amount":4.0,"city":"Campinas"}"#,
        ],
        "the oldest row is evicted; the reloaded static table is joined"
    );
    assert_eq!(h.status().debug_rows_evicted, 1, "evictions are counted");
    h.stop();
    h.join().await.unwrap();
}

/// Queries that would emit static rows again every micro-batch, or need state, are refused at
/// plan time (exit 2) with the reason; an inner or left join from the stream is fine.
#[test]
fn stream_rejects_queries_that_need_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    arrive(d, "a.jsonl", &events(1, 2));
    let base = std::fs::read_to_string(d.join("spec.yaml")).unwrap();
    let from = "from events e left join cities c on e.city = c.city_id";
    for (query, reason) in [
        (from.to_string(), None),
        (from.replace("left join", "join"), None),
        (from.replace("left join", "right join"), Some("outer join")),
        (from.replace("left join", "full join"), Some("outer join")),
        (
            format!("{from} union all select city_id, '2024-01-01', 0.0, name from cities"),
            Some("UNION"),
        ),
        (
            format!("{from} where e.amount > (select avg(amount) from events)"),
            Some("aggregate"),
        ),
        (format!("{from} order by e.ts limit 10"), Some("LIMIT")),
    ] {
        let spec = base.replace(from, &query);
        std::fs::write(d.join("spec.yaml"), &spec).unwrap();
        let out = run_env(d, &["validate", "spec.yaml"], &[]);
        match reason {
            None => assert!(out.status.success(), "{query}: {}", text(&out.stderr)),
            Some(r) => {
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{query}: {err}");
                assert!(err.contains("source.query") && err.contains(r), "{query}: {err}");
            }
        }
    }
}

/// CSV and Parquet folders stream too; a bad CSV line is dead-lettered with its line number;
/// `on_bad_record: fail` stops the stream (exit 1) naming the record instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_csv_and_parquet_folders_and_on_bad_record_fail() {
    let (csv_events, json_events) = (events(5, 6), events(6, 4));
    for format in ["csv", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_spec(d, true, "");
        let spec = std::fs::read_to_string(d.join("spec.yaml")).unwrap().replace(
            "format: json\n    stream: true",
            &format!("format: {format}\n    stream: true"),
        );
        std::fs::write(d.join("spec.yaml"), spec).unwrap();
        let rows: Vec<serde_json::Value> = csv_events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let name = format!("a.{format}");
        if format == "csv" {
            let mut text = String::from("id,ts,amount,city\n");
            for r in &rows {
                text.push_str(&format!(
                    "{},{},{},{}\n",
                    r["id"],
                    r["ts"].as_str().unwrap(),
                    r["amount"],
                    r["city"]
                ));
            }
            text.push_str("oops,2024-01-01 00:00:00,1.0,1\n");
            arrive(d, &name, &text);
        } else {
            let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, true),
                arrow::datatypes::Field::new("ts", arrow::datatypes::DataType::Utf8, true),
                arrow::datatypes::Field::new("amount", arrow::datatypes::DataType::Float64, true),
                arrow::datatypes::Field::new("city", arrow::datatypes::DataType::Int64, true),
            ]));
            let mut reader = arrow::json::ReaderBuilder::new(schema.clone())
                .build(std::io::Cursor::new(csv_events.clone().into_bytes()))
                .unwrap();
            let batch = reader.next().unwrap().unwrap();
            let tmp = d.join("in").join(".a.parquet.tmp");
            let mut w =
                parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&tmp).unwrap(), schema, None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            std::fs::rename(&tmp, d.join("in").join(&name)).unwrap();
        }
        let out = run_env(d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let (hist, online) = stream_outputs(d);
        let (ref_hist, ref_online) = batch_reference(&[("a.jsonl".into(), csv_events.clone())]).await;
        assert_eq!(hist, ref_hist, "{format}: historical store = batch run");
        assert_eq!(online, ref_online, "{format}: online store = batch run");
        if format == "csv" {
            let dead = std::fs::read_to_string(d.join("ckpt/user/stream_fs/dead_letter/epoch=0.jsonl")).unwrap();
            let v: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
            assert_eq!(v["position"], 8, "header + 6 rows, then the bad line: {v}");
            assert_eq!(v["record"], "oops,2024-01-01 00:00:00,1.0,1");
        }
    }

    // on_bad_record: fail
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "  on_bad_record: fail\n");
    arrive(d, "a.jsonl", &(json_events.clone() + "{broken\n"));
    let out = run_env(d, &["run", "spec.yaml", "--available-now"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad record in events") && err.contains("at 5") && err.contains("on_bad_record: fail"),
        "{err}"
    );
    let hist = parquet_rows(&d.join("feature_store/historical/user/stream_fs"));
    assert!(hist.is_empty(), "nothing of the failed epoch is written: {hist:?}");
    assert!(!d.join("feature_store/online.sqlite").exists(), "nor online");
}

/// `checkpoint reset --to-earliest` reads everything again (epoch numbers go on);
/// `--to-time` counts the files older than the instant as processed; `processing_time_ms`
/// spaces the epochs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_checkpoint_reset_and_processing_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "  max_rows_per_batch: 5\n  processing_time_ms: 400\n");
    // available_now takes no processing time: run without it, and stop once all is read
    for (i, name) in ["a.jsonl", "b.jsonl", "c.jsonl"].iter().enumerate() {
        arrive(d, name, &events(20 + i as u64, 5));
        let t = std::time::SystemTime::now() - Duration::from_secs(3600 * (3 - i as u64));
        std::fs::File::options()
            .write(true)
            .open(d.join("in").join(name))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let h = start(d).await;
    wait_for_epoch(&h, 2).await;
    h.stop();
    h.join().await.unwrap();
    let ck = d.join("ckpt/user/stream_fs");
    let planned: Vec<chrono::DateTime<chrono::Utc>> = (0..3)
        .map(|n| {
            let o: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(ck.join("offsets").join(n.to_string())).unwrap())
                    .unwrap();
            chrono::DateTime::parse_from_rfc3339(o["planned_at"].as_str().unwrap())
                .unwrap()
                .to_utc()
        })
        .collect();
    for w in planned.windows(2) {
        let gap = (w[1] - w[0]).num_milliseconds();
        assert!(gap >= 380, "epochs start at least processing_time_ms apart: {gap} ms");
    }
    let (hist, _) = stream_outputs(d);
    assert_eq!(hist.len(), 15);

    // to-time: only c.jsonl (the newest, 1 h old) is newer than 90 minutes ago
    let t = (chrono::Utc::now() - chrono::Duration::minutes(90)).to_rfc3339();
    let out = run_env(d, &["checkpoint", "reset", "spec.yaml", "--to-time", &t], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(stream_outputs(d).0.len(), 20, "c.jsonl read again, appended");
    let show = text(&run_env(d, &["checkpoint", "show", "spec.yaml"], &[]).stdout);
    assert!(show.contains("last committed epoch: 3"), "epoch numbers go on: {show}");

    // to-earliest: everything again
    let out = run_env(d, &["checkpoint", "reset", "spec.yaml", "--to-earliest"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(stream_outputs(d).0.len(), 35, "all three files read again, appended");
}

/// `--output table` prints at most 10,000 rows of a table and counts the rest; `jsonl` prints
/// every row.
#[test]
fn table_output_is_capped_and_jsonl_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, false, "");
    arrive(d, "a.jsonl", &events(1, 12_000));
    let out = run_env(d, &["run", "spec.yaml", "--debug", "--quiet", "--output", "jsonl"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let jsonl = text(&out.stdout);
    let count = |table: &str| {
        jsonl
            .lines()
            .filter(|l| l.contains(&format!("\"table\":\"{table}\"")))
            .count()
    };
    let (hist, online) = (
        count("historical_feature_store__stream_fs"),
        count("online_feature_store__stream_fs"),
    );
    assert!(hist > 10_000 && online > 0, "jsonl prints every row: {hist} + {online}");
    assert_eq!(jsonl.lines().count(), hist + online);

    let out = run_env(d, &["run", "spec.yaml", "--debug", "--quiet"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = format!("({hist} rows; the first 10000 shown: --output jsonl or csv prints them all, --sql selects)");
    assert!(stdout.contains(&note), "{note}");
    let data_lines = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| id "))
        .count();
    assert_eq!(
        data_lines,
        10_000 + online,
        "10,000 historical rows and the online table"
    );
}
