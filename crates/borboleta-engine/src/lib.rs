//! # borboleta-engine
//!
//! Turns a [`borboleta_core::FeatureSetPipelineSpec`] into DataFusion plans and runs them:
//! readers become tables, the source query is DataFusion SQL with Spark's functions, the
//! feature set is a plan with Butterfree's naming rules, and every writer gets the rows.
//!
//! The modules, leaves first:
//! - [`connector`]: the contracts of readers and writers ([`Reader`], [`StreamReader`],
//!   [`Writer`], [`WriterSession`]).
//! - [`plan`]: the planners (feature set, aggregated feature set, reader pre-processing), Spark's
//!   casts and SQL dialect, H3 and stack transforms.
//! - [`windows`]: the window operators ([`windows::RowWindowsExec`],
//!   [`windows::RollingWindowsExec`]) and Spark-exact sliding folds.
//! - [`sink`]: the sink driver, debug tables, the latest row per key.
//! - [`pipeline`]: a built pipeline and its batch run; [`stream`]: the micro-batch runtime and its
//!   checkpoint.
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod connector;
pub mod error;
pub mod failpoint;
pub mod hooks;
pub mod memory;
pub mod pipeline;
pub mod plan;
pub mod session;
pub mod sink;
pub mod stream;
pub mod windows;

pub use connector::{
    BadRecord, ConnectorDescription, Reader, Rejected, StreamChunk, StreamReader, WriteContext, WriteMetrics, Writer,
    WriterSession,
};
pub use error::{Error, Result};
pub use memory::MemoryTable;
pub use pipeline::{FeatureSetPipeline, RunOptions, RunSummary};
pub use sink::{FeatureSink, LatestPerKey, LatestRows, MemoryMode, MemoryWriter};
pub use stream::{EpochMetrics, StreamHandle, StreamOptions, StreamStatus};
