//! End-to-end runs through the CLI on real files: the README examples, A19, event-time order.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::{borboleta, copy_dir, output_within, repo_root, run_env, text};
use crate::stream::{json_lines, parquet_rows};

/// Every parquet file under `dir`, with its `year=/month=/day=` folders.
fn parquet_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            parquet_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
}

fn partition_of(p: &Path, table: &Path) -> String {
    p.parent()
        .unwrap()
        .strip_prefix(table)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn readme_example_writes_partitions_and_online_rows() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/events"), dir.path());
    let out = borboleta(dir.path(), &["run", "pipeline.yaml"], "America/Sao_Paulo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(summary.contains("feature rows: 300"), "{summary}");
    // stderr is not a terminal here: progress comes as log lines, not a spinner
    assert!(
        summary.contains("progress: ") && summary.contains("feature rows computed"),
        "{summary}"
    );
    assert!(
        !summary.contains('\u{1b}'),
        "no terminal escapes off a terminal: {summary}"
    );

    let input = std::fs::read_to_string(dir.path().join("data/events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = input.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let table = dir.path().join("feature_store/historical/user/events_row_features");
    let mut files = Vec::new();
    parquet_files(&table, &mut files);
    let mut partitions: Vec<String> = files.iter().map(|f| partition_of(f, &table)).collect();
    partitions.sort();
    partitions.dedup();
    // events span 2024-01-01..2024-01-14 (UTC): one partition per day, not zero-padded
    let mut days: Vec<String> = events
        .iter()
        .map(|e| {
            let d = &e["ts"].as_str().unwrap()[..10];
            let (y, m, dd) = (
                &d[..4],
                d[5..7].trim_start_matches('0'),
                d[8..10].trim_start_matches('0'),
            );
            format!("year={y}/month={m}/day={dd}")
        })
        .collect();
    days.sort();
    days.dedup();
    assert_eq!(partitions, days);
    let rows: i64 = files
        .iter()
        .map(|f| {
            let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
            r.metadata().file_metadata().num_rows()
        })
        .sum();
    assert_eq!(rows as usize, events.len());

    // online get: the latest event of user 3
    let latest_ts = events
        .iter()
        .filter(|e| e["id"] == 3)
        .map(|e| e["ts"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    let out = borboleta(
        dir.path(),
        &["online", "get", "pipeline.yaml", "--key", "id=3", "--output", "jsonl"],
        "UTC",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(got["id"], 3);
    assert_eq!(
        got["timestamp"]
            .as_str()
            .unwrap()
            .replace('T', " ")
            .trim_end_matches('Z'),
        latest_ts
    );

    // a second run over the same data is idempotent (interval mode)
    let out = borboleta(dir.path(), &["run", "pipeline.yaml"], "Europe/Berlin");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut files2 = Vec::new();
    parquet_files(&table, &mut files2);
    assert_eq!(files2.len(), files.len());
}

const A19_SPEC: &str = r#"
readers:
  - id: id
    type: file
    path: input.jsonl
    format: json
    schema: {id: integer, ts: timestamp, feature: integer}
    incremental_strategy: {column: ts}
source: {query: "select *, ${RUN_ID} as run_id from id"}
feature_set:
  name: feature_set_interval
  entity: entity
  keys: [{name: id, dtype: integer}]
  timestamp: {from_column: ts}
  features: [{name: feature, dtype: integer}, {name: run_id, dtype: integer}]
writers:
  - {type: historical_feature_store, interval_mode: true, row_count_validation: false}
"#;

fn historical_rows(table: &Path) -> Vec<String> {
    let mut files = Vec::new();
    parquet_files(table, &mut files);
    let mut rows = Vec::new();
    for f in files {
        let part = partition_of(&f, table);
        for b in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let id = b.column_by_name("id").unwrap().as_primitive::<Int32Type>().clone();
            let ts = b
                .column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            let feature = b.column_by_name("feature").unwrap().as_primitive::<Int32Type>().clone();
            let run = b.column_by_name("run_id").unwrap().as_primitive::<Int32Type>().clone();
            for i in 0..b.num_rows() {
                let t = chrono::DateTime::from_timestamp_micros(ts.value(i))
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S");
                rows.push(format!(
                    "({}, {t}, {}, {}, {part})",
                    id.value(i),
                    feature.value(i),
                    run.value(i)
                ));
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn a19_interval_runs_replace_only_the_partitions_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), A19_SPEC).unwrap();
    std::fs::copy(
        repo_root().join("tests/golden/a02_date_boundaries/input/d4.jsonl"),
        dir.path().join("input.jsonl"),
    )
    .unwrap();
    let table = dir.path().join("feature_store/historical/entity/feature_set_interval");
    let run = |run_id: &str, args: &[&str]| {
        let mut a = vec!["run", "spec.yaml", "--quiet"];
        a.extend(args);
        let out = run_env(dir.path(), &a, &[("RUN_ID", run_id), ("TZ", "America/Sao_Paulo")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        historical_rows(&table)
    };
    let r1 = run("1", &["--start-date", "2016-04-11", "--end-date", "2016-04-13"]);
    assert_eq!(
        r1,
        [
            "(1, 2016-04-11 11:31:11, 200, 1, year=2016/month=4/day=11)",
            "(1, 2016-04-12 11:44:12, 300, 1, year=2016/month=4/day=12)",
            "(1, 2016-04-13 11:46:24, 400, 1, year=2016/month=4/day=13)",
        ]
    );
    let r2 = run("2", &["--date", "2016-04-14"]);
    assert_eq!(r2.len(), 4);
    assert_eq!(r2[3], "(1, 2016-04-14 12:03:21, 500, 2, year=2016/month=4/day=14)");
    let r3 = run("3", &["--date", "2016-04-11"]);
    assert_eq!(
        r3,
        [
            "(1, 2016-04-11 11:31:11, 200, 3, year=2016/month=4/day=11)",
            "(1, 2016-04-12 11:44:12, 300, 1, year=2016/month=4/day=12)",
            "(1, 2016-04-13 11:46:24, 400, 1, year=2016/month=4/day=13)",
            "(1, 2016-04-14 12:03:21, 500, 2, year=2016/month=4/day=14)",
        ]
    );
    // nothing left behind in staging
    assert!(
        std::fs::read_dir(&table)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'))
    );
}

#[test]
fn embedded_online_store_never_goes_back_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"
readers: [{id: e, type: file, path: "${INPUT}", format: json, schema: {id: bigint, ts: timestamp, v: bigint}}]
source: {query: select * from e}
feature_set:
  name: fs
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features: [{name: v, dtype: bigint}]
writers: [{type: online_feature_store}]
"#;
    std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    std::fs::write(
        dir.path().join("new.jsonl"),
        "{\"id\":1,\"ts\":\"2024-05-02 10:00:00\",\"v\":2}\n{\"id\":1,\"ts\":\"2024-05-01 10:00:00\",\"v\":1}\n{\"id\":2,\"ts\":\"2024-05-01 00:00:00\",\"v\":20}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("backfill.jsonl"),
        "{\"id\":1,\"ts\":\"2024-04-01 10:00:00\",\"v\":-1}\n{\"id\":2,\"ts\":\"2024-05-03 00:00:00\",\"v\":21}\n{\"id\":3,\"ts\":\"2099-01-01 00:00:00\",\"v\":99}\n",
    )
    .unwrap();
    let get = |key: &str| {
        let out = run_env(
            dir.path(),
            &["online", "get", "spec.yaml", "--key", key, "--output", "jsonl"],
            &[("INPUT", "x")],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let out = run_env(dir.path(), &["run", "spec.yaml"], &[("INPUT", "new.jsonl")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(get("id=1").contains("\"v\":2"), "latest of the batch wins");
    // A backfill with an older event for key 1 and a newer one for key 2.
    let out = run_env(dir.path(), &["run", "spec.yaml"], &[("INPUT", "backfill.jsonl")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(summary.contains("1 kept a newer value"), "{summary}");
    assert!(summary.contains("1 in the future"), "{summary}");
    assert!(
        get("id=1").contains("\"v\":2"),
        "an older event never overwrites a newer one"
    );
    assert!(get("id=2").contains("\"v\":21"));
    assert_eq!(get("id=3").trim(), "", "a far-future event is not written");
    let bad = run_env(
        dir.path(),
        &["online", "get", "spec.yaml", "--key", "nope=1"],
        &[("INPUT", "x")],
    );
    assert_eq!(bad.status.code(), Some(2));

    // A delete wins over every event up to now: replaying older events does not bring the key
    // back; an event newer than the delete does.
    let out = run_env(
        dir.path(),
        &["online", "delete", "spec.yaml", "--key", "id=1"],
        &[("INPUT", "x")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "deleted 1 key(s)");
    assert_eq!(get("id=1").trim(), "", "deleted");
    let out = run_env(dir.path(), &["run", "spec.yaml"], &[("INPUT", "new.jsonl")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(get("id=1").trim(), "", "a replay of older events stays deleted");
    std::fs::write(
        dir.path().join("later.jsonl"),
        "{\"id\":1,\"ts\":\"2099-01-01 00:00:00\",\"v\":7}\n",
    )
    .unwrap();
    let spec = std::fs::read_to_string(dir.path().join("spec.yaml")).unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        spec.replace(
            "[{type: online_feature_store}]",
            "[{type: online_feature_store, max_future_skew_seconds: 9999999999}]",
        ),
    )
    .unwrap();
    let out = run_env(dir.path(), &["run", "spec.yaml"], &[("INPUT", "later.jsonl")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        get("id=1").contains("\"v\":7"),
        "an event newer than the delete shows again"
    );
}

/// Two pipelines through the table catalog: the example writes its historical table; a second
/// pipeline reads it back by name (`type: table`, database = the entity) with its year/month/day
/// partition columns, and a `catalog:` entry names the raw events file.
#[test]
fn second_pipeline_reads_the_first_through_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/events"), dir.path());
    let out = borboleta(dir.path(), &["run", "pipeline.yaml", "--quiet"], "UTC");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(
        dir.path().join("second.yaml"),
        r#"
readers:
  - {id: features, type: table, database: user, table: events_row_features}
  - {id: raw, type: table, database: raw, table: events}
catalog:
  raw.events: {path: data/events.jsonl, format: json}
source:
  query: |
    select f.id, f.timestamp, f.amount_x2, f.day as partition_day, r.amount
    from features f join raw r on f.id = r.id and f.timestamp = r.ts
feature_set:
  name: second
  entity: user
  deduplicate_rows: false
  keys: [{name: id, dtype: bigint}]
  features:
    - {name: amount_x2, dtype: double}
    - {name: amount, dtype: double}
    - {name: partition_day, dtype: integer}
writers: [{type: historical_feature_store, debug_mode: true}]
"#,
    )
    .unwrap();
    let sql = "select count(*) as n, sum(case when amount_x2 is not distinct from 2 * amount then 1 else 0 end) as doubled, \
               min(partition_day) as first_day, max(partition_day) as last_day from historical_feature_store__second";
    let out = borboleta(
        dir.path(),
        &["run", "second.yaml", "--quiet", "--sql", sql, "--output", "csv"],
        "America/Sao_Paulo",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 300 events, each joined to its own feature row; days 1..14 of January from the partitions
    assert_eq!(text(&out.stdout), "n,doubled,first_day,last_day\n300,300,1,14\n");
    // a table that is neither in the catalog nor in the store: a spec error naming it
    std::fs::write(
        dir.path().join("missing.yaml"),
        std::fs::read_to_string(dir.path().join("second.yaml"))
            .unwrap()
            .replace("table: events_row_features", "table: nope"),
    )
    .unwrap();
    let out = borboleta(dir.path(), &["run", "missing.yaml", "--quiet"], "UTC");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("events_row_features") || text(&out.stderr).contains("nope"));
}

/// The historical writer's schema check (Butterfree's schema-compatibility hook): appending rows
/// whose types differ from the existing table is refused before anything is written.
#[test]
fn appending_an_incompatible_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/events"), dir.path());
    let out = borboleta(dir.path(), &["run", "pipeline.yaml", "--quiet"], "UTC");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = dir.path().join("feature_store/historical/user/events_row_features");
    let count = || {
        let mut f = Vec::new();
        parquet_files(&table, &mut f);
        f.len()
    };
    let before = count();
    let spec = std::fs::read_to_string(dir.path().join("pipeline.yaml")).unwrap();
    // the example writes in interval mode: a run adds to the table, so its schema is checked
    assert!(
        spec.contains("interval_mode: true"),
        "the example's writer changed; update this test"
    );
    let retyped = spec.replacen("dtype: double", "dtype: float", 1);
    assert_ne!(retyped, spec);
    std::fs::write(dir.path().join("retyped.yaml"), &retyped).unwrap();
    let out = borboleta(dir.path(), &["run", "retyped.yaml", "--quiet"], "UTC");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("do not fit the existing historical table") && err.contains("Float32"),
        "{err}"
    );
    assert_eq!(count(), before, "nothing written");
    // the same schema runs again; `check_schema: false` lets the retyped rows in
    let out = borboleta(dir.path(), &["run", "pipeline.yaml", "--quiet"], "UTC");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unchecked = retyped.replace(
        "    interval_mode: true\n",
        "    interval_mode: true\n    check_schema: false\n",
    );
    assert_ne!(unchecked, retyped);
    std::fs::write(dir.path().join("unchecked.yaml"), unchecked).unwrap();
    let out = borboleta(dir.path(), &["run", "unchecked.yaml", "--quiet"], "UTC");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The files of `dir`, by name.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The output columns of a feature set (keys, `timestamp`, features), quoted for SQL.
fn quoted_columns(fs: &borboleta::FeatureSetSpec) -> String {
    let columns: Vec<String> = borboleta::core::output_columns(fs)
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    columns.join(", ")
}

/// The batch reference of the streaming example: its spec with `stream: false`, without
/// `streaming:` and without the duplicate-row filter (docs/streaming.md, "When a pipeline
/// streams"), run with `--debug` over `files`. The folder holds the reader's files while the
/// pipeline lives.
async fn stream_example_batch(files: &[PathBuf]) -> (tempfile::TempDir, borboleta::FeatureSetPipeline) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("examples/stream/pipeline.yaml"),
        dir.path().join("pipeline.yaml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("incoming")).unwrap();
    for f in files {
        std::fs::copy(f, dir.path().join("incoming").join(f.file_name().unwrap())).unwrap();
    }
    let mut spec = borboleta::FeatureSetPipelineSpec::parse_yaml_file(dir.path().join("pipeline.yaml")).unwrap();
    assert!(spec.streaming.is_some(), "the example is a stream with a checkpoint");
    let mut streams = 0;
    for r in &mut spec.readers {
        if let borboleta::ReaderSpec::File(f) = r {
            streams += usize::from(f.stream);
            f.stream = false;
        }
    }
    assert_eq!(streams, 1, "the example streams one folder");
    spec.streaming = None;
    spec.feature_set.deduplicate_rows = Some(false);
    let opts = borboleta::PipelineOptions {
        debug: true,
        ..Default::default()
    };
    let p = borboleta::build_pipeline(spec, &opts).await.unwrap();
    p.run(borboleta::RunOptions::default()).await.unwrap();
    (dir, p)
}

/// `make example-stream`: examples/stream/run.sh, here with this build's binary and a work
/// folder it keeps. Its outputs must equal the batch run of the same spec over the same files:
/// the live `--sql` table printed after each epoch is, line for line, the same query over the
/// files up to that epoch; after the non-debug run the online store holds the batch run's latest
/// row per key and the historical files the batch run's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_example_equals_a_batch_run_of_its_spec() {
    let example = repo_root().join("examples/stream");
    let work = tempfile::tempdir().unwrap();
    let mut script = Command::new("bash");
    script
        .arg(example.join("run.sh"))
        .env("BORBOLETA", env!("CARGO_BIN_EXE_borboleta"))
        .env("EXAMPLE_WORKDIR", work.path())
        .env_remove("BORBOLETA_LOG");
    let out = tokio::task::spawn_blocking(move || output_within(script, "examples/stream/run.sh"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );

    // epoch 0 takes the seed files, then each arrival is an epoch of its own
    let seeds = files_in(&example.join("incoming"));
    let arrivals = files_in(&example.join("arrivals"));
    assert!(!seeds.is_empty() && arrivals.len() >= 2);
    let sql = std::fs::read_to_string(example.join("live.sql")).unwrap();

    // the live run's stdout: `-- epoch N --`, then the query's table
    let live = std::fs::read_to_string(work.path().join("live/live.out")).unwrap();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in live.lines() {
        if line.starts_with("-- epoch ") {
            sections.push((line.to_string(), String::new()));
        } else {
            let (_, body) = sections.last_mut().expect("output before the first epoch");
            body.push_str(line);
            body.push('\n');
        }
    }
    let markers: Vec<&str> = sections.iter().map(|(m, _)| m.as_str()).collect();
    let want: Vec<String> = (0..=arrivals.len()).map(|e| format!("-- epoch {e} --")).collect();
    assert_eq!(markers, want, "{live}");
    for (epoch, (_, printed)) in sections.iter().enumerate() {
        let mut files = seeds.clone();
        files.extend_from_slice(&arrivals[..epoch]);
        let (_dir, batch) = stream_example_batch(&files).await;
        // A stream's online debug table gets every feature row (Butterfree's memory sink); a
        // batch run's holds the latest row per key. The batch's every row: its historical debug
        // table without the partition columns, under the online table's name.
        let fs = &batch.spec().feature_set;
        let online = format!("online_feature_store__{}", fs.name);
        let every_row = batch
            .sql(&format!(
                "select {} from historical_feature_store__{}",
                quoted_columns(fs),
                fs.name
            ))
            .await
            .unwrap()
            .into_view();
        batch.session().deregister_table(online.as_str()).unwrap().unwrap();
        batch.session().register_table(online.as_str(), every_row).unwrap();
        let rows = batch.sql(&sql).await.unwrap().collect().await.unwrap();
        assert!(rows.iter().map(|b| b.num_rows()).sum::<usize>() > 0);
        let expected = arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string();
        assert_eq!(printed.trim_end(), expected.trim_end(), "epoch {epoch}");
    }

    // the non-debug run over every file
    let mut files = seeds;
    files.extend(arrivals);
    let events: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    let (_dir, batch) = stream_example_batch(&files).await;
    let query = |sql: String| {
        let batch = &batch;
        async move { json_lines(&batch.sql(&sql).await.unwrap().collect().await.unwrap()) }
    };
    let durable = work.path().join("durable");
    let spec = borboleta::FeatureSetPipelineSpec::parse_yaml_file(durable.join("pipeline.yaml")).unwrap();
    let fs = &spec.feature_set;
    let (store, table) = borboleta::online_store(&spec).unwrap();
    let online = json_lines(&[store.scan(&table).unwrap()]);
    let latest = query(format!("select * from online_feature_store__{}", fs.name)).await;
    assert!(!latest.is_empty() && latest.len() < events, "{latest:?}");
    assert_eq!(online, latest);
    let history = query(format!(
        "select {} from historical_feature_store__{}",
        quoted_columns(fs),
        fs.name
    ))
    .await;
    assert_eq!(history.len(), events);
    let table = durable.join(format!("feature_store/historical/{}/{}", fs.entity, fs.name));
    assert_eq!(parquet_rows(&table), history);
}
