//! Kafka → streaming feature set → embedded online store and historical files, against the
//! real Kafka of `scripts/services` (127.0.0.1:9092, or `BORBOLETA_KAFKA`). Each test uses its
//! own topic. The outputs must equal a batch run over the same events (dedup off).

use std::path::Path;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::{committed_epoch, log_tail, run_env, spawn_stream, text};
use crate::stream::{batch_reference, events, stream_outputs, write_spec};

fn servers() -> String {
    std::env::var("BORBOLETA_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub(crate) async fn new_topic(prefix: &str, partitions: i32) -> String {
    new_topic_at(&servers(), prefix, partitions).await
}

/// A new topic on the Kafka at `servers`.
pub(crate) async fn new_topic_at(servers: &str, prefix: &str, partitions: i32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("it_{prefix}_{}_{nanos}", std::process::id());
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("kafka admin client");
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .unwrap_or_else(|e| panic!("is Kafka running at {servers}? (scripts/services up) {e}"));
    for r in res {
        r.unwrap();
    }
    topic
}

/// Produces each line of `lines` (None = a tombstone), keyed and spread over the partitions.
pub(crate) fn produce(topic: &str, lines: &[Option<String>]) {
    let p = send_all(&servers(), topic, lines);
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Queues each line of `lines` (None = a tombstone) in a producer for `servers`, keyed and
/// spread over the partitions; the caller flushes it.
pub(crate) fn send_all(servers: &str, topic: &str, lines: &[Option<String>]) -> BaseProducer {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000")
        .create()
        .unwrap();
    for (i, line) in lines.iter().enumerate() {
        let key = format!("k{}", i % 7);
        let mut rec = BaseRecord::<String, String>::to(topic).key(&key);
        if let Some(l) = line {
            rec = rec.payload(l);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(matches!(e, rdkafka::error::KafkaError::MessageProduction(_)), "{e}");
                    p.poll(Duration::from_millis(50));
                    rec = r;
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p
}

/// The streaming spec of `stream.rs`, reading the topic instead of the folder.
pub(crate) fn kafka_spec(dir: &Path, topic: &str, streaming: &str) {
    write_spec(dir, true, streaming);
    let spec = std::fs::read_to_string(dir.join("spec.yaml")).unwrap();
    let file_reader = "  - id: events\n    type: file\n    path: in\n    format: json\n    stream: true\n";
    assert!(spec.contains(file_reader), "{spec}");
    let spec = spec.replace(
        file_reader,
        &format!(
            "  - id: events\n    type: kafka\n    topic: {topic}\n    connection_string: {}\n    starting_offsets: earliest\n",
            servers()
        ),
    );
    let spec = spec.replace("    schema: {id: bigint", "    value_schema: {id: bigint");
    std::fs::write(dir.join("spec.yaml"), spec).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_stream_to_online_store_equals_batch_and_resumes() {
    let topic = new_topic("stream", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kafka_spec(d, &topic, "  max_rows_per_batch: 100\n");

    let first = events(1, 250);
    let mut lines: Vec<Option<String>> = first.lines().map(|l| Some(l.to_string())).collect();
    lines.insert(10, Some("{not json".into()));
    lines.insert(
        20,
        Some(r#"{"id":"seven","ts":"2024-01-01 10:00:00","amount":1.0,"city":1}"#.into()),
    );
    lines.insert(30, None);
    lines.insert(40, Some("[1,2]".into()));
    produce(&topic, &lines);

    let args = ["run", "spec.yaml", "--available-now", "--quiet"];
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut all = vec![("a.jsonl".to_string(), first)];
    let (hist, online) = stream_outputs(d);
    let (ref_hist, ref_online) = batch_reference(&all).await;
    assert_eq!(hist.len(), 250);
    assert_eq!(hist, ref_hist, "historical store = batch run");
    assert_eq!(online, ref_online, "online store = latest per key of the batch run");

    // every bad value is dead-lettered with its topic/partition, offset and reason
    let mut dead = Vec::new();
    for e in std::fs::read_dir(d.join("ckpt/user/stream_fs/dead_letter")).unwrap() {
        let t = std::fs::read_to_string(e.unwrap().path()).unwrap();
        dead.extend(t.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
    }
    assert_eq!(dead.len(), 4, "{dead:?}");
    for d in &dead {
        assert!(d["source"].as_str().unwrap().starts_with(&format!("{topic}/")), "{d}");
        assert!(d["position"].is_u64(), "{d}");
    }
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    for want in ["not JSON", "\"seven\" as Int64", "tombstone", "not an object"] {
        assert!(reasons.iter().any(|r| r.contains(want)), "{want}: {reasons:?}");
    }

    // more events, older and newer, to the same keys: the run resumes where it stopped
    let second = events(2, 120);
    produce(&topic, &second.lines().map(|l| Some(l.to_string())).collect::<Vec<_>>());
    let out = run_env(d, &args, &[("BORBOLETA_FAILPOINT", "during_writers@4")]);
    assert!(!out.status.success(), "the failpoint must fire");
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    all.push(("b.jsonl".to_string(), second));
    let (hist, online) = stream_outputs(d);
    let (ref_hist, ref_online) = batch_reference(&all).await;
    assert_eq!(hist.len(), 370, "no event lost or duplicated across the restart");
    assert_eq!(hist, ref_hist);
    assert_eq!(online, ref_online);

    // the committed offsets are in the reader's consumer group (for lag tools): every partition
    // at its end, as everything is committed
    let committed = group_offsets("borboleta-events", &topic, 3);
    let ends = end_offsets(&topic, 3);
    assert_eq!(committed, ends, "group offsets = end of the topic");
    assert_eq!(ends.iter().sum::<i64>(), 250 + 4 + 120);
}

/// The offsets committed to `group` for each partition of `topic` (-1: none).
pub(crate) fn group_offsets(group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            rdkafka::Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

/// The high watermark of each partition of `topic`.
pub(crate) fn end_offsets(topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers())
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1)
        .collect()
}

/// An unreachable Kafka is a clear error naming the servers, exit code 1, nothing committed.
#[test]
fn kafka_unreachable_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_spec(d, true, "");
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace(
            "  - id: events\n    type: file\n    path: in\n    format: json\n    stream: true\n",
            "  - id: events\n    type: kafka\n    topic: nowhere\n    connection_string: 127.0.0.1:1\n    options: {socket.connection.setup.timeout.ms: '2000'}\n",
        )
        .replace("    schema: {id: bigint", "    value_schema: {id: bigint");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    let out = run_env(d, &["run", "spec.yaml", "--available-now"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach Kafka at 127.0.0.1:1"), "{err}");
    assert!(!d.join("ckpt").exists(), "nothing committed");
}

/// Every message of `topic` (all partitions, from the start) once `expected` have arrived:
/// (key, value, timestamp ms, `borboleta-write-ts` header).
pub(crate) fn consume_all(topic: &str, expected: usize) -> Vec<(String, String, i64, Option<String>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers())
        .set("group.id", format!("it-reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    // wait for the expected count, then a little longer for anything unexpected
    let mut quiet_since: Option<std::time::Instant> = None;
    while t0.elapsed() < Duration::from_secs(60) {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let header = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == borboleta::connectors::kafka_writer::WRITE_TS_HEADER)
                        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                });
                out.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    m.timestamp().to_millis().unwrap_or(-1),
                    header,
                ));
            }
            Some(Err(e)) => panic!("{e}"),
            None if out.len() >= expected => {
                let q = *quiet_since.get_or_insert_with(std::time::Instant::now);
                if q.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            None => {}
        }
    }
    out
}

/// The Kafka writer (Butterfree's `KafkaConfig`) publishes the latest row per key of each run
/// or epoch as JSON, keyed by the keys, with the event time as the message timestamp and the
/// write timestamp in a header; a missing topic is a clear error before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_writer_publishes_the_latest_row_per_key() {
    let input = new_topic("kw_in", 2).await;
    let output = new_topic("kw_out", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kafka_spec(d, &input, "");
    let with_writer = |topic: &str| {
        let spec = std::fs::read_to_string(d.join("spec.yaml")).unwrap();
        let spec = spec.replace(
            "  - {type: online_feature_store}\n",
            &format!(
                "  - {{type: online_feature_store}}\n  - type: online_feature_store\n    kafka: {{topic: {topic}, connection_string: '{}', options: {{linger.ms: '0'}}}}\n",
                servers()
            ),
        );
        std::fs::write(d.join("spec.yaml"), spec).unwrap();
    };
    let first = events(1, 250);
    produce(&input, &first.lines().map(|l| Some(l.to_string())).collect::<Vec<_>>());

    // a topic that does not exist: refused at start, nothing committed
    let original = std::fs::read_to_string(d.join("spec.yaml")).unwrap();
    let missing = format!("it_no_such_topic_{}", std::process::id());
    with_writer(&missing);
    let out = run_env(d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("topic `{missing}` not found")), "{err}");
    assert!(
        !d.join("ckpt/user/stream_fs/commits").exists()
            || std::fs::read_dir(d.join("ckpt/user/stream_fs/commits"))
                .unwrap()
                .next()
                .is_none()
    );
    std::fs::write(d.join("spec.yaml"), original).unwrap();

    with_writer(&output);
    let out = run_env(d, &["run", "spec.yaml", "--available-now", "--quiet"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, ref_online) = batch_reference(&[("a.jsonl".to_string(), first)]).await;
    let got = consume_all(&output, ref_online.len());
    assert_eq!(got.len(), ref_online.len(), "one message per key: {got:?}");
    let mut values: Vec<String> = got.iter().map(|m| m.1.clone()).collect();
    values.sort();
    let mut want = ref_online.clone();
    want.sort();
    assert_eq!(values, want, "the values are the latest rows per key, as JSON");
    for (key, value, ms, header) in &got {
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        assert_eq!(key, &format!("{{\"id\":{}}}", v["id"]), "keyed by the keys");
        let event = chrono::DateTime::parse_from_rfc3339(&format!(
            "{}Z",
            v["timestamp"].as_str().unwrap().trim_end_matches('Z')
        ))
        .unwrap()
        .timestamp_millis();
        assert_eq!(*ms, event, "message timestamp = event time");
        let wts: i64 = header.as_deref().unwrap().parse().unwrap();
        assert_eq!(
            wts / 1000,
            event,
            "write timestamp header = event ms × 1000 + tie digits"
        );
    }
}

/// The SASL_SSL listener of `scripts/services` (PLAIN user `borboleta`, CA `tls/ca.pem`): the
/// reader and the Kafka writer work through it with librdkafka settings passed in `options`,
/// the password comes from the environment and is never printed, and a wrong password is a
/// clear error (exit 1, nothing committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_over_sasl_ssl_reads_and_writes() {
    let secure = std::env::var("BORBOLETA_KAFKA_SASL_SSL").unwrap_or_else(|_| "127.0.0.1:9094".into());
    let ca = crate::cassandra::services_ca();
    let input = new_topic("sasl_in", 2).await;
    let output = new_topic("sasl_out", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kafka_spec(d, &input, "");
    let options = format!(
        "{{security.protocol: SASL_SSL, sasl.mechanisms: PLAIN, sasl.username: borboleta, sasl.password: '${{KAFKA_TEST_PASSWORD}}', ssl.ca.location: '{}'}}",
        ca.display()
    );
    let spec = std::fs::read_to_string(d.join("spec.yaml")).unwrap();
    let spec = spec
        .replace(
            &format!("    connection_string: {}\n", servers()),
            &format!("    connection_string: '{secure}'\n    options: {options}\n"),
        )
        .replace(
            "  - {type: online_feature_store}\n",
            &format!(
                "  - {{type: online_feature_store}}\n  - type: online_feature_store\n    kafka: {{topic: {output}, connection_string: '{secure}', options: {options}}}\n"
            ),
        );
    assert!(spec.contains("SASL_SSL"), "{spec}");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    let first = events(1, 120);
    produce(&input, &first.lines().map(|l| Some(l.to_string())).collect::<Vec<_>>());

    let args = ["run", "spec.yaml", "--available-now"];
    let out = run_env(d, &args, &[("KAFKA_TEST_PASSWORD", "wrong-password")]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot reach Kafka at {secure}")), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    assert!(
        !d.join("ckpt/user/stream_fs/commits").exists()
            || std::fs::read_dir(d.join("ckpt/user/stream_fs/commits"))
                .unwrap()
                .next()
                .is_none(),
        "nothing committed"
    );

    let env = [("KAFKA_TEST_PASSWORD", "borboleta-secret")];
    let out = run_env(d, &args, &env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("borboleta-secret") && !stderr.contains("borboleta-secret"));
    let out = run_env(d, &["explain", "spec.yaml"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("borboleta-secret"), "{}", text(&out.stdout));
    // (the outputs are read in this process, which has no password to expand)
    let spec = std::fs::read_to_string(d.join("spec.yaml")).unwrap();
    std::fs::write(d.join("spec.yaml"), spec.replace("${KAFKA_TEST_PASSWORD}", "-")).unwrap();
    let (hist, online) = stream_outputs(d);
    let (ref_hist, ref_online) = batch_reference(&[("a.jsonl".to_string(), first)]).await;
    assert_eq!(hist, ref_hist, "read over SASL_SSL = batch run");
    assert_eq!(online, ref_online);
    let got = consume_all(&output, ref_online.len());
    let mut values: Vec<String> = got.into_iter().map(|m| m.1).collect();
    values.sort();
    let mut want = ref_online.clone();
    want.sort();
    assert_eq!(values, want, "published over SASL_SSL");
}

/// A Kafka broker of its own (`scripts/services` with other ports and run folder), so that a
/// test can stop and restart it without touching the other tests' broker. Stopped on drop.
struct PrivateKafka {
    run: tempfile::TempDir,
    port: u16,
}

impl PrivateKafka {
    fn services(&self, cmd: &str) {
        let out = std::process::Command::new(crate::common::repo_root().join("scripts/services"))
            .args([cmd, "kafka"])
            .env("BORBOLETA_SERVICES_RUN", self.run.path())
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string())
            .env("KAFKA_SASL_SSL_PORT", (self.port + 2).to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/services {cmd} kafka: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    fn start() -> Self {
        let k = Self {
            run: tempfile::tempdir().unwrap(),
            port: 19092,
        };
        k.services("up");
        k
    }
    fn servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = std::process::Command::new(crate::common::repo_root().join("scripts/services"))
            .args(["down", "kafka"])
            .env("BORBOLETA_SERVICES_RUN", self.run.path())
            .output();
    }
}

/// The broker stopped mid-stream while 10k events are produced, then restarted: the stream
/// waits (it does not exit), its checkpoint does not advance while the broker is down, memory
/// stays bounded, and within 60 s of the broker's return the outputs equal the batch run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_restart_mid_stream_loses_nothing() {
    let kafka = PrivateKafka::start();
    let topic = new_topic_at(&kafka.servers(), "restart", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kafka_spec(d, &topic, "");
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace(
            &format!("connection_string: {}", servers()),
            &format!("connection_string: '{}'", kafka.servers()),
        )
        .replace(
            "{type: historical_feature_store}",
            "{type: historical_feature_store, commit_interval_seconds: 0}",
        );
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    let first = events(1, 500);
    let lines = |t: &str| t.lines().map(|l| Some(l.to_string())).collect::<Vec<_>>();
    send_all(&kafka.servers(), &topic, &lines(&first))
        .flush(Duration::from_secs(30))
        .unwrap();

    let mut child = spawn_stream(d);
    let log = log_tail;
    let committed = committed_epoch;
    let t0 = std::time::Instant::now();
    let mut all = vec![("a.jsonl".to_string(), first)];
    let (_, ref_first) = batch_reference(&all).await;
    while committed(d).is_none() || stream_outputs(d).1 != ref_first {
        assert!(
            t0.elapsed().as_secs() < 60,
            "the stream did not read the first events:\n{}",
            log(d)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = committed(d);
    let rss_before = crate::cassandra::rss_kib(child.id());

    kafka.services("down");
    let mut producers = Vec::new();
    let mut max_rss = 0;
    for f in 0..10 {
        let batch = events(100 + f, 1000);
        producers.push(send_all(&kafka.servers(), &topic, &lines(&batch)));
        all.push((format!("o{f}.jsonl"), batch));
        tokio::time::sleep(Duration::from_secs(2)).await;
        max_rss = max_rss.max(crate::cassandra::rss_kib(child.id()));
    }
    let during = committed(d);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the stream must wait, not exit:\n{}",
        log(d)
    );
    kafka.services("up");
    let t1 = std::time::Instant::now();
    for p in producers {
        p.flush(Duration::from_secs(60)).unwrap();
    }

    let (ref_hist, ref_online) = batch_reference(&all).await;
    loop {
        let (hist, online) = stream_outputs(d);
        if hist == ref_hist && online == ref_online {
            break;
        }
        assert!(
            t1.elapsed().as_secs() < 60,
            "outputs differ 60 s after the broker returned ({} of {} historical rows):\n{}",
            hist.len(),
            ref_hist.len(),
            log(d)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovery = t1.elapsed();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful stop after the restart: {status:?}\n{}",
        log(d)
    );
    eprintln!(
        "broker restart: committed {before:?} before, {during:?} during; RSS {rss_before} KiB before, max {max_rss} KiB during; equal {:.1}s after the restart began",
        recovery.as_secs_f64()
    );
    assert_eq!(
        before, during,
        "the checkpoint must not advance while the broker is down"
    );
    assert!(
        max_rss < 2 * rss_before.max(1),
        "memory during the outage: {max_rss} KiB vs {rss_before} KiB before"
    );
}

/// `rows read` of a stream run's summary line.
fn rows_read(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("stream stopped: ")?;
            let part = rest.split(", ").find(|p| p.ends_with("rows read"))?;
            part.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no summary in: {stderr}"))
}

/// Bounded reads with per-partition and by-time offsets (exact ranges, checked by partition and
/// offset), a stream starting at `latest`, and `checkpoint reset --to-time` on a Kafka stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_offsets_by_partition_time_and_latest() {
    let topic = new_topic("offsets", 2).await;
    let lines = |t: &str| t.lines().map(|l| Some(l.to_string())).collect::<Vec<_>>();
    produce(&topic, &lines(&events(1, 40)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    produce(&topic, &lines(&events(2, 20)));
    let ends = end_offsets(&topic, 2);
    assert_eq!(ends.iter().sum::<i64>(), 60);

    // bounded: (partition, rows, first offset, last offset) of what one read returns
    let bounded = |starting: String, ending: String| {
        let topic = topic.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            write_spec(dir.path(), false, "");
            let spec = std::fs::read_to_string(dir.path().join("spec.yaml")).unwrap();
            let file_reader = "  - id: events\n    type: file\n    path: in\n    format: json\n    stream: false\n";
            assert!(spec.contains(file_reader), "{spec}");
            let spec = spec
                .replace(
                    file_reader,
                    &format!(
                        "  - id: events\n    type: kafka\n    topic: {topic}\n    connection_string: '{}'\n    stream: false\n    starting_offsets: {starting}\n    ending_offsets: {ending}\n",
                        servers()
                    ),
                )
                .replace("    schema: {id: bigint", "    value_schema: {id: bigint");
            std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
            let spec = borboleta::FeatureSetPipelineSpec::parse_yaml_file(dir.path().join("spec.yaml")).unwrap();
            let p = borboleta::build_pipeline(spec, &borboleta::PipelineOptions::default())
                .await
                .unwrap();
            let batches = p
                .sql(
                    "select kafka_metadata['partition'] as p, count(*) as n, \
                     min(kafka_metadata['offset']) as lo, max(kafka_metadata['offset']) as hi \
                     from events group by 1 order by 1",
                )
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let mut out = Vec::new();
            for b in batches {
                use arrow::array::AsArray;
                use arrow::datatypes::{Int32Type, Int64Type};
                for r in 0..b.num_rows() {
                    out.push((
                        b.column(0).as_primitive::<Int32Type>().value(r),
                        b.column(1).as_primitive::<Int64Type>().value(r),
                        b.column(2).as_primitive::<Int64Type>().value(r),
                        b.column(3).as_primitive::<Int64Type>().value(r),
                    ));
                }
            }
            out
        }
    };
    let (s0, s1, e0, e1) = (ends[0] / 4, ends[1] / 4, ends[0] / 2, ends[1] / 2);
    let got = bounded(format!("{{'0': {s0}, '1': {s1}}}"), format!("{{'0': {e0}, '1': {e1}}}")).await;
    let want: Vec<(i32, i64, i64, i64)> = [(0, s0, e0), (1, s1, e1)]
        .into_iter()
        .filter(|(_, s, e)| e > s)
        .map(|(p, s, e)| (p, e - s, s, e - 1))
        .collect();
    assert_eq!(got, want, "per-partition [start, end) of {ends:?}");
    let got = bounded("earliest".into(), "latest".into()).await;
    assert_eq!(got.iter().map(|g| g.1).sum::<i64>(), 60, "{got:?}");
    let got = bounded(format!("{{timestamp: '{}'}}", t.to_rfc3339()), "latest".into()).await;
    assert_eq!(
        got.iter().map(|g| g.1).sum::<i64>(),
        20,
        "the messages after {t}: {got:?}"
    );

    // a stream from `latest`: what was there before its first run is skipped
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kafka_spec(d, &topic, "");
    let spec = std::fs::read_to_string(d.join("spec.yaml"))
        .unwrap()
        .replace("    starting_offsets: earliest\n", "    starting_offsets: latest\n");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    let args = ["run", "spec.yaml", "--available-now"];
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rows_read(&text(&out.stderr)), 0, "latest: nothing old");
    produce(&topic, &lines(&events(3, 15)));
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rows_read(&text(&out.stderr)), 15, "only what came after the start");

    // checkpoint reset --to-time: everything after `t` again (the second batch and the 15)
    let out = run_env(
        d,
        &["checkpoint", "reset", "spec.yaml", "--to-time", &t.to_rfc3339()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rows_read(&text(&out.stderr)), 35, "read again from {t}");
}
