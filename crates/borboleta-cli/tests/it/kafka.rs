//! Kafka → streaming feature set → embedded online store and historical files, against the
//! real Kafka of `scripts/services` (127.0.0.1:9092, or `BORBOLETA_KAFKA`). Each test uses its
//! own topic. The outputs must equal a batch run over the same events (dedup off).

use std::path::Path;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::{run_env, text};
use crate::stream::{batch_reference, events, stream_outputs, write_spec};

fn servers() -> String {
    std::env::var("BORBOLETA_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub(crate) async fn new_topic(prefix: &str, partitions: i32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("it_{prefix}_{}_{nanos}", std::process::id());
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", servers())
        .create()
        .expect("kafka admin client");
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .unwrap_or_else(|e| panic!("is Kafka running at {}? (scripts/services up) {e}", servers()));
    for r in res {
        r.unwrap();
    }
    topic
}

/// Produces each line of `lines` (None = a tombstone), keyed and spread over the partitions.
pub(crate) fn produce(topic: &str, lines: &[Option<String>]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers())
        .set("linger.ms", "5")
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
    p.flush(Duration::from_secs(30)).unwrap();
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
