//! `KafkaReader`: Butterfree's Kafka reader on rdkafka.
//!
//! The JSON value of each message is parsed with `value_schema` into columns, followed by the
//! `kafka_metadata` column (key, topic, value, partition, offset, timestamp, timestampType), as
//! in Butterfree. Partitions are assigned explicitly (no group rebalancing, auto-commit off):
//! a range is `{"<topic>/<partition>": [start, end)}` and the position is the next offset of
//! each partition, both kept in the checkpoint. A value that is not a JSON object of the schema
//! is a bad record (topic/partition, offset, reason). With `stream: false` the reader reads the
//! bounded range `[starting_offsets, ending_offsets)` once, as a table.
//!
//! Over 600 lines: the Kafka reader is one protocol (offset ranges, bounded and streaming reads, decoding, consumer-group commits).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use borboleta_core::{KafkaOffsetsSpec, KafkaReaderSpec};
use borboleta_engine::{BadRecord, Error, Reader, Result, StreamChunk, StreamReader};
use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Environment variable with the bootstrap servers, as in Butterfree.
pub const CONNECTION_ENV: &str = "KAFKA_CONSUMER_CONNECTION_STRING";

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn kafka_err(context: &str, e: impl Into<borboleta_engine::error::BoxError>) -> Error {
    Error::external_caused("kafka", true, context, e)
}

/// The bootstrap servers: `given` (the spec's `connection_string` at `path`), else Butterfree's
/// environment variable.
pub(crate) fn bootstrap_servers(given: Option<&str>, path: &str) -> Result<String> {
    given
        .map(str::to_string)
        .or_else(|| std::env::var(CONNECTION_ENV).ok())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::spec(path, format!("no Kafka servers: set `{path}` or {CONNECTION_ENV}")))
}

/// A Kafka reader (streaming or bounded).
pub struct KafkaReader {
    spec: KafkaReaderSpec,
    inner: Arc<KafkaStream>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // options may hold credentials: never printed
        f.debug_struct("KafkaReader")
            .field("id", &self.spec.id)
            .field("topic", &self.spec.topic)
            .finish_non_exhaustive()
    }
}

/// The streaming side of [`KafkaReader`].
pub struct KafkaStream {
    spec: KafkaReaderSpec,
    consumer: Mutex<Option<Arc<BaseConsumer>>>,
    schema: SchemaRef,
    /// Next offset per `topic/partition`.
    position: Mutex<BTreeMap<String, i64>>,
}

impl std::fmt::Debug for KafkaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStream")
            .field("id", &self.spec.id)
            .finish_non_exhaustive()
    }
}

impl KafkaReader {
    /// A reader for `spec`.
    pub fn new(spec: KafkaReaderSpec) -> Self {
        Self {
            inner: Arc::new(KafkaStream::new(spec.clone())),
            spec,
        }
    }
}

/// The `kafka_metadata` struct fields, as Butterfree's.
fn metadata_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("topic", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("timestampType", DataType::Int32, true),
    ])
}

/// One message as read.
struct Msg {
    key: Option<String>,
    topic: String,
    value: Option<String>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    timestamp_type: i32,
}

fn parse_tp(tp: &str) -> Result<(&str, i32)> {
    let (t, p) = tp
        .rsplit_once('/')
        .ok_or_else(|| Error::Internal(format!("kafka range key `{tp}`")))?;
    Ok((
        t,
        p.parse()
            .map_err(|_| Error::Internal(format!("kafka range key `{tp}`")))?,
    ))
}

impl KafkaStream {
    fn new(spec: KafkaReaderSpec) -> Self {
        let mut fields: Vec<Field> = spec
            .value_schema
            .0
            .iter()
            .map(|(n, t)| Field::new(n, t.to_arrow(), true))
            .collect();
        fields.push(Field::new("kafka_metadata", DataType::Struct(metadata_fields()), true));
        Self {
            schema: Arc::new(Schema::new(fields)),
            spec,
            consumer: Mutex::default(),
            position: Mutex::default(),
        }
    }

    fn servers(&self) -> Result<String> {
        bootstrap_servers(self.spec.connection_string.as_deref(), "connection_string")
    }

