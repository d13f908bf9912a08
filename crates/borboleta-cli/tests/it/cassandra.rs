//! Kafka → streaming feature set → Cassandra, against the real services of `scripts/services`
//! (Kafka 127.0.0.1:9092, Cassandra 127.0.0.1:9042; `BORBOLETA_CASSANDRA` overrides). Each test
//! uses its own topic and keyspace. Cassandra's state must always equal the latest event per key,
//! column by column, whatever the order events arrive in: shuffled, replayed, or backfilled.

use std::path::Path;

use scylla::client::session_builder::SessionBuilder;
use scylla::value::Row;

use crate::common::{committed_epoch, log_tail, run_env, spawn_stream, text};
use crate::kafka::{kafka_spec, new_topic, produce};
use crate::stream::{batch_reference, events};

fn cassandra() -> String {
    std::env::var("BORBOLETA_CASSANDRA").unwrap_or_else(|_| "127.0.0.1:9042".into())
}

/// The Kafka spec of `kafka.rs`, with its embedded online writer replaced by Cassandra.
fn cassandra_spec(dir: &Path, topic: &str, keyspace: &str) {
    kafka_spec(dir, topic, "");
    let spec = std::fs::read_to_string(dir.join("spec.yaml")).unwrap().replace(
        "  - {type: online_feature_store}\n",
        &format!(
            "  - type: online_feature_store\n    cassandra: {{hosts: '{}', keyspace: {keyspace}, create_keyspace: true}}\n",
            cassandra()
        ),
    );
    assert!(spec.contains("cassandra:"), "{spec}");
    std::fs::write(dir.join("spec.yaml"), spec).unwrap();
}

/// Every row of the Cassandra table as sorted JSON lines, in the feature-row column order.
async fn cassandra_rows(keyspace: &str) -> Vec<String> {
    let session = SessionBuilder::new().known_node(cassandra()).build().await.unwrap();
    // no table yet: no rows
    let Ok(result) = session
        .query_unpaged(
            format!("SELECT id, timestamp, amount, city FROM {keyspace}.stream_fs"),
            (),
        )
        .await
    else {
        return Vec::new();
    };
    let rows = result.into_rows_result().unwrap();
    let mut out = Vec::new();
    for r in rows.rows::<Row>().unwrap() {
        let r = r.unwrap();
        let cell = |i: usize| r.columns[i].clone();
        let mut obj = serde_json::Map::new();
        if let Some(scylla::value::CqlValue::BigInt(v)) = cell(0) {
            obj.insert("id".into(), v.into());
        }
        if let Some(scylla::value::CqlValue::Timestamp(t)) = cell(1) {
            let ts = chrono::DateTime::from_timestamp_millis(t.0).unwrap();
            obj.insert("timestamp".into(), ts.format("%Y-%m-%dT%H:%M:%SZ").to_string().into());
        }
        if let Some(scylla::value::CqlValue::Double(v)) = cell(2) {
            obj.insert("amount".into(), v.into());
        }
        if let Some(scylla::value::CqlValue::Text(v)) = cell(3) {
            obj.insert("city".into(), v.into());
        }
        out.push(serde_json::Value::Object(obj).to_string());
    }
    out.sort();
    out
}

/// The reference's online rows in the same shape.
fn normalize(rows: &[String]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let mut obj = serde_json::Map::new();
            obj.insert("id".into(), v["id"].clone());
            let ts = v["timestamp"].as_str().unwrap().trim_end_matches('Z');
            let ts = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S").unwrap();
            obj.insert("timestamp".into(), ts.format("%Y-%m-%dT%H:%M:%SZ").to_string().into());
            if !v["amount"].is_null() {
                obj.insert("amount".into(), v["amount"].clone());
            }
            if !v["city"].is_null() {
                obj.insert("city".into(), v["city"].clone());
            }
            serde_json::Value::Object(obj).to_string()
        })
        .collect();
    out.sort();
    out
}

