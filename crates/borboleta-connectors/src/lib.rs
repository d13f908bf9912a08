//! # borboleta-connectors
//!
//! One module per connector: [`file`](mod@file) (the `FileReader` and its stream), [`table`] (the
//! `TableReader`), [`kafka`] (reader) and [`kafka_writer`], [`historical`] (the Parquet
//! historical store), [`online`] (the embedded online store) and [`cassandra`]. [`registry`]
//! builds them from their specs.
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "cassandra")]
pub mod cassandra;
pub mod file;
pub mod historical;
mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod kafka_writer;
pub mod online;
pub mod registry;
pub mod table;

#[cfg(feature = "cassandra")]
pub use cassandra::{CassandraConfig, CassandraOnlineStore, CassandraOnlineWriter};
pub use file::FileReader;
pub use file::FileStream;
pub use historical::HistoricalWriter;
#[cfg(feature = "kafka")]
pub use kafka::KafkaReader;
#[cfg(feature = "kafka")]
pub use kafka_writer::KafkaOnlineWriter;
pub use online::{EmbeddedOnlineStore, EmbeddedOnlineWriter};
pub use registry::{BuildContext, DEFAULT_MAX_FUTURE_SKEW_SECONDS, build_reader, build_writer};
pub use table::TableReader;
