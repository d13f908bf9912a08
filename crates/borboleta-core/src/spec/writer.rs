//! Writers: the historical and online feature stores, and their connections (Cassandra, Kafka).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::common::*;
use super::feature_set::*;

/// A writer, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a handful per spec, parsed once
pub enum WriterSpec {
    /// Butterfree's `HistoricalFeatureStoreWriter`.
    HistoricalFeatureStore(HistoricalWriterSpec),
    /// Butterfree's `OnlineFeatureStoreWriter`.
    OnlineFeatureStore(OnlineWriterSpec),
}

impl WriterSpec {
    /// Whether the writer writes to an in-memory debug table.
    pub fn debug_mode(&self) -> bool {
        match self {
            WriterSpec::HistoricalFeatureStore(w) => w.debug_mode,
            WriterSpec::OnlineFeatureStore(w) => w.debug_mode,
        }
    }
    /// Turns debug mode on.
    pub fn set_debug_mode(&mut self, on: bool) {
        match self {
            WriterSpec::HistoricalFeatureStore(w) => w.debug_mode = on,
            WriterSpec::OnlineFeatureStore(w) => w.debug_mode = on,
        }
    }
    /// Display name, as Butterfree's.
    pub fn display_name(&self) -> &'static str {
        match self {
            WriterSpec::HistoricalFeatureStore(_) => "Historical Feature Store Writer",
            WriterSpec::OnlineFeatureStore(_) => "Online Feature Store Writer",
        }
    }
}

/// How a non-interval historical write treats existing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace the whole table (Butterfree's default).
    #[default]
    Overwrite,
    /// Add files next to the existing ones.
    Append,
}

fn default_threshold() -> f64 {
    0.01
}

/// See [`WriterSpec::HistoricalFeatureStore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoricalWriterSpec {
    /// Feature store root; the table goes to `<path>/historical/<entity>/<feature set>`.
    /// Default: `feature_store` next to the spec file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Write to the in-memory table `historical_feature_store__<feature set>` instead.
    #[serde(default)]
    pub debug_mode: bool,
    /// Replace only the `year/month/day` partitions the run touches (idempotent date-range runs).
    #[serde(default)]
    pub interval_mode: bool,
    /// Without `interval_mode`: `overwrite` (default) replaces the table, `append` adds to it.
    #[serde(default)]
    pub mode: WriteMode,
    /// Count the rows written back and compare with the rows computed.
    #[serde(default = "default_true")]
    pub row_count_validation: bool,
    /// Allowed relative difference of that count.
    #[serde(default = "default_threshold")]
    pub validation_threshold: f64,
    /// Streams: seconds of epochs gathered into one file per partition before it is committed
    /// (default 60; 0 commits every epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_interval_seconds: Option<u64>,
    /// Streams: the interval is also committed once it holds this many megabytes (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_interval_mb: Option<u64>,
    /// Butterfree's schema-compatibility hook: before a run adds to an existing table (interval
    /// mode, append, streams), every column of the feature rows must be in the table with the same
    /// type; otherwise nothing is written. Default on.
    #[serde(default = "default_true")]
    pub check_schema: bool,
}

impl Default for HistoricalWriterSpec {
    fn default() -> Self {
        Self {
            path: None,
            debug_mode: false,
            interval_mode: false,
            mode: WriteMode::Overwrite,
            row_count_validation: true,
            validation_threshold: default_threshold(),
            commit_interval_seconds: None,
            commit_interval_mb: None,
            check_schema: true,
        }
    }
}

/// See [`WriterSpec::OnlineFeatureStore`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineWriterSpec {
    /// The embedded online store's file. Default: `feature_store/online.sqlite` next to the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Write to the in-memory table `online_feature_store__<table>` instead.
    #[serde(default)]
    pub debug_mode: bool,
    /// Write to a table named after the entity (shared by feature sets) instead of the feature set.
    #[serde(default)]
    pub write_to_entity: bool,
    /// Rows whose event time is further than this many seconds in the future are not written
    /// (they would pin a key forever). Default: 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_future_skew_seconds: Option<i64>,
    /// Write to Apache Cassandra instead of the embedded store (settings default to Butterfree's
    /// environment variables: `cassandra: {}` takes everything from them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraConfigSpec>,
    /// Publish the feature rows to a Kafka topic instead (Butterfree's `KafkaConfig`): each row
    /// as a JSON object, keyed by the feature set keys. `kafka: {}` takes everything from the
    /// defaults and `KAFKA_CONSUMER_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaWriterConfigSpec>,
    /// Seconds a written row lives, counted from its event time (`USING TTL` = ttl − age; rows
    /// already older are not written). Default: forever. Cassandra only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// Butterfree's `CassandraConfig`. Each field falls back to its environment variable.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraConfigSpec {
    /// Contact points (`CASSANDRA_HOST`, comma-separated). Default: 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<OneOrMany>,
    /// Native protocol port. Default: 9042.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Keyspace (`CASSANDRA_KEYSPACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace: Option<String>,
    /// Local datacenter (`CASSANDRA_LOCAL_DC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_dc: Option<String>,
    /// User (`CASSANDRA_USERNAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (`CASSANDRA_PASSWORD`); never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Read consistency (`CASSANDRA_READ_CONSISTENCY_LEVEL`). Default: LOCAL_ONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_consistency: Option<String>,
    /// Write consistency (`CASSANDRA_WRITE_CONSISTENCY_LEVEL`). Default: LOCAL_QUORUM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_consistency: Option<String>,
    /// Create the keyspace (SimpleStrategy, replication 1) when it does not exist: for local use
    /// and tests. Default: false (production keyspaces are made by their operators).
    #[serde(default)]
    pub create_keyspace: bool,
    /// TLS to the cluster (`tls: {ca_file: ca.pem}`): every connection is encrypted and the
    /// nodes' certificates are verified against the CA file, for the address connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<CassandraTlsSpec>,
}

/// TLS settings of the Cassandra connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraTlsSpec {
    /// PEM file with the CA certificate(s) that signed the nodes' certificates, relative to the
    /// spec's folder.
    pub ca_file: String,
}

/// Butterfree's `KafkaConfig` for the online writer.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaWriterConfigSpec {
    /// Topic. Default: the online table's name (the feature set, or the entity with
    /// `write_to_entity`), as in Butterfree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Bootstrap servers (`host:port,...`). Default: `KAFKA_CONSUMER_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// librdkafka producer settings passed through (`security.protocol`, `sasl.*`, `linger.ms`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaWriterConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = masked(&self.options);
        f.debug_struct("KafkaWriterConfigSpec")
            .field("topic", &self.topic)
            .field("connection_string", &self.connection_string)
            .field("options", &options)
            .finish()
    }
}

impl OnlineWriterSpec {
    /// The online table: the entity with `write_to_entity`, else the feature set name.
    pub fn table_name(&self, feature_set: &FeatureSetSpec) -> String {
        if self.write_to_entity {
            feature_set.entity.clone()
        } else {
            feature_set.name.clone()
        }
    }
}

impl fmt::Debug for CassandraConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraConfigSpec")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("keyspace", &self.keyspace)
            .field("local_dc", &self.local_dc)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("read_consistency", &self.read_consistency)
            .field("write_consistency", &self.write_consistency)
            .field("create_keyspace", &self.create_keyspace)
            .field("tls", &self.tls)
            .finish()
    }
}
