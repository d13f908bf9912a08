//! A file reader's spec as a DataFusion listing table (local paths, `file://`, `s3://` and stores
//! registered on the session), shared by the batch reader and the schema of the file stream.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use borboleta_core::{FileFormat, FileReaderSpec};
use borboleta_engine::{Error, Result};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::SessionContext;

const OPTIONS: &[&str] = &["header", "delimiter", "file_extension"];

/// The files of `spec` (its path already resolved) as a table, with Hive `partitions` columns.
pub(crate) async fn listing_table(
    spec: &FileReaderSpec,
    partitions: &[(String, DataType)],
    ctx: &SessionContext,
) -> Result<Arc<dyn TableProvider>> {
    for key in spec.options.keys() {
        if !OPTIONS.contains(&key.as_str()) {
            return Err(Error::spec(
                format!("options.{key}"),
                format!(
                    "unknown option `{key}`{}; known: {}",
                    borboleta_core::error::hint(key, OPTIONS.iter().copied()),
                    OPTIONS.join(", ")
                ),
            ));
        }
    }
    let mut path = spec.path.clone();
    let is_glob = path.contains(['*', '?', '[']);
    if !path.contains("://") && !is_glob {
        let p = Path::new(&path);
        if !p.exists() {
            return Err(Error::spec("path", format!("no such file or folder: {path}")));
        }
        if p.is_dir() && !path.ends_with('/') {
            path.push('/');
        }
    }
    let url = ListingTableUrl::parse(&path).map_err(|e| Error::spec("path", e.to_string()))?;
    if path.contains("://") {
        register_object_store(ctx, &url)?;
    }
    let flag = |k: &str, default: bool| spec.options.get(k).map_or(default, |v| v.eq_ignore_ascii_case("true"));
    let (format, default_ext): (Arc<dyn datafusion::datasource::file_format::FileFormat>, &str) = match spec.format {
        FileFormat::Parquet => (Arc::new(ParquetFormat::default()), ".parquet"),
        FileFormat::Csv => {
            let mut f = CsvFormat::default().with_has_header(flag("header", true));
            if let Some(d) = spec.options.get("delimiter") {
                let b = d.as_bytes();
                if b.len() != 1 {
                    return Err(Error::spec("options.delimiter", "the delimiter must be one character"));
                }
                f = f.with_delimiter(b[0]);
            }
            (Arc::new(f), ".csv")
        }
        FileFormat::Json => (Arc::new(JsonFormat::default()), ""),
    };
    let ext = match spec.options.get("file_extension") {
        Some(e) => e.clone(),
        // A single file is read whatever its name; a folder takes the format's files.
        None if !path.ends_with('/') => String::new(),
        None => default_ext.to_string(),
    };
    let options = ListingOptions::new(format)
        .with_file_extension(ext)
        .with_table_partition_cols(partitions.to_vec());
    let config = ListingTableConfig::new(url).with_listing_options(options);
    let config = match &spec.schema {
        Some(s) => {
            let fields: Vec<Field> = s.0.iter().map(|(n, t)| Field::new(n, t.to_arrow(), true)).collect();
            config.with_schema(Arc::new(Schema::new(fields)))
        }
        None => config.infer_schema(&ctx.state()).await.map_err(|e| {
            Error::spec(
                "path",
                format!("cannot read {}: {}", spec.path, first_line(&e.to_string())),
            )
        })?,
    };
    let table = ListingTable::try_new(config).map_err(|e| Error::spec("path", e.to_string()))?;
    if table.schema().fields().is_empty() {
        return Err(Error::spec(
            "path",
            format!("no {} files found at {}", spec.format, spec.path),
        ));
    }
    Ok(Arc::new(table))
}

/// Makes sure the session can read `url`: a store already registered for its scheme and host
/// (`file://`, or one a Rust caller registered, e.g. `memory://`) is used as it is; `s3://` and
/// `s3a://` get an S3 store configured from the standard `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`…).
#[cfg_attr(not(feature = "s3"), allow(unreachable_code, unused_variables))]
fn register_object_store(ctx: &SessionContext, url: &ListingTableUrl) -> Result<()> {
    let env = ctx.runtime_env();
    if env.object_store(url.object_store()).is_ok() {
        return Ok(());
    }
    let base = url.get_url();
    let store: Arc<dyn object_store::ObjectStore> = match base.scheme() {
        #[cfg(feature = "s3")]
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(base.as_str())
                .build()
                .map_err(|e| Error::spec("path", format!("cannot open {base}: {e}")))?,
        ),
        other => {
            return Err(Error::spec(
                "path",
                format!(
                    "no object store for `{other}://`: use a local path, file://, s3:// (or s3a://), \
                     or register a store for it on the session"
                ),
            ));
        }
    };
    env.register_object_store(url.object_store().as_ref(), store);
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
