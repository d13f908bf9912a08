//! `TableReader`: a `type: table` reader (Butterfree's `TableReader`), read as files: the spec's
//! `catalog:` entry for `database.table`, or the historical store's table
//! `<root>/historical/<database>/<table>` with its `year`/`month`/`day` partitions.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::DataType;
use async_trait::async_trait;
use borboleta_core::{FeatureSetPipelineSpec, FileFormat, FileReaderSpec, TableReaderSpec};
use borboleta_engine::{ConnectorDescription, Reader, Result, StreamReader};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

use crate::file::FileReader;

/// A table of the catalog or of the historical store, read through a [`FileReader`].
#[derive(Debug, Clone)]
pub struct TableReader {
    spec: TableReaderSpec,
    files: FileReader,
}

impl TableReader {
    /// The reader of `t` in `spec` (its catalog, or the historical store under `store_root`).
    pub fn new(spec: &FeatureSetPipelineSpec, t: &TableReaderSpec, store_root: &Path) -> Self {
        let (path, format, partitions) = match spec.catalog.get(&t.qualified_name()) {
            Some(c) => (
                spec.resolve_path(&c.path),
                c.format,
                c.partitions
                    .0
                    .iter()
                    .map(|(n, ty)| (n.clone(), ty.to_arrow()))
                    .collect(),
            ),
            None => {
                let dir = store_root
                    .join("historical")
                    .join(t.database.as_deref().unwrap_or_default())
                    .join(&t.table);
                let partitions = ["year", "month", "day"].map(|p| (p.to_string(), DataType::Int32));
                (format!("{}/", dir.display()), FileFormat::Parquet, partitions.to_vec())
            }
        };
        let files = FileReader::new(FileReaderSpec {
            id: t.id.clone(),
            path,
            format,
            schema: None,
            options: Default::default(),
            columns: vec![],
            incremental_strategy: None,
            pre_processing: vec![],
            hooks: Default::default(),
            stream: false,
            max_file_age_seconds: None,
        })
        .with_partitions(partitions);
        Self { spec: t.clone(), files }
    }
}

#[async_trait]
impl Reader for TableReader {
    fn id(&self) -> &str {
        &self.spec.id
    }
    async fn table_provider(&self, ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
        self.files.table_provider(ctx).await
    }
    fn as_stream(&self) -> Option<Arc<dyn StreamReader>> {
        None
    }
    fn describe(&self) -> ConnectorDescription {
        ConnectorDescription {
            kind: "Table Reader".into(),
            location: self.spec.qualified_name(),
            detail: format!("table {}", self.spec.qualified_name()),
        }
    }
}
