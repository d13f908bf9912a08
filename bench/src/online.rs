//! Cases (d) and (e): Kafka → row-level features → Cassandra, and online lookups.
//!
//! - `produce`: preloads a topic with events of the (c) schema (`id`, `ts`, `amount`,
//!   `category`), `ids` distinct keys, event times increasing by 1 ms.
//! - `freshness`: starts the CLI's stream on a topic, produces a steady rate with `linger.ms=0`,
//!   and a probe reads one sampled key at a time through [`borboleta::OnlineLookup`] every 1 ms
//!   until the event's value is there: the latency is from the send to the first read that sees
//!   it.
//! - `lookup`: 10k lookups over one warm [`borboleta::OnlineLookup`], 1 or 100 keys per call.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::round;

/// One event of the (c) schema as JSON: `amount` = `seq` so a probe can tell events apart.
fn event(id: u64, ts_ms: i64, seq: u64) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        "{{\"id\":{id},\"ts\":\"{ts}\",\"amount\":{seq}.0,\"category\":\"cat_{:02}\"}}",
        seq % 15
    )
}

/// The key of event `i` of `ids` keys: every key once per `ids` events, in a scattered order.
fn key_of(i: u64, ids: u64) -> u64 {
    (i % ids).wrapping_mul(2_654_435_761) % ids
}

async fn create_topic(servers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", servers).create()?;
    let res = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for r in res {
        r.map_err(|(t, e)| anyhow::anyhow!("cannot create topic {t}: {e}"))?;
    }
    Ok(())
}

fn producer(servers: &str, linger_ms: &str) -> Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", linger_ms)
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4")
        .create()?)
}

fn send(p: &BaseProducer, topic: &str, key: &str, value: &str) {
    let mut rec = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                p.poll(Duration::from_millis(10)); // queue full: let deliveries drain
                rec = r;
            }
        }
    }
}

/// `produce`: a new topic with `events` events over `ids` keys.
pub async fn produce(servers: &str, topic: &str, events: u64, ids: u64, partitions: i32) -> Result<serde_json::Value> {
    create_topic(servers, topic, partitions).await?;
    let p = producer(servers, "50")?;
    let t0 = Instant::now();
    let base = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")?.timestamp_millis();
    for i in 0..events {
        let id = key_of(i, ids);
        send(&p, topic, &id.to_string(), &event(id, base + i as i64, i));
        if i % 10_000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(300))?;
    Ok(serde_json::json!({
        "events": events,
        "ids": ids,
        "seconds": round(t0.elapsed().as_secs_f64(), 3),
    }))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    serde_json::json!({
        "count": v.len(),
        "p50_ms": round(quantile(&v, 0.5), 3),
        "p99_ms": round(quantile(&v, 0.99), 3),
        "max_ms": round(v.last().copied().unwrap_or(f64::NAN), 3),
        "mean_ms": round(mean, 3),
    })
}

/// `lookup`: `calls` lookups of `batch` keys (drawn from `0..ids`) over one warm connection.
pub async fn lookup(spec: &Path, ids: u64, calls: usize, batch: usize) -> Result<serde_json::Value> {
    let spec = borboleta::FeatureSetPipelineSpec::parse_yaml_file(spec)?;
    let t0 = Instant::now();
    let client = borboleta::OnlineLookup::connect(&spec).await?;
    let connect_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut seed: u64 = 42;
    let mut next_keys = || -> Vec<Vec<(String, String)>> {
        (0..batch)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                vec![("id".to_string(), ((seed >> 33) % ids).to_string())]
            })
            .collect()
    };
    for _ in 0..200 {
        client.get(&next_keys()).await?; // warm-up
    }
    let mut lat = Vec::with_capacity(calls);
    let mut rows = 0;
    for _ in 0..calls {
        let keys = next_keys();
        let t = Instant::now();
        let b = client.get(&keys).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        rows += b.num_rows();
    }
    if rows == 0 {
        bail!("no key found: is the table filled (case d)?");
    }
    let mut out = summary(lat);
    out["keys_per_call"] = batch.into();
    out["rows_found"] = rows.into();
    out["connect_ms"] = round(connect_ms, 1).into();
    Ok(out)
}

