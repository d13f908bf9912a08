//! # borboleta-engine
//!
//! Turns a [`borboleta_core::FeatureSetPipelineSpec`] into DataFusion plans and runs them:
//! readers become tables, the source query is DataFusion SQL with Spark's functions, the
//! feature set is a plan with Butterfree's naming rules, and every writer gets the rows.
//!
//! Extension points: [`Reader`] (a table provider per reader) and [`Writer`] /
//! [`WriterSession`] (one session per run; commit makes the write visible).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod aggregated;
pub mod cast;
pub mod checkpoint;
pub mod error;
pub mod feature_set;
pub mod geo;
pub mod hooks;
pub mod latest;
pub mod memory;
pub mod pipeline;
pub mod preprocess;
pub mod row_windows;
pub mod session;
pub mod sink;
pub mod sliding;
pub mod spark_sql;
pub mod stream;

pub use error::{Error, Result};
pub use latest::{LatestPerKey, LatestRows};
pub use memory::MemoryTable;
pub use pipeline::{FeatureSetPipeline, Reader, RunOptions, RunSummary};
pub use sink::{MemoryMode, MemoryWriter, WriteContext, WriteMetrics, Writer, WriterSession};
pub use stream::{BadRecord, EpochMetrics, StreamChunk, StreamHandle, StreamOptions, StreamReader, StreamStatus};