    fn consumer(&self) -> Result<Arc<BaseConsumer>> {
        self.consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Internal("kafka reader used before open".into()))
    }

    /// Connects and checks that every topic exists (a clear error naming the servers).
    fn connect(&self) -> Result<()> {
        let servers = self.servers()?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &servers)
            .set("group.id", format!("borboleta-{}", self.spec.id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        for (k, v) in &self.spec.options {
            config.set(k, v);
        }
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| Error::spec("options", format!("invalid Kafka client settings: {e}")))?;
        for topic in self.spec.topic.to_vec() {
            let md = consumer
                .fetch_metadata(Some(&topic), TIMEOUT)
                .map_err(|e| kafka_err(&format!("cannot reach Kafka at {servers}"), e))?;
            let ok = md
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !ok {
                return Err(Error::spec("topic", format!("topic `{topic}` not found at {servers}")));
            }
        }
        *self.consumer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(consumer));
        Ok(())
    }

    /// Every `topic/partition` with its (low, high) watermarks.
    fn watermarks(&self) -> Result<BTreeMap<String, (i64, i64)>> {
        let consumer = self.consumer()?;
        let mut out = BTreeMap::new();
        for topic in self.spec.topic.to_vec() {
            let md = consumer
                .fetch_metadata(Some(&topic), TIMEOUT)
                .map_err(|e| kafka_err("cannot read topic metadata", e))?;
            for t in md.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    let w = consumer
                        .fetch_watermarks(&topic, p.id(), TIMEOUT)
                        .map_err(|e| kafka_err("cannot read offsets", e))?;
                    out.insert(format!("{topic}/{}", p.id()), w);
                }
            }
        }
        Ok(out)
    }

    /// Resolves `earliest`/`latest`/time/per-partition offsets for the given partitions.
    fn resolve(
        &self,
        spec: Option<&KafkaOffsetsSpec>,
        marks: &BTreeMap<String, (i64, i64)>,
        default_latest: bool,
    ) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        match spec {
            None => {
                for (tp, (low, high)) in marks {
                    out.insert(tp.clone(), if default_latest { *high } else { *low });
                }
            }
            Some(KafkaOffsetsSpec::Named(n)) => {
                let latest = n == "latest";
                for (tp, (low, high)) in marks {
                    out.insert(tp.clone(), if latest { *high } else { *low });
                }
            }
            Some(KafkaOffsetsSpec::Partitions(map)) => {
                for (tp, (low, high)) in marks {
                    let (_, p) = parse_tp(tp)?;
                    let o = map
                        .get(&p.to_string())
                        .copied()
                        .unwrap_or(if default_latest { *high } else { *low });
                    out.insert(tp.clone(), o.clamp(*low, *high));
                }
            }
            Some(KafkaOffsetsSpec::Time { timestamp }) => {
                let ms = DateTime::parse_from_rfc3339(timestamp)
                    .map_err(|e| Error::spec("starting_offsets.timestamp", e.to_string()))?
                    .timestamp_millis();
                let mut tpl = TopicPartitionList::new();
                for tp in marks.keys() {
                    let (t, p) = parse_tp(tp)?;
                    tpl.add_partition_offset(t, p, Offset::Offset(ms))
                        .map_err(|e| kafka_err("offsets", e))?;
                }
                let found = self
                    .consumer()?
                    .offsets_for_times(tpl, TIMEOUT)
                    .map_err(|e| kafka_err("cannot look up offsets by time", e))?;
                for e in found.elements() {
                    let tp = format!("{}/{}", e.topic(), e.partition());
                    let high = marks.get(&tp).map_or(0, |m| m.1);
                    let o = match e.offset() {
                        Offset::Offset(o) => o,
                        _ => high, // no message at or after the time
                    };
                    out.insert(tp, o);
                }
            }
        }
        Ok(out)
    }

    /// Reads `[start, end)` of every partition of `range`.
    async fn fetch(&self, range: &BTreeMap<String, (i64, i64)>) -> Result<Vec<Msg>> {
        let consumer = self.consumer()?;
        let range = range.clone();
        let self_id = self.spec.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            let mut wanted = BTreeMap::new();
            for (tp, (start, end)) in &range {
                if end > start {
                    let (t, p) = parse_tp(tp)?;
                    tpl.add_partition_offset(t, p, Offset::Offset(*start))
                        .map_err(|e| kafka_err("assign", e))?;
                    wanted.insert((t.to_string(), p), *end);
                }
            }
            let mut out = Vec::new();
            if wanted.is_empty() {
                return Ok(out);
            }
            consumer.assign(&tpl).map_err(|e| kafka_err("assign", e))?;
            let mut idle = std::time::Instant::now();
            let mut last_error: Option<String> = None;
            while !wanted.is_empty() {
                if idle.elapsed() > Duration::from_secs(30) {
                    return Err(kafka_err(
                        "read",
                        format!(
                            "no progress for 30 s; still waiting for {wanted:?}{}",
                            last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
                        ),
                    ));
                }
                match consumer.poll(Duration::from_millis(100)) {
                    None => {}
                    // librdkafka reports a lost connection and the like here and reconnects by
                    // itself: a blip is not a failure, 30 s without progress is
                    Some(Err(e)) => {
                        tracing::debug!(reader = %self_id, "kafka read: {e}");
                        last_error = Some(e.to_string());
                    }
                    Some(Ok(m)) => {
                        idle = std::time::Instant::now();
                        let key = (m.topic().to_string(), m.partition());
                        let Some(end) = wanted.get(&key).copied() else { continue };
                        if m.offset() >= end {
                            wanted.remove(&key);
                            continue;
                        }
                        let (timestamp, timestamp_type) = match m.timestamp() {
                            rdkafka::Timestamp::NotAvailable => (None, -1),
                            rdkafka::Timestamp::CreateTime(t) => (Some(t), 0),
                            rdkafka::Timestamp::LogAppendTime(t) => (Some(t), 1),
                        };
                        out.push(Msg {
                            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                            topic: m.topic().to_string(),
                            value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                            partition: m.partition(),
                            offset: m.offset(),
                            timestamp,
                            timestamp_type,
                        });
                        if m.offset() + 1 >= end {
                            wanted.remove(&key);
                        }
                    }
                }
            }
            consumer
                .assign(&TopicPartitionList::new())
                .map_err(|e| kafka_err("unassign", e))?;
            Ok(out)
        })
        .await
        .map_err(|e| Error::Internal(format!("kafka read task: {e}")))?
    }

    /// Turns messages into rows; values that do not parse are bad records.
    fn decode(&self, msgs: Vec<Msg>) -> Result<StreamChunk> {
        let value_schema = Arc::new(Schema::new(
            self.schema.fields()[..self.schema.fields().len() - 1].to_vec(),
        ));
        let mut chunk = StreamChunk::default();
        let mut good = Vec::new();
        let mut rows: Vec<RecordBatch> = Vec::new();
        // Fast path: every value decoded in one go; on any problem, message by message.
        let mut buf = Vec::new();
        for m in &msgs {
            buf.extend_from_slice(m.value.as_deref().unwrap_or("null").as_bytes());
            buf.push(b'\n');
        }
        if msgs.iter().all(|m| m.value.is_some())
            && let Ok(b) = crate::json::decode_json(&value_schema, &buf)
            && b.iter().map(RecordBatch::num_rows).sum::<usize>() == msgs.len()
        {
            rows = b;
            good = msgs;
        } else {
            for m in msgs {
                let reason = match &m.value {
                    None => Some("the message has no value (a tombstone)".to_string()),
                    Some(v) => match serde_json::from_str::<Value>(v) {
                        Ok(Value::Object(_)) => match crate::json::decode_json(&value_schema, v.as_bytes()) {
                            Ok(b) => {
                                rows.extend(b);
                                None
                            }
                            Err(e) => Some(e),
                        },
                        Ok(_) => Some("the value is JSON but not an object".into()),
                        Err(e) => Some(format!("the value is not JSON: {e}")),
                    },
                };
                match reason {
                    Some(reason) => chunk.bad_records.push(BadRecord {
                        reader: self.spec.id.clone(),
                        source: format!("{}/{}", m.topic, m.partition),
                        position: u64::try_from(m.offset).ok(),
                        reason,
                        record: m.value.unwrap_or_default(),
                    }),
                    None => good.push(m),
                }
            }
        }
        if good.is_empty() {
            return Ok(chunk);
        }
        let values = arrow::compute::concat_batches(&value_schema, &rows)?;
        let meta: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(
                good.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                good.iter().map(|m| Some(m.topic.clone())).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                good.iter().map(|m| m.value.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(good.iter().map(|m| m.partition).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(good.iter().map(|m| m.offset).collect::<Vec<_>>())),
            Arc::new(
                TimestampMillisecondArray::from(good.iter().map(|m| m.timestamp).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(Int32Array::from(
                good.iter().map(|m| m.timestamp_type).collect::<Vec<_>>(),
            )),
        ];
        let meta = StructArray::try_new(metadata_fields(), meta, None)?;
        let mut cols = values.columns().to_vec();
        cols.push(Arc::new(meta));
        chunk
            .batches
            .push(RecordBatch::try_new(Arc::clone(&self.schema), cols)?);
        Ok(chunk)
    }

    fn range_of(v: &Value) -> Result<BTreeMap<String, (i64, i64)>> {
        serde_json::from_value(v.clone()).map_err(|e| Error::Internal(format!("kafka range: {e}")))
    }
}

#[async_trait]
impl StreamReader for KafkaStream {
    fn id(&self) -> &str {
        &self.spec.id
    }

    async fn open(&self, _ctx: &SessionContext) -> Result<SchemaRef> {
        self.connect()?;
        Ok(Arc::clone(&self.schema))
    }

    fn position(&self) -> Value {
        serde_json::to_value(&*self.position.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or_default()
    }

    fn restore(&self, position: &Value) -> Result<()> {
        let p: BTreeMap<String, i64> =
            serde_json::from_value(position.clone()).map_err(|e| Error::Internal(format!("kafka position: {e}")))?;
        *self.position.lock().unwrap_or_else(|e| e.into_inner()) = p;
        Ok(())
    }

    fn advance(&self, range: &Value) -> Result<()> {
        let r = Self::range_of(range)?;
        let mut pos = self.position.lock().unwrap_or_else(|e| e.into_inner());
        for (tp, (_, end)) in r {
            pos.insert(tp, end);
        }
        Ok(())
    }

    async fn next_range(&self, max_rows: Option<u64>) -> Result<Option<Value>> {
        let marks = self.watermarks()?;
        let new: BTreeMap<String, (i64, i64)> = {
            let pos = self.position.lock().unwrap_or_else(|e| e.into_inner());
            marks
                .iter()
                .filter(|(tp, _)| !pos.contains_key(*tp))
                .map(|(tp, m)| (tp.clone(), *m))
                .collect()
        };
        if !new.is_empty() {
            // a partition seen for the first time starts where the spec says
            let starts = self.resolve(self.spec.starting_offsets.as_ref(), &new, false)?;
            self.position.lock().unwrap_or_else(|e| e.into_inner()).extend(starts);
        }
        let pos = self.position.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut avail: Vec<(String, i64, i64)> = Vec::new();
        for (tp, (low, high)) in &marks {
            let at = pos.get(tp).copied().unwrap_or(*low);
            if at < *low {
                tracing::warn!(
                    reader = %self.spec.id,
                    partition = %tp,
                    lost = low - at,
                    "messages were deleted by retention before they were read; reading on from the earliest kept"
                );
            }
            avail.push((tp.clone(), at.max(*low), *high));
        }
        // Fair shares of max_rows: no partition starves while others have a backlog.
        let mut take: Vec<i64> = avail.iter().map(|(_, a, b)| (b - a).max(0)).collect();
        if let Some(max) = max_rows {
            let mut budget = max.max(1) as i64;
            let mut want = take.clone();
            take = vec![0; want.len()];
            while budget > 0 && want.iter().any(|w| *w > 0) {
                let open = want.iter().filter(|w| **w > 0).count() as i64;
                let share = (budget / open).max(1);
                for (t, w) in take.iter_mut().zip(want.iter_mut()) {
                    let n = (*w).min(share).min(budget);
                    *t += n;
                    *w -= n;
                    budget -= n;
                }
            }
        }
        let mut range = BTreeMap::new();
        for ((tp, start, _), n) in avail.iter().zip(take) {
            // a new partition is recorded even when empty, so its starting offset is kept
            if n > 0 || new.contains_key(tp) {
                range.insert(tp.clone(), (*start, start + n));
            }
        }
        if range.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::to_value(range).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }

    async fn read(&self, range: &Value) -> Result<StreamChunk> {
        let r = Self::range_of(range)?;
        let msgs = self.fetch(&r).await?;
        self.decode(msgs)
    }

    async fn wait_for_data(&self, timeout: Duration) {
        tokio::time::sleep(timeout.min(Duration::from_millis(20))).await;
    }

    /// Commits the end of the committed ranges to the consumer group (`group.id`, by default
    /// `borboleta-<reader id>`), so that the usual tools show the stream's lag. Never read back:
    /// positions come from the checkpoint.
    async fn committed(&self, ranges: &[&Value]) {
        let mut ends: BTreeMap<String, i64> = BTreeMap::new();
        for r in ranges {
            let Ok(r) = Self::range_of(r) else { continue };
            for (tp, (_, end)) in r {
                let e = ends.entry(tp).or_insert(end);
                *e = (*e).max(end);
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, end) in &ends {
            if let Ok((t, p)) = parse_tp(tp) {
                let _ = tpl.add_partition_offset(t, p, Offset::Offset(*end));
            }
        }
        let Ok(consumer) = self.consumer() else { return };
        let id = self.spec.id.clone();
        let done = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(reader = %id, "cannot commit offsets to the consumer group (lag only): {e}"),
            Err(e) => tracing::warn!(reader = %id, "offset commit task: {e}"),
        }
    }

    fn position_at_time(&self, time: DateTime<Utc>) -> Result<Value> {
        let marks = self.watermarks()?;
        let spec = KafkaOffsetsSpec::Time {
            timestamp: time.to_rfc3339(),
        };
        let p = self.resolve(Some(&spec), &marks, false)?;
        serde_json::to_value(p).map_err(|e| Error::Internal(e.to_string()))
    }
}

#[async_trait]
impl Reader for KafkaReader {
    fn id(&self) -> &str {
        &self.spec.id
    }

    /// A bounded read: `[starting_offsets, ending_offsets)` of every partition, once.
    async fn table_provider(&self, _ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
        let s = &self.inner;
        s.connect()?;
        let marks = s.watermarks()?;
        let starts = s.resolve(self.spec.starting_offsets.as_ref(), &marks, false)?;
        let ends = s.resolve(self.spec.ending_offsets.as_ref(), &marks, true)?;
        let range: BTreeMap<String, (i64, i64)> = starts
            .iter()
            .map(|(tp, a)| (tp.clone(), (*a, ends.get(tp).copied().unwrap_or(*a))))
            .collect();
        let chunk = s.decode(s.fetch(&range).await?)?;
        if let Some(b) = chunk.bad_records.first() {
            tracing::warn!(
                reader = %self.spec.id,
                bad = chunk.bad_records.len(),
                first = %format!("{} at {:?}: {}", b.source, b.position, b.reason),
                "bounded Kafka read: records that do not parse are skipped"
            );
        }
        Ok(Arc::new(MemTable::try_new(Arc::clone(&s.schema), vec![chunk.batches])?))
    }

    fn as_stream(&self) -> Option<Arc<dyn StreamReader>> {
        self.spec
            .stream
            .then(|| Arc::clone(&self.inner) as Arc<dyn StreamReader>)
    }

    fn describe(&self) -> borboleta_engine::ConnectorDescription {
        let topics = self.spec.topic.to_vec().join(",");
        borboleta_engine::ConnectorDescription {
            kind: "Kafka Reader".into(),
            location: topics.clone(),
            // the connection string names servers only; credentials live in `options`
            detail: format!(
                "kafka topic {topics} at {}{}",
                self.spec
                    .connection_string
                    .as_deref()
                    .unwrap_or("$KAFKA_CONSUMER_CONNECTION_STRING"),
                if self.spec.stream { " (stream)" } else { " (bounded)" }
            ),
        }
    }

    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "kafka", "id": self.spec.id, "topic": self.spec.topic.to_vec(), "stream": self.spec.stream,
        })
    }
}