/// `freshness`: see the module docs.
#[allow(clippy::too_many_arguments)]
pub async fn freshness(
    borboleta: &Path,
    spec: &Path,
    servers: &str,
    topic: &str,
    rate: u64,
    seconds: u64,
    ids: u64,
    warmup: u64,
) -> Result<serde_json::Value> {
    create_topic(servers, topic, 3).await?;
    let p = producer(servers, "0")?;
    // the stream, as a separate process (its own CPU and memory)
    let log = std::fs::File::create(spec.with_extension("log"))?;
    let mut child = std::process::Command::new(borboleta)
        .args(["run", &spec.display().to_string(), "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", borboleta.display()))?;
    let spec_doc = borboleta::FeatureSetPipelineSpec::parse_yaml_file(spec)?;
    let result = async {
        let client = loop {
            // the stream creates the table when it starts
            match borboleta::OnlineLookup::connect(&spec_doc).await {
                Ok(c) => break c,
                Err(_) if child.try_wait()?.is_none() => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => bail!("the stream exited: {e}"),
            }
        };
        let period = Duration::from_secs_f64(1.0 / rate as f64);
        let total = rate * (seconds + warmup);
        let t0 = Instant::now();
        let mut lat = Vec::new();
        // the probe: (key, seq, sent at) of the event being waited for
        let mut probe: Option<(u64, u64, Instant)> = None;
        let mut last_poll = Instant::now();
        let mut sent = 0u64;
        while sent < total || probe.is_some() {
            let due = if sent < total {
                (t0.elapsed().as_secs_f64() * rate as f64) as u64
            } else {
                sent
            };
            while sent < due.min(total) {
                let id = key_of(sent, ids);
                let now_ms = chrono::Utc::now().timestamp_millis();
                send(&p, topic, &id.to_string(), &event(id, now_ms, sent));
                if probe.is_none() && sent >= rate * warmup {
                    probe = Some((id, sent, Instant::now()));
                }
                sent += 1;
            }
            p.poll(Duration::ZERO);
            if let Some((id, seq, at)) = probe
                && last_poll.elapsed() >= Duration::from_millis(1)
            {
                last_poll = Instant::now();
                let b = client.get(&[vec![("id".to_string(), id.to_string())]]).await?;
                let seen = b
                    .column_by_name("amount_x2")
                    .map(|c| {
                        let c = c.as_primitive::<Float64Type>();
                        !c.is_empty() && !c.is_null(0) && c.value(0) >= 2.0 * seq as f64
                    })
                    .unwrap_or(false);
                if seen {
                    lat.push(at.elapsed().as_secs_f64() * 1e3);
                    probe = None;
                } else if at.elapsed() > Duration::from_secs(30) {
                    bail!("event {seq} of key {id} not visible after 30 s");
                }
            }
            tokio::time::sleep(period.min(Duration::from_micros(200))).await;
        }
        p.flush(Duration::from_secs(30))?;
        let mut out = summary(lat);
        out["events"] = sent.into();
        out["rate_per_s"] = rate.into();
        out["achieved_rate_per_s"] = round(sent as f64 / t0.elapsed().as_secs_f64(), 1).into();
        Ok(out)
    }
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait()?;
    let mut out = result?;
    out["stream_exit"] = status.code().into();
    Ok(out)
}

/// The spec of cases (d)/(e) with its placeholders filled in.
pub fn kafka_cassandra_spec(
    servers: &str,
    topic: &str,
    keyspace: &str,
    cassandra: &str,
    checkpoint: &Path,
    max_rows: u64,
) -> String {
    include_str!("../specs/kafka_cassandra.yaml")
        .replace("@SERVERS@", servers)
        .replace("@TOPIC@", topic)
        .replace("@KEYSPACE@", keyspace)
        .replace("@CASSANDRA@", cassandra)
        .replace("@CHECKPOINT@", &checkpoint.display().to_string())
        .replace("@MAX_ROWS@", &max_rows.to_string())
}

/// Writes the spec into `dir/spec.yaml` and returns its path.
pub fn write_spec(dir: &Path, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("spec.yaml");
    std::fs::write(&path, text)?;
    Ok(path)
}
