//! Where feature rows go: the sink driver that hands a run's (or an epoch's) rows to every
//! writer, the debug-mode memory writers, the latest row per key of the online writers, and the
//! historical store's partition columns.

mod debug;
mod driver;
pub mod latest;
mod partition;

pub use debug::{MemoryMode, MemoryWriter};
pub use driver::{FeatureSink, SinkRun};
pub use latest::{LatestPerKey, LatestRows};
pub use partition::{partitioned_schema, with_partition_columns};
