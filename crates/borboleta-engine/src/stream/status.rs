//! What a running stream reports: per-epoch metrics, the stream's counters, and the counters in
//! Prometheus' text format.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

/// Called after each committed epoch.
pub type EpochCallback = Arc<dyn Fn(&EpochMetrics) + Send + Sync>;

/// What one epoch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EpochMetrics {
    /// The epoch id.
    pub epoch: u64,
    /// Whether it replayed a range recorded by an earlier process.
    pub replayed: bool,
    /// Rows read by the streaming readers.
    pub input_rows: u64,
    /// Feature rows computed and handed to the writers.
    pub output_rows: u64,
    /// Rows (or keys) written per writer.
    pub writers: Vec<(String, u64)>,
    /// Records and rows sent to the dead-letter output.
    pub dead_lettered: u64,
    /// Rows evicted from capped debug tables (`debug_max_rows`).
    pub debug_rows_evicted: u64,
    /// Wall time of the epoch, in seconds.
    pub duration_seconds: f64,
    /// Now minus the newest event time written, in seconds, at commit.
    pub freshness_seconds: Option<f64>,
}

/// The state of a running stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStatus {
    /// Epochs written by this process.
    pub epochs: u64,
    /// The last epoch whose rows every writer has taken (visible in the debug tables).
    pub last_epoch_written: Option<u64>,
    /// The last epoch committed in the checkpoint (this process or an earlier one): durable
    /// in every writer. It lags `last_epoch_written` while a writer gathers epochs.
    pub last_committed: Option<u64>,
    /// Rows read by the streaming readers.
    pub input_rows: u64,
    /// Feature rows written.
    pub output_rows: u64,
    /// Records sent to the dead-letter output.
    pub dead_lettered: u64,
    /// Rows (or keys) written per writer.
    pub writer_rows: BTreeMap<String, u64>,
    /// Rows evicted from capped debug tables (`debug_max_rows`).
    pub debug_rows_evicted: u64,
    /// The last epoch's metrics.
    pub last_epoch: Option<EpochMetrics>,
    /// Whether the loop is still running.
    pub running: bool,
}

impl StreamStatus {
    /// The counters in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            out.push_str(&format!(
                "# HELP borboleta_{name} {help}\n# TYPE borboleta_{name} {kind}\n"
            ));
            for (labels, v) in samples {
                out.push_str(&format!("borboleta_{name}{labels} {v}\n"));
            }
        };
        let one = |v: f64| vec![(String::new(), v)];
        metric(
            "epochs_total",
            "counter",
            "Epochs committed by this process.",
            one(self.epochs as f64),
        );
        if let Some(e) = self.last_committed {
            metric(
                "last_committed_epoch",
                "gauge",
                "The last epoch committed in the checkpoint (durable in every writer).",
                one(e as f64),
            );
        }
        if let Some(e) = self.last_epoch_written {
            metric(
                "last_written_epoch",
                "gauge",
                "The last epoch every writer has taken.",
                one(e as f64),
            );
        }
        metric(
            "input_rows_total",
            "counter",
            "Rows read by the streaming readers.",
            one(self.input_rows as f64),
        );
        metric(
            "output_rows_total",
            "counter",
            "Feature rows handed to the writers.",
            one(self.output_rows as f64),
        );
        metric(
            "dead_lettered_total",
            "counter",
            "Records sent to the dead-letter output.",
            one(self.dead_lettered as f64),
        );
        metric(
            "debug_rows_evicted_total",
            "counter",
            "Rows evicted from capped streaming debug tables (debug_max_rows).",
            one(self.debug_rows_evicted as f64),
        );
        metric(
            "writer_rows_total",
            "counter",
            "Rows (or keys) written per writer.",
            self.writer_rows
                .iter()
                .map(|(w, n)| (format!("{{writer=\"{}\"}}", w.replace('"', "'")), *n as f64))
                .collect(),
        );
        if let Some(m) = &self.last_epoch {
            metric(
                "epoch_duration_seconds",
                "gauge",
                "Wall time of the last epoch.",
                one(m.duration_seconds),
            );
            if let Some(f) = m.freshness_seconds {
                metric(
                    "freshness_seconds",
                    "gauge",
                    "Now minus the newest event time written, at the last commit.",
                    one(f),
                );
            }
        }
        metric(
            "running",
            "gauge",
            "1 while the stream runs.",
            one(f64::from(u8::from(self.running))),
        );
        out
    }
}
