//! `FileReader`: Parquet, CSV or JSON lines from a file, a folder or a glob.

use std::sync::Arc;

use async_trait::async_trait;
use borboleta_core::FileReaderSpec;
use borboleta_engine::{ConnectorDescription, Reader, Result};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

mod listing;
mod stream;

pub use stream::FileStream;

use listing::listing_table;

/// Reads files as a DataFusion listing table (local paths, `file://`, `s3://` and stores registered
/// on the session such as `memory://`); with `stream: true`, a local folder of arriving files
/// ([`FileStream`]).
#[derive(Debug, Clone)]
pub struct FileReader {
    spec: FileReaderSpec,
    /// The path as the spec declares it (before resolving against the spec's folder).
    declared_path: String,
    stream: Option<Arc<FileStream>>,
    partitions: Vec<(String, arrow::datatypes::DataType)>,
}

impl FileReader {
    /// A reader for `spec`, whose path is already resolved against the spec's folder.
    pub fn new(spec: FileReaderSpec) -> Self {
        let stream = spec.stream.then(|| Arc::new(FileStream::new(spec.clone())));
        Self {
            declared_path: spec.path.clone(),
            spec,
            stream,
            partitions: Vec::new(),
        }
    }

    /// A reader for `spec` declared in a spec file, with its path resolved by `resolve` (against
    /// the spec's folder); `describe` and the checkpoint identity keep the declared path.
    pub fn from_spec(spec: &FileReaderSpec, resolve: impl Fn(&str) -> String) -> Self {
        let mut resolved = spec.clone();
        resolved.path = resolve(&spec.path);
        let mut reader = Self::new(resolved);
        reader.declared_path = spec.path.clone();
        reader
    }

    /// Reads Hive partition folders (`year=2024/month=1/`) as these columns (batch only).
    pub fn with_partitions(mut self, partitions: Vec<(String, arrow::datatypes::DataType)>) -> Self {
        self.partitions = partitions;
        self
    }
}

#[async_trait]
impl Reader for FileReader {
    fn id(&self) -> &str {
        &self.spec.id
    }

    fn as_stream(&self) -> Option<Arc<dyn borboleta_engine::StreamReader>> {
        self.stream
            .clone()
            .map(|s| s as Arc<dyn borboleta_engine::StreamReader>)
    }

    async fn table_provider(&self, ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
        listing_table(&self.spec, &self.partitions, ctx).await
    }

    fn describe(&self) -> ConnectorDescription {
        ConnectorDescription {
            kind: "File Reader".into(),
            location: self.declared_path.clone(),
            detail: format!(
                "{} files at {}{}",
                self.spec.format,
                self.spec.path,
                if self.spec.stream { " (stream)" } else { "" }
            ),
        }
    }

    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "file", "id": self.spec.id, "path": self.declared_path,
            "format": self.spec.format.to_string(), "stream": self.spec.stream,
        })
    }
}