/// Shuffles lines deterministically.
fn shuffled(text: &str, seed: u64) -> Vec<Option<String>> {
    let mut lines: Vec<Option<String>> = text.lines().map(|l| Some(l.to_string())).collect();
    let mut s = seed;
    for i in (1..lines.len()).rev() {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lines.swap(i, (s >> 33) as usize % (i + 1));
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_cassandra_is_latest_event_wins_through_shuffles_replays_and_backfills() {
    let topic = new_topic("cass", 3).await;
    let keyspace = format!("it_cass_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cassandra_spec(d, &topic, &keyspace);
    let args = ["run", "spec.yaml", "--available-now", "--quiet"];

    // 1. shuffled events, in several epochs
    let first = events(1, 300);
    produce(&topic, &shuffled(&first, 7));
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut all = vec![("a.jsonl".to_string(), first.clone())];
    let (_, ref_online) = batch_reference(&all).await;
    assert_eq!(
        cassandra_rows(&keyspace).await,
        normalize(&ref_online),
        "after shuffled events"
    );

    // 2. a replay of the same events and a backfill of older ones: nothing goes back in time
    let old: String = events(9, 200)
        .lines()
        .map(|l| l.replace("\"ts\":\"2024-01-0", "\"ts\":\"2023-12-0") + "\n")
        .collect();
    let mut again = shuffled(&first, 11);
    again.extend(shuffled(&old, 13));
    produce(&topic, &again);
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    all.push(("b.jsonl".to_string(), first.clone()));
    all.push(("c.jsonl".to_string(), old));
    let (_, ref_online) = batch_reference(&all).await;
    assert_eq!(
        cassandra_rows(&keyspace).await,
        normalize(&ref_online),
        "after a replay and a backfill of older dates"
    );

    // 3. newer events win, and `online get` reads them back from Cassandra
    let newer: String = events(3, 50)
        .lines()
        .map(|l| l.replace("\"ts\":\"2024-01-0", "\"ts\":\"2024-02-0") + "\n")
        .collect();
    produce(&topic, &shuffled(&newer, 17));
    let out = run_env(d, &args, &[("BORBOLETA_FAILPOINT", "before_commit@2")]);
    assert!(!out.status.success(), "the failpoint must fire");
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    all.push(("d.jsonl".to_string(), newer));
    let (_, ref_online) = batch_reference(&all).await;
    let state = cassandra_rows(&keyspace).await;
    assert_eq!(state, normalize(&ref_online), "after newer events and a crash");

    let first_id: serde_json::Value = serde_json::from_str(&state[0]).unwrap();
    let id = first_id["id"].to_string();
    let get = |d: &Path| {
        let key = format!("id={id}");
        let out = run_env(
            d,
            &["online", "get", "spec.yaml", "--key", &key, "--output", "jsonl"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let got: serde_json::Value = serde_json::from_str(&get(d)).unwrap();
    assert_eq!(got["id"].to_string(), id);
    assert_eq!(
        got["amount"], first_id["amount"],
        "online get reads Cassandra: {got} vs {first_id}"
    );

    // 4. a delete wins over every event up to now: a replay of them does not bring the key back
    let out = run_env(d, &["online", "delete", "spec.yaml", "--key", &format!("id={id}")], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(get(d), "", "deleted");
    produce(&topic, &shuffled(&all[0].1, 19));
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(get(d), "", "a replay of older events stays deleted");
}

/// An unreachable Cassandra fails at start with the host named, exit 1, nothing planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_unreachable_is_a_clear_error() {
    let topic = new_topic("cass_down", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cassandra_spec(d, &topic, "it_unreachable");
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace(&cassandra(), "127.0.0.1:1");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    produce(&topic, &[Some(events(1, 1).trim().to_string())]);
    let out = run_env(d, &["run", "spec.yaml", "--available-now"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect to Cassandra at 127.0.0.1:1"), "{err}");
    let show = run_env(d, &["checkpoint", "show", "spec.yaml"], &[]);
    let show = text(&show.stdout);
    assert!(
        show.contains("last committed epoch: none") && !show.contains("epoch 0"),
        "{show}"
    );
}

/// Butterfree's Cassandra schema-compatibility hook: an existing table whose column has another
/// type is refused (exit 2) before anything is written, and the checkpoint does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_table_with_other_types_is_refused() {
    let topic = new_topic("cass_schema", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keyspace = format!("it_schema_{}", std::process::id());
    cassandra_spec(d, &topic, &keyspace);
    let session = SessionBuilder::new().known_node(cassandra()).build().await.unwrap();
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .unwrap();
    session
        .query_unpaged(
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.stream_fs (id bigint, timestamp timestamp, amount text, city text, PRIMARY KEY ((id)))"
            ),
            (),
        )
        .await
        .unwrap();
    produce(&topic, &[Some(events(1, 1).trim().to_string())]);
    let out = run_env(d, &["run", "spec.yaml", "--available-now"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("do not fit the existing Cassandra table")
            && err.contains("`amount` is text in the table, double here"),
        "{err}"
    );
    let rows = session
        .query_unpaged(format!("SELECT id FROM {keyspace}.stream_fs"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(rows.rows_num(), 0, "nothing written");
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .unwrap();
}

/// A TCP proxy in front of Cassandra that the test can cut and restore (an outage that touches
/// no other test).
struct Proxy {
    addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (u, g) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // refused while down
                }
                let target = target.clone();
                let (u, g) = (u.clone(), g.clone());
                let born = g.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while u.load(Ordering::SeqCst) && g.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        Self { addr, up, generation }
    }
    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Cassandra unreachable for 30 s mid-stream while 10k events arrive: the checkpoint does not
/// advance while it is down, memory stays bounded, and after it returns the state equals the
/// latest event per key of everything produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_outage_mid_stream_loses_nothing() {
    let proxy = Proxy::start(cassandra()).await;
    let topic = new_topic("cass_outage", 3).await;
    let keyspace = format!("it_outage_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cassandra_spec(d, &topic, &keyspace);
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace(
            &format!("hosts: '{}'", cassandra()),
            &format!("hosts: '{}'", proxy.addr),
        )
        .replace(
            "{type: historical_feature_store}",
            "{type: historical_feature_store, commit_interval_seconds: 0}",
        );
    std::fs::write(d.join("spec.yaml"), spec).unwrap();

    let first = events(1, 500);
    produce(&topic, &shuffled(&first, 3));
    let mut child = spawn_stream(d);
    let log = log_tail;
    let committed = committed_epoch;
    let t0 = std::time::Instant::now();
    // rows reach Cassandra just before their epoch's commit record: wait for both, so that
    // `before` is the committed state the outage starts from
    while cassandra_rows(&keyspace).await.len() < 23 || committed(d).is_none() {
        assert!(t0.elapsed().as_secs() < 60, "the stream did not start writing");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let before = committed(d);
    let rss_before = rss_kib(child.id());

    proxy.cut();
    let mut all = vec![("a.jsonl".to_string(), first)];
    let mut max_rss = 0;
    for f in 0..10 {
        let batch = events(100 + f, 1000);
        produce(&topic, &shuffled(&batch, f));
        all.push((format!("o{f}.jsonl"), batch));
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        max_rss = max_rss.max(rss_kib(child.id()));
    }
    let during = committed(d);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the stream must wait, not exit:\n{}",
        log(d)
    );
    proxy.restore();

    let (ref_hist, ref_online) = batch_reference(&all).await;
    let want = normalize(&ref_online);
    let t1 = std::time::Instant::now();
    loop {
        if cassandra_rows(&keyspace).await == want {
            break;
        }
        assert!(
            t1.elapsed().as_secs() < 60,
            "state differs 60 s after Cassandra returned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let recovery = t1.elapsed();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop after the outage: {status:?}");
    // the epochs replayed after the outage were written to the historical store once
    let hist = crate::stream::parquet_rows(&d.join("feature_store/historical/user/stream_fs"));
    assert_eq!(
        hist.len(),
        ref_hist.len(),
        "historical rows: no epoch lost or written twice"
    );
    assert_eq!(hist, ref_hist);
    eprintln!(
        "outage: committed {before:?} before, {during:?} during; RSS {rss_before} KiB before, max {max_rss} KiB during; recovered in {:.1}s",
        recovery.as_secs_f64()
    );
    assert_eq!(
        before, during,
        "the checkpoint must not advance while Cassandra is down"
    );
    assert!(
        max_rss < 2 * rss_before.max(1),
        "memory during the outage: {max_rss} KiB vs {rss_before} KiB before"
    );
}

/// A batch spec over `events.jsonl` into Cassandra (and a historical table when `historical`).
fn batch_spec(keyspace: &str, name: &str, entity: &str, features: &[(&str, &str, &str)], extra_writer: &str) -> String {
    let mut select = vec!["id".to_string(), "ts".to_string()];
    let mut feats = String::new();
    for (n, dtype, expr) in features {
        select.push(format!("{expr} as {n}"));
        feats.push_str(&format!("    - {{name: {n}, dtype: {dtype}}}\n"));
    }
    format!(
        r#"readers:
  - {{id: events, type: file, path: events.jsonl, format: json, schema: {{id: bigint, ts: string, a: double, b: string}}}}
source:
  query: select {} from events
feature_set:
  name: {name}
  entity: {entity}
  keys: [{{name: id, dtype: bigint}}]
  timestamp: {{from_column: ts}}
  features:
{feats}writers:
{extra_writer}  - type: online_feature_store
    cassandra: {{hosts: '{}', keyspace: {keyspace}, create_keyspace: true}}
    WRITER_EXTRA
"#,
        select.join(", "),
        cassandra()
    )
    .replace("    WRITER_EXTRA\n", "")
}

async fn session() -> scylla::client::session::Session {
    SessionBuilder::new().known_node(cassandra()).build().await.unwrap()
}

/// `column type` of a live table, sorted (empty: no table).
async fn live_columns(keyspace: &str, table: &str) -> Vec<String> {
    system_columns(keyspace, table, "type").await
}

/// `column <what>` (`type` or `kind`) of a live table from `system_schema.columns`, sorted.
async fn system_columns(keyspace: &str, table: &str, what: &str) -> Vec<String> {
    let rows = session()
        .await
        .query_unpaged(
            format!("SELECT column_name, {what} FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?"),
            (keyspace, table),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut out: Vec<String> = rows
        .rows::<(String, String)>()
        .unwrap()
        .map(|r| {
            let (n, t) = r.unwrap();
            format!("{n} {t}")
        })
        .collect();
    out.sort();
    out
}

async fn drop_keyspace(keyspace: &str) {
    session()
        .await
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .unwrap();
}

async fn count_rows(keyspace: &str, table: &str) -> usize {
    session()
        .await
        .query_unpaged(format!("SELECT id FROM {keyspace}.{table}"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num()
}

/// `events.jsonl` with two events (ids 1 and 2) for [`batch_spec`].
fn write_two_events(dir: &Path) {
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"a\":1.5,\"b\":\"x\"}\n{\"id\":2,\"ts\":\"2024-01-02 10:00:00\",\"a\":2.5,\"b\":\"yy\"}\n",
    )
    .unwrap();
}

const HISTORICAL: &str = "  - {type: historical_feature_store}\n";

/// `migrate apply`: create from nothing (dry run first), add a feature, refuse a retype (then
/// drop and recreate with --allow-destructive), and two feature sets sharing an entity table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_apply_creates_adds_and_refuses_retypes() {
    let keyspace = format!("it_migrate_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_two_events(d);
    let v1 = batch_spec(
        &keyspace,
        "mig_fs",
        "user",
        &[("a", "double", "a"), ("b", "string", "b")],
        HISTORICAL,
    );
    std::fs::write(d.join("spec.yaml"), &v1).unwrap();

    // 1. dry run: the statements, nothing applied
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--dry-run"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "CREATE KEYSPACE IF NOT EXISTS \"{keyspace}\" WITH replication"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "CREATE TABLE IF NOT EXISTS \"{keyspace}\".\"mig_fs\" (\"id\" bigint, \"timestamp\" timestamp, \"a\" double, \"b\" text, PRIMARY KEY ((\"id\")));"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("no files yet"), "{stdout}");
    assert!(stdout.contains("dry run: 2 statement(s), nothing applied"), "{stdout}");
    assert!(live_columns(&keyspace, "mig_fs").await.is_empty(), "nothing applied");

    // 2. apply, with a log
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--write-logs", "log.jsonl"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied 2 statement(s)"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        live_columns(&keyspace, "mig_fs").await,
        ["a double", "b text", "id bigint", "timestamp timestamp"]
    );
    let log = std::fs::read_to_string(d.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.lines().all(|l| l.contains("\"status\":\"applied\"")), "{log}");
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count_rows(&keyspace, "mig_fs").await, 2);

    // 3. a new feature: the run refuses the table until it is migrated
    let v2 = batch_spec(
        &keyspace,
        "mig_fs",
        "user",
        &[("a", "double", "a"), ("b", "string", "b"), ("c", "double", "a * 2")],
        HISTORICAL,
    );
    std::fs::write(d.join("spec.yaml"), &v2).unwrap();
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`c` is not in the table") && err.contains("migrate apply"),
        "{err}"
    );
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--dry-run"], &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("ALTER TABLE \"{keyspace}\".\"mig_fs\" ADD \"c\" double;")),
        "{stdout}"
    );
    assert!(
        stdout.contains("new column `c` (Float64)"),
        "the historical table's new column: {stdout}"
    );
    let out = run_env(d, &["migrate", "apply", "spec.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    assert!(
        out.status.success(),
        "after the migration the run works: {}",
        text(&out.stderr)
    );
    let out = run_env(
        d,
        &["online", "get", "spec.yaml", "--key", "id=2", "--output", "jsonl"],
        &[],
    );
    assert!(text(&out.stdout).contains("\"c\":5.0"), "{}", text(&out.stdout));
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--dry-run"], &[]);
    assert!(
        text(&out.stdout).contains("dry run: 0 statement(s)"),
        "{}",
        text(&out.stdout)
    );

    // 4. a retyped feature: refused (Cassandra and historical both listed), nothing applied
    let v3 = |historical: &str| {
        batch_spec(
            &keyspace,
            "mig_fs",
            "user",
            &[
                ("a", "double", "a"),
                ("b", "bigint", "length(b)"),
                ("c", "double", "a * 2"),
            ],
            historical,
        )
    };
    std::fs::write(d.join("spec.yaml"), v3(HISTORICAL)).unwrap();
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--allow-destructive"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("historical") && err.contains("`b` is Utf8 in the table, Int64 in the spec"),
        "{err}"
    );
    std::fs::write(d.join("spec.yaml"), v3("")).unwrap();
    let out = run_env(d, &["migrate", "apply", "spec.yaml"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`b` is text in the table, bigint in the spec") && err.contains("--allow-destructive"),
        "{err}"
    );
    assert!(live_columns(&keyspace, "mig_fs").await.contains(&"b text".to_string()));
    assert_eq!(count_rows(&keyspace, "mig_fs").await, 2, "nothing applied");
    // ... then with --allow-destructive: a new, empty table
    let out = run_env(d, &["migrate", "apply", "spec.yaml", "--allow-destructive"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("DESTRUCTIVE") && stdout.contains("DROP TABLE IF EXISTS"),
        "{stdout}"
    );
    assert_eq!(
        live_columns(&keyspace, "mig_fs").await,
        ["a double", "b bigint", "c double", "id bigint", "timestamp timestamp"]
    );
    assert_eq!(count_rows(&keyspace, "mig_fs").await, 0);
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(
        d,
        &["online", "get", "spec.yaml", "--key", "id=2", "--output", "jsonl"],
        &[],
    );
    assert!(text(&out.stdout).contains("\"b\":2"), "{}", text(&out.stdout));

    // 5. two feature sets writing one entity table: each adds only its own columns
    let shared = d.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::copy(d.join("events.jsonl"), shared.join("events.jsonl")).unwrap();
    let entity_spec = |name: &str, feature: &str, expr: &str| {
        batch_spec(&keyspace, name, "customer", &[(feature, "double", expr)], "")
            .replace("    cassandra:", "    write_to_entity: true\n    cassandra:")
    };
    std::fs::write(shared.join("fs_x.yaml"), entity_spec("fs_x", "x", "a")).unwrap();
    std::fs::write(shared.join("fs_y.yaml"), entity_spec("fs_y", "y", "a * 10")).unwrap();
    let out = run_env(&shared, &["migrate", "apply", ".", "--dry-run"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "CREATE TABLE IF NOT EXISTS \"{keyspace}\".\"customer\" (\"id\" bigint, \"timestamp\" timestamp, \"x\" double, PRIMARY KEY ((\"id\")));"
        )) && stdout.contains(&format!("ALTER TABLE \"{keyspace}\".\"customer\" ADD \"y\" double;")),
        "{stdout}"
    );
    let out = run_env(&shared, &["migrate", "apply", "."], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for spec in ["fs_x.yaml", "fs_y.yaml"] {
        let out = run_env(&shared, &["run", spec, "--quiet"], &[]);
        assert!(out.status.success(), "{spec}: {}", text(&out.stderr));
    }
    let rows = session()
        .await
        .query_unpaged(format!("SELECT id, x, y FROM {keyspace}.customer WHERE id = 2"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (id, x, y) = rows.single_row::<(i64, Option<f64>, Option<f64>)>().unwrap();
    assert_eq!(
        (id, x, y),
        (2, Some(2.5), Some(25.0)),
        "both feature sets' columns in one row"
    );
    let out = run_env(&shared, &["migrate", "apply", "."], &[]);
    assert!(
        text(&out.stdout).contains("applied 0 statement(s)"),
        "{}",
        text(&out.stdout)
    );
    drop_keyspace(&keyspace).await;
}

/// `ttl_seconds` counts from the event time: a recent row lives ttl − age, an expired one is
/// not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_ttl_counts_from_the_event_time() {
    let keyspace = format!("it_ttl_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = chrono::Utc::now();
    let at = |secs: i64| {
        (now - chrono::Duration::seconds(secs))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    std::fs::write(
        d.join("events.jsonl"),
        format!(
            "{{\"id\":1,\"ts\":\"{}\",\"a\":1.0,\"b\":\"recent\"}}\n{{\"id\":2,\"ts\":\"{}\",\"a\":2.0,\"b\":\"old\"}}\n",
            at(600),
            at(7200)
        ),
    )
    .unwrap();
    let spec = batch_spec(
        &keyspace,
        "ttl_fs",
        "user",
        &[("a", "double", "a"), ("b", "string", "b")],
        "",
    )
    .replace("    cassandra:", "    ttl_seconds: 3600\n    cassandra:");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    let out = run_env(d, &["run", "spec.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = session()
        .await
        .query_unpaged(format!("SELECT id, TTL(a) FROM {keyspace}.ttl_fs"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let rows: Vec<(i64, Option<i32>)> = rows.rows::<(i64, Option<i32>)>().unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "the expired row is not written: {rows:?}");
    let (id, ttl) = rows[0];
    assert_eq!(id, 1);
    let ttl = ttl.unwrap();
    assert!((2900..=3000).contains(&ttl), "ttl − age ≈ 3000 s, got {ttl}");
    drop_keyspace(&keyspace).await;
}

/// The CA of the TLS endpoints of `scripts/services` (`$BORBOLETA_SERVICES_RUN/tls/ca.pem`).
pub(crate) fn services_ca() -> std::path::PathBuf {
    let run = std::env::var("BORBOLETA_SERVICES_RUN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            let cache = std::env::var("BORBOLETA_CACHE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/borboleta"));
            cache.join("services/run")
        });
    let ca = run.join("tls/ca.pem");
    assert!(
        ca.is_file(),
        "{} is missing: scripts/services up cassandra",
        ca.display()
    );
    ca
}

/// `cassandra.tls`: the writes go over TLS, verified against the services' CA; another CA is
/// refused with a clear error naming the host, exit 1, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_over_tls_verifies_the_node() {
    let keyspace = format!("it_tls_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_two_events(d);
    // a self-signed CA of our own, which did not sign the node's certificate
    let other = d.join("other-ca.pem");
    let out = std::process::Command::new("keytool")
        .args([
            "-genkeypair",
            "-alias",
            "x",
            "-keyalg",
            "EC",
            "-dname",
            "CN=other",
            "-ext",
            "bc:c",
        ])
        .args([
            "-keystore",
            &d.join("other.p12").to_string_lossy(),
            "-storepass",
            "changeit",
            "-storetype",
            "PKCS12",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = std::process::Command::new("keytool")
        .args(["-exportcert", "-rfc", "-alias", "x", "-storepass", "changeit"])
        .args([
            "-keystore",
            &d.join("other.p12").to_string_lossy(),
            "-file",
            &other.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec = |ca: &Path| {
        batch_spec(
            &keyspace,
            "tls_fs",
            "user",
            &[("a", "double", "a"), ("b", "string", "b")],
            "",
        )
        .replace(
            "create_keyspace: true}",
            &format!("create_keyspace: true, tls: {{ca_file: '{}'}}}}", ca.display()),
        )
    };
    std::fs::write(d.join("spec.yaml"), spec(&other)).unwrap();
    let out = run_env(d, &["run", "spec.yaml"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot connect to Cassandra at {}", cassandra())),
        "{err}"
    );
    assert!(live_columns(&keyspace, "tls_fs").await.is_empty(), "nothing written");

    std::fs::write(d.join("spec.yaml"), spec(&services_ca())).unwrap();
    let out = run_env(d, &["run", "spec.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count_rows(&keyspace, "tls_fs").await, 2);
    let out = run_env(
        d,
        &["online", "get", "spec.yaml", "--key", "id=2", "--output", "jsonl"],
        &[],
    );
    assert!(
        text(&out.stdout).contains("\"b\":\"yy\""),
        "read back over TLS: {}",
        text(&out.stdout)
    );
    drop_keyspace(&keyspace).await;
}

/// The production path under crashes: Kafka → stream → historical files and Cassandra. First a
/// crash at each step of the checkpoint protocol, then ≥ 20 SIGKILLs at random moments while
/// events keep being produced, then a drain: no event lost or written twice in the historical
/// store, and Cassandra equals the latest event per key of everything produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_cassandra_survives_failpoints_and_sigkills() {
    let topic = new_topic("cass_kill", 3).await;
    let keyspace = format!("it_kill_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cassandra_spec(d, &topic, &keyspace);
    let spec = std::fs::read_to_string(d.join("spec.yaml")).unwrap().replace(
        "{type: historical_feature_store}",
        "{type: historical_feature_store, commit_interval_seconds: 0}",
    );
    std::fs::write(d.join("spec.yaml"), format!("{spec}  max_rows_per_batch: 40\n")).unwrap();
    let args = ["run", "spec.yaml", "--available-now", "--quiet"];
    let mut all: Vec<(String, String)> = Vec::new();

    // 1. a crash at each protocol step (each at an epoch a few epochs ahead)
    for (i, step) in ["after_offsets", "during_writers", "before_commit", "after_commit"]
        .iter()
        .enumerate()
    {
        let batch = events(200 + i as u64, 200);
        produce(&topic, &shuffled(&batch, i as u64));
        all.push((format!("f{i}.jsonl"), batch));
        let at = committed_epoch(d).map_or(2, |e| e + 2);
        let out = run_env(d, &args, &[("BORBOLETA_FAILPOINT", &format!("{step}@{at}"))]);
        assert!(
            text(&out.stderr).contains(&format!("failpoint {step}@{at}")),
            "{step}@{at} must fire: {}",
            text(&out.stderr)
        );
        let out = run_env(d, &args, &[]);
        assert!(out.status.success(), "after {step}: {}", text(&out.stderr));
        let (_, ref_online) = batch_reference(&all).await;
        assert_eq!(cassandra_rows(&keyspace).await, normalize(&ref_online), "after {step}");
    }

    // 2. SIGKILLs while producing
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kafka sigkill test seed: {seed}");
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let before = committed_epoch(d).unwrap_or(0);
    let kills = 20;
    let mut batch_no = 0u64;
    for _ in 0..kills {
        let mut child = spawn_stream(d);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300 + rand(1200));
        while std::time::Instant::now() < deadline {
            let batch = events(300 + batch_no, 30);
            produce(&topic, &shuffled(&batch, batch_no));
            all.push((format!("k{batch_no}.jsonl"), batch));
            batch_no += 1;
            std::thread::sleep(std::time::Duration::from_millis(20 + rand(80)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let after = committed_epoch(d).unwrap_or(0);
    assert!(
        after >= before + 5,
        "the kills must hit a working stream: epochs {before} → {after}"
    );
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "drain: {}", text(&out.stderr));
    let (ref_hist, ref_online) = batch_reference(&all).await;
    let hist = crate::stream::parquet_rows(&d.join("feature_store/historical/user/stream_fs"));
    eprintln!(
        "{kills} kills, {batch_no} batches, {} events, epochs {before} → {after} before the drain",
        ref_hist.len()
    );
    assert_eq!(hist.len(), ref_hist.len(), "every event once in the historical store");
    assert_eq!(hist, ref_hist);
    assert_eq!(
        cassandra_rows(&keyspace).await,
        normalize(&ref_online),
        "Cassandra after {kills} kills"
    );
    drop_keyspace(&keyspace).await;
}

/// A Cassandra of the test's own with password authentication (`scripts/services` with
/// `CASSANDRA_AUTH=password`, other ports and run folder; superuser `cassandra`). Stopped on drop.
struct PrivateCassandra {
    run: tempfile::TempDir,
}

impl PrivateCassandra {
    const PORT: u16 = 19042;

    fn services(run: &Path, cmd: &str) -> std::process::Output {
        std::process::Command::new(crate::common::repo_root().join("scripts/services"))
            .args([cmd, "cassandra"])
            .env("BORBOLETA_SERVICES_RUN", run)
            .env("CASSANDRA_PORT", Self::PORT.to_string())
            .env("CASSANDRA_STORAGE_PORT", "17000")
            .env("CASSANDRA_JMX_PORT", "17199")
            .env("CASSANDRA_HEAP", "512M")
            .env("CASSANDRA_AUTH", "password")
            .output()
            .unwrap()
    }

    fn start() -> Self {
        let run = tempfile::tempdir().unwrap();
        let out = Self::services(run.path(), "up");
        assert!(
            out.status.success(),
            "scripts/services up cassandra (auth): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Self { run }
    }
}

impl Drop for PrivateCassandra {
    fn drop(&mut self) {
        let _ = Self::services(self.run.path(), "down");
    }
}

/// Username and password: a wrong password is a clear error naming the host (exit 1, the
/// password never printed, nothing written); the right one writes and reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_password_authentication() {
    let _cassandra = PrivateCassandra::start();
    let host = format!("127.0.0.1:{}", PrivateCassandra::PORT);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_two_events(d);
    let spec = batch_spec(
        "it_auth",
        "auth_fs",
        "user",
        &[("a", "double", "a"), ("b", "string", "b")],
        "",
    )
    .replace(
        &format!("hosts: '{}'", cassandra()),
        &format!("hosts: '{host}', username: cassandra, password: '${{CASS_TEST_PASSWORD}}'"),
    );
    assert!(spec.contains("CASS_TEST_PASSWORD"), "{spec}");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();

    let out = run_env(d, &["run", "spec.yaml"], &[("CASS_TEST_PASSWORD", "not-the-password")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to Cassandra at {host}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Authentication failed") && !stderr.contains("a retry may help"),
        "bad credentials are not retryable: {stderr}"
    );
    assert!(!stderr.contains("not-the-password") && !stdout.contains("not-the-password"));

    let env = [("CASS_TEST_PASSWORD", "cassandra")];
    let out = run_env(d, &["run", "spec.yaml"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(
        d,
        &["online", "get", "spec.yaml", "--key", "id=1", "--output", "jsonl"],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"b\":\"x\""), "{}", text(&out.stdout));
}

/// Two keys: a new table gets both in the partition key `((id, region))`; a table made the way
/// Butterfree makes it, `PRIMARY KEY (id, region)` (region a clustering column), is written and
/// read as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_composite_keys_and_butterfree_tables() {
    let keyspace = format!("it_keys_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("events.jsonl"),
        "{\"id\":1,\"region\":\"sp\",\"ts\":\"2024-01-01 10:00:00\",\"a\":1.5}\n\
         {\"id\":1,\"region\":\"rj\",\"ts\":\"2024-01-01 11:00:00\",\"a\":2.5}\n\
         {\"id\":1,\"region\":\"sp\",\"ts\":\"2024-01-02 10:00:00\",\"a\":3.5}\n\
         {\"id\":2,\"region\":\"sp\",\"ts\":\"2024-01-01 09:00:00\",\"a\":4.5}\n",
    )
    .unwrap();
    let spec = |name: &str| {
        format!(
            r#"readers:
  - {{id: events, type: file, path: events.jsonl, format: json, schema: {{id: bigint, region: string, ts: string, a: double}}}}
source:
  query: select id, region, ts, a from events
feature_set:
  name: {name}
  entity: user
  keys: [{{name: id, dtype: bigint}}, {{name: region, dtype: string}}]
  timestamp: {{from_column: ts}}
  features:
    - {{name: a, dtype: double}}
writers:
  - type: online_feature_store
    cassandra: {{hosts: '{}', keyspace: {keyspace}, create_keyspace: true}}
"#,
            cassandra()
        )
    };
    let kinds = |table: &'static str| system_columns(&keyspace, table, "kind");
    let get = |d: &Path, key: &str| {
        let out = run_env(
            d,
            &["online", "get", "spec.yaml", "--key", key, "--output", "jsonl"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };

    // a new table: both keys in the partition key
    std::fs::write(d.join("spec.yaml"), spec("keys_fs")).unwrap();
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        kinds("keys_fs").await,
        [
            "a regular",
            "id partition_key",
            "region partition_key",
            "timestamp regular"
        ]
    );
    assert_eq!(count_rows(&keyspace, "keys_fs").await, 3, "one row per (id, region)");
    assert!(
        get(d, "id=1,region=sp").contains("\"a\":3.5"),
        "the latest event of (1, sp)"
    );
    assert!(get(d, "id=1,region=rj").contains("\"a\":2.5"));

    // Butterfree's layout: region is a clustering column
    session()
        .await
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.bf_fs (id bigint, region text, timestamp timestamp, a double, PRIMARY KEY (id, region))"
            ),
            (),
        )
        .await
        .unwrap();
    std::fs::write(d.join("spec.yaml"), spec("bf_fs")).unwrap();
    let out = run_env(d, &["run", "spec.yaml", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        kinds("bf_fs").await,
        [
            "a regular",
            "id partition_key",
            "region clustering",
            "timestamp regular"
        ],
        "the table is used as it is"
    );
    assert_eq!(count_rows(&keyspace, "bf_fs").await, 3);
    assert!(get(d, "id=1,region=sp").contains("\"a\":3.5"));
    assert!(get(d, "id=2,region=sp").contains("\"a\":4.5"));
    drop_keyspace(&keyspace).await;
}
