//! The one place where specs become connectors: [`build_reader`] and [`build_writer`] match
//! every reader and writer variant of the spec (no catch-all arm: a new variant does not compile
//! until it is registered here), each arm calling its connector module's constructor.
//!
//! Adding a reader or a store is one module, one arm here, its spec variant and its docs (see
//! `docs/contributing.md`).

use std::path::PathBuf;
use std::sync::Arc;

use borboleta_core::naming::{HISTORICAL_DEBUG_PREFIX, ONLINE_DEBUG_PREFIX};
use borboleta_core::{FeatureSetPipelineSpec, OnlineWriterSpec, ReaderSpec, WriterSpec, resolve_path};
use borboleta_engine::{ConnectorDescription, MemoryMode, MemoryWriter, Reader, Result, Writer};

use crate::file::FileReader;
use crate::historical::HistoricalWriter;
use crate::online::EmbeddedOnlineWriter;
use crate::table::TableReader;

/// Default seconds an event time may be ahead of the clock before the online writer refuses it.
pub const DEFAULT_MAX_FUTURE_SKEW_SECONDS: i64 = 86_400;

/// What a connector's constructor needs besides its own spec: the pipeline's spec (its folder,
/// catalog, streaming settings) and whether writers run in debug mode.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The whole pipeline spec.
    pub spec: &'a FeatureSetPipelineSpec,
    /// Every writer in debug mode (in-memory tables), whatever the spec says.
    pub debug: bool,
}

impl BuildContext<'_> {
    /// `p` resolved against the spec's folder.
    pub fn resolve_path(&self, p: &str) -> String {
        self.spec.resolve_path(p)
    }
    /// A store's root folder: `path` (relative to the spec's folder), else the default root.
    pub fn store_root(&self, path: Option<&str>) -> PathBuf {
        match path {
            Some(p) => PathBuf::from(resolve_path(self.spec.base_dir.as_deref(), p)),
            None => self.spec.default_store_root(),
        }
    }
}

/// The reader of `r`.
pub fn build_reader(r: &ReaderSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Reader>> {
    Ok(match r {
        ReaderSpec::File(f) => Arc::new(FileReader::from_spec(f, |p| cx.resolve_path(p))),
        #[cfg(feature = "kafka")]
        ReaderSpec::Kafka(k) => Arc::new(crate::kafka::KafkaReader::new(k.clone())),
        #[cfg(not(feature = "kafka"))]
        ReaderSpec::Kafka(_) => return Err(not_built_with("type: kafka", "kafka")),
        ReaderSpec::Table(t) => {
            let root = cx.store_root(t.path.as_deref());
            Arc::new(TableReader::new(cx.spec, t, &root))
        }
    })
}

/// The writer of `w` (a debug table in debug mode).
pub fn build_writer(w: &WriterSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Writer>> {
    let fs = &cx.spec.feature_set;
    let description = ConnectorDescription {
        kind: w.display_name().into(),
        location: String::new(),
        detail: format!("{} (debug)", w.display_name()),
    };
    if cx.debug || w.debug_mode() {
        let streaming = cx.spec.is_streaming().then(|| cx.spec.streaming_or_default());
        let (name, mode) = match w {
            WriterSpec::HistoricalFeatureStore(_) => {
                (format!("{HISTORICAL_DEBUG_PREFIX}{}", fs.name), MemoryMode::Historical)
            }
            // On a stream, Butterfree's online debug table gets every row.
            WriterSpec::OnlineFeatureStore(o) => (
                format!("{ONLINE_DEBUG_PREFIX}{}", o.table_name(fs)),
                match &streaming {
                    Some(s) if !s.debug_latest_per_key => MemoryMode::Append,
                    _ => MemoryMode::LatestPerKey,
                },
            ),
        };
        let mut writer = MemoryWriter::new(name, mode).with_description(description);
        if let Some(s) = &streaming {
            writer = writer.with_max_rows(s.debug_max_rows);
        }
        return Ok(Arc::new(writer));
    }
    Ok(match w {
        WriterSpec::HistoricalFeatureStore(h) => {
            Arc::new(HistoricalWriter::new(h.clone(), cx.store_root(h.path.as_deref())))
        }
        WriterSpec::OnlineFeatureStore(o) => online_writer(o, cx)?,
    })
}

/// The online writer of `o`: Kafka, Cassandra or the embedded store.
fn online_writer(o: &OnlineWriterSpec, cx: &BuildContext<'_>) -> Result<Arc<dyn Writer>> {
    let table = o.table_name(&cx.spec.feature_set);
    let skew = o.max_future_skew_seconds.unwrap_or(DEFAULT_MAX_FUTURE_SKEW_SECONDS);
    if let Some(k) = &o.kafka {
        #[cfg(feature = "kafka")]
        return Ok(Arc::new(crate::kafka_writer::KafkaOnlineWriter::new(
            k.clone(),
            &table,
            skew,
        )));
        #[cfg(not(feature = "kafka"))]
        return {
            let _ = k;
            Err(not_built_with("online_feature_store.kafka", "kafka"))
        };
    }
    if let Some(c) = &o.cassandra {
        #[cfg(feature = "cassandra")]
        return Ok(Arc::new(crate::cassandra::CassandraOnlineWriter::new(
            crate::cassandra::CassandraOnlineStore::new(cassandra_config(cx.spec, c)?),
            table,
            o.ttl_seconds,
            skew,
        )));
        #[cfg(not(feature = "cassandra"))]
        return {
            let _ = c;
            Err(not_built_with("online_feature_store.cassandra", "cassandra"))
        };
    }
    Ok(Arc::new(EmbeddedOnlineWriter::new(
        online_store_path(cx.spec, o),
        table,
        skew,
    )))
}

/// A writer's Cassandra settings, resolved against the environment, with file paths (the TLS
/// CA file) relative to the spec's folder.
#[cfg(feature = "cassandra")]
pub fn cassandra_config(
    spec: &FeatureSetPipelineSpec,
    c: &borboleta_core::CassandraConfigSpec,
) -> Result<crate::cassandra::CassandraConfig> {
    let mut config = crate::cassandra::CassandraConfig::resolve(c, &|v| std::env::var(v).ok())?;
    if let Some(ca) = &config.tls_ca_file {
        config.tls_ca_file = Some(PathBuf::from(resolve_path(
            spec.base_dir.as_deref(),
            &ca.to_string_lossy(),
        )));
    }
    Ok(config)
}

/// The embedded online store file of an online writer.
pub fn online_store_path(spec: &FeatureSetPipelineSpec, o: &OnlineWriterSpec) -> PathBuf {
    match &o.path {
        Some(p) => PathBuf::from(resolve_path(spec.base_dir.as_deref(), p)),
        None => spec.default_store_root().join("online.sqlite"),
    }
}

#[cfg(any(not(feature = "kafka"), not(feature = "cassandra")))]
fn not_built_with(what: &str, feature: &str) -> borboleta_engine::Error {
    borboleta_engine::Error::spec(
        "spec",
        format!("`{what}` needs Borboleta built with the `{feature}` cargo feature"),
    )
}
