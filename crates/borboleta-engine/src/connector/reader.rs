//! Readers: a table per reader id, and the streaming side of a reader.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use serde::Serialize;
use serde_json::Value;

use super::description::ConnectorDescription;
use crate::error::Result;

/// A source of rows (Butterfree's `Reader`): a DataFusion table.
#[async_trait]
pub trait Reader: std::fmt::Debug + Send + Sync {
    /// The table name in the source query.
    fn id(&self) -> &str;
    /// The raw table, before column selection and date filters. Called once per pipeline.
    /// Not called for a streaming reader.
    async fn table_provider(&self, ctx: &SessionContext) -> Result<Arc<dyn TableProvider>>;
    /// The streaming side of the reader, when it streams (`stream: true`).
    fn as_stream(&self) -> Option<Arc<dyn StreamReader>> {
        None
    }
    /// What `explain` and `describe` say about the reader.
    fn describe(&self) -> ConnectorDescription {
        ConnectorDescription {
            kind: "Reader".into(),
            location: self.id().to_string(),
            detail: self.id().to_string(),
        }
    }
    /// What identifies the reader's data in a stream's checkpoint: a change of identity means
    /// the recorded positions no longer apply (the checkpoint must be reset).
    fn identity(&self) -> Value {
        serde_json::json!({ "id": self.id() })
    }
}

/// A record a reader could not read, or a feature row that cannot be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRecord {
    /// The reader id (or `feature_set` for a feature row).
    pub reader: String,
    /// Where it came from: a file, or `topic/partition`.
    pub source: String,
    /// Line number in the file (1-based) or offset in the partition.
    pub position: Option<u64>,
    /// Why it was not taken.
    pub reason: String,
    /// The record as text.
    pub record: String,
}

/// What a streaming reader read for one epoch.
#[derive(Debug, Default)]
pub struct StreamChunk {
    /// The good rows.
    pub batches: Vec<RecordBatch>,
    /// The records that could not be read.
    pub bad_records: Vec<BadRecord>,
}

/// A streaming reader: data arrives over time, in ranges it can plan, record and replay.
///
/// Ranges and positions are JSON values that live in the checkpoint (files: the list of files
/// of the epoch; Kafka: partition → offsets).
#[async_trait]
pub trait StreamReader: Debug + Send + Sync {
    /// The table name in the source query.
    fn id(&self) -> &str;
    /// Opens the stream and returns the schema of its rows (given, or inferred once).
    async fn open(&self, ctx: &SessionContext) -> Result<SchemaRef>;
    /// The position after every range passed to [`Self::advance`], compact.
    fn position(&self) -> Value;
    /// Sets the position (from [`Self::position`], maybe of an earlier process).
    fn restore(&self, position: &Value) -> Result<()>;
    /// Moves the position past `range`.
    fn advance(&self, range: &Value) -> Result<()>;
    /// The next range after the position, up to `max_rows` rows (always at least one unit:
    /// a file is never split); `None` when nothing new is there.
    async fn next_range(&self, max_rows: Option<u64>) -> Result<Option<Value>>;
    /// Reads exactly `range`.
    async fn read(&self, range: &Value) -> Result<StreamChunk>;
    /// Returns when new data may be there, or after `timeout`.
    async fn wait_for_data(&self, timeout: Duration);
    /// The position at which everything older than `time` counts as processed (for
    /// `checkpoint reset --to-time`).
    fn position_at_time(&self, time: DateTime<Utc>) -> Result<Value>;
    /// Told after `commits/N` is recorded, with the ranges of the epochs it committed, oldest
    /// first (Kafka commits the offsets to its consumer group there, for lag monitoring). The
    /// checkpoint stays the truth: this is only a report, and a failure is only logged.
    async fn committed(&self, _ranges: &[&Value]) {}
}
