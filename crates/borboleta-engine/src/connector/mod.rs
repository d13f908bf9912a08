//! The connector contracts: [`Reader`] and [`StreamReader`] (where rows come from), [`Writer`]
//! and [`WriterSession`] (where feature rows go), and what `explain`, `describe` and the
//! checkpoint fingerprint learn from each connector ([`ConnectorDescription`],
//! [`Reader::identity`]).
//!
//! The engine only speaks these traits: the connectors crate implements them, one module per
//! connector, and its registry builds them from their specs (see `docs/contributing.md`).

mod description;
mod reader;
mod writer;

pub use description::ConnectorDescription;
pub use reader::{BadRecord, Reader, StreamChunk, StreamReader};
pub use writer::{Rejected, WriteContext, WriteMetrics, Writer, WriterSession};
