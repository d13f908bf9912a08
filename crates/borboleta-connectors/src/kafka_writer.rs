//! `OnlineFeatureStoreWriter` into a Kafka topic (Butterfree's `KafkaConfig`).
//!
//! Each run, or each epoch of a stream, is reduced to the latest row per key by event time, as
//! for the other online stores, and each winning row is published as one message:
//! - value: the row as a JSON object (Spark's `to_json(struct(*))`, as Butterfree's
//!   `json_transform`: null fields left out, timestamps in RFC 3339, UTC);
//! - key: the key columns as a JSON object (`{"id":3}`), so one key always lands on one
//!   partition;
//! - message timestamp: the event time (ms);
//! - header `borboleta-write-ts`: the row's write timestamp (µs, the same as Cassandra's
//!   `USING TIMESTAMP`), for consumers that keep the latest event per key.
//!
//! Delivery is at least once: the session commits only when the broker acknowledged every
//! message (`acks=all`), and a replayed epoch publishes its rows again, with the same keys,
//! values and timestamps.

use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use borboleta_core::KafkaWriterConfigSpec;
use borboleta_core::naming::TIMESTAMP_COLUMN;
use borboleta_engine::sink::latest::{batch_to_json_rows, event_micros};
use borboleta_engine::{Error, LatestPerKey, Result, WriteContext, WriteMetrics, Writer, WriterSession};
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::OnceCell;

use crate::kafka::{TIMEOUT, bootstrap_servers, kafka_err};

/// The header with the row's write timestamp (µs, decimal).
pub const WRITE_TS_HEADER: &str = "borboleta-write-ts";

/// Publishes the latest feature row per key to a Kafka topic.
pub struct KafkaOnlineWriter {
    config: KafkaWriterConfigSpec,
    topic: String,
    max_future_skew_micros: i64,
    producer: OnceCell<Arc<FutureProducer>>,
}

impl std::fmt::Debug for KafkaOnlineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the options may hold credentials: only the topic is printed
        f.debug_struct("KafkaOnlineWriter")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaOnlineWriter {
    /// A writer for `config`; `table` (the feature set, or the entity) is the default topic.
    pub fn new(config: KafkaWriterConfigSpec, table: &str, max_future_skew_seconds: i64) -> Self {
        Self {
            topic: config.topic.clone().unwrap_or_else(|| table.to_string()),
            config,
            max_future_skew_micros: max_future_skew_seconds * 1_000_000,
            producer: OnceCell::new(),
        }
    }

    fn servers(&self) -> Result<String> {
        bootstrap_servers(self.config.connection_string.as_deref(), "kafka.connection_string")
    }

    /// Connects once and checks that the topic exists (a clear error naming the servers).
    async fn producer(&self) -> Result<Arc<FutureProducer>> {
        self.producer
            .get_or_try_init(|| async {
                let servers = self.servers()?;
                let mut config = ClientConfig::new();
                config
                    .set("bootstrap.servers", &servers)
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5");
                for (k, v) in &self.config.options {
                    config.set(k, v);
                }
                let producer: FutureProducer = config.create().map_err(|e| {
                    Error::spec("writers.kafka.options", format!("invalid Kafka producer settings: {e}"))
                })?;
                let topic = self.topic.clone();
                let producer = Arc::new(producer);
                let p = Arc::clone(&producer);
                let found = tokio::task::spawn_blocking(move || {
                    // every topic's metadata: asking for one topic by name would let a broker
                    // with `auto.create.topics.enable` create it
                    p.client().fetch_metadata(None, TIMEOUT).map(|md| {
                        md.topics()
                            .iter()
                            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
                    })
                })
                .await
                .map_err(|e| Error::Internal(format!("kafka metadata task: {e}")))?
                .map_err(|e| kafka_err(&format!("cannot reach Kafka at {servers}"), e))?;
                if !found {
                    return Err(Error::spec(
                        "writers.kafka.topic",
                        format!("topic `{}` not found at {servers}: create it first", self.topic),
                    ));
                }
                Ok(producer)
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Writer for KafkaOnlineWriter {
    fn name(&self) -> String {
        "online_feature_store (kafka)".into()
    }
    fn describe(&self) -> borboleta_engine::ConnectorDescription {
        borboleta_engine::ConnectorDescription {
            kind: "Online Feature Store Writer".into(),
            location: self.name(),
            detail: "Online Feature Store Writer".into(),
        }
    }

    /// A stream connects before its first epoch, so an unreachable Kafka fails at start.
    async fn recover(&self, _wctx: &WriteContext, _stream_id: &str, _last_committed: Option<u64>) -> Result<()> {
        self.producer().await.map(|_| ())
    }

    async fn begin(&self, wctx: &WriteContext, _epoch: Option<u64>) -> Result<Box<dyn WriterSession>> {
        let producer = self.producer().await?;
        let now = chrono::Utc::now().timestamp_micros();
        Ok(Box::new(KafkaSession {
            producer,
            topic: self.topic.clone(),
            keys: wctx.keys.clone(),
            latest: LatestPerKey::new(
                Arc::clone(&wctx.schema),
                &wctx.keys,
                TIMESTAMP_COLUMN,
                Some(now + self.max_future_skew_micros),
            )?,
        }))
    }
}

struct KafkaSession {
    producer: Arc<FutureProducer>,
    topic: String,
    keys: Vec<String>,
    latest: LatestPerKey,
}

#[async_trait]
impl WriterSession for KafkaSession {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.latest.push(batch)
    }

    async fn commit(self: Box<Self>) -> Result<WriteMetrics> {
        let rejected = self.latest.rejected;
        let rows = self.latest.finish()?;
        let ts_idx = rows.batch.schema().index_of(TIMESTAMP_COLUMN)?;
        let event = event_micros(rows.batch.column(ts_idx))?;
        // the message keys: the key columns as JSON objects, in key order, written by the same
        // JSON writer as the rows (not parsed back out of each row)
        let key_idx = self
            .keys
            .iter()
            .map(|k| rows.batch.schema().index_of(k))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let keys = batch_to_json_rows(&rows.batch.project(&key_idx)?)?;
        let mut messages = Vec::with_capacity(rows.json_rows.len());
        for (i, (key, row)) in keys.into_iter().zip(rows.json_rows).enumerate() {
            messages.push((key, row, event.value(i).div_euclid(1000), rows.write_timestamps[i]));
        }
        let written = messages.len() as u64;
        let producer = &self.producer;
        let topic = self.topic.as_str();
        let mut deliveries =
            futures::stream::iter(messages.into_iter().map(|(key, value, ms, wts)| async move {
                let wts = wts.to_string();
                let record = FutureRecord::to(topic).key(&key).payload(&value).timestamp(ms).headers(
                    OwnedHeaders::new().insert(Header {
                        key: WRITE_TS_HEADER,
                        value: Some(&wts),
                    }),
                );
                producer
                    .send(record, TIMEOUT)
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| kafka_err(&format!("cannot publish to {topic}"), e))
            }))
            .buffer_unordered(4096);
        while let Some(r) = deliveries.next().await {
            r?;
        }
        Ok(WriteMetrics {
            rows_written: written,
            rejected,
            detail: format!("topic {} in Kafka (latest row per key; at least once)", self.topic),
            evicted: 0,
        })
    }
}
