//! # borboleta-connectors
//!
//! One module per backend: [`file`](mod@file) (the `FileReader`), [`file_stream`] (a folder read as a
//! stream), [`historical`] (the Parquet historical store), [`online`] (the embedded online store),
//! and behind features, `kafka` (the Kafka reader and stream), `kafka_writer` (the online writer
//! that publishes to Kafka) and `cassandra` (the Cassandra online store).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "cassandra")]
pub mod cassandra;
pub mod file;
pub mod file_stream;
pub mod historical;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod kafka_writer;
pub mod online;

#[cfg(feature = "cassandra")]
pub use cassandra::{CassandraConfig, CassandraOnlineStore, CassandraOnlineWriter};
pub use file::FileReader;
pub use file_stream::FileStream;
pub use historical::HistoricalWriter;
#[cfg(feature = "kafka")]
pub use kafka::KafkaReader;
#[cfg(feature = "kafka")]
pub use kafka_writer::KafkaOnlineWriter;
pub use online::{EmbeddedOnlineStore, EmbeddedOnlineWriter};
