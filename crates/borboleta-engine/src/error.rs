//! Errors of the engine, grouped by who must act.

use borboleta_core::SpecIssues;

/// Errors of `borboleta-engine` (and of the connectors, which use it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec or the arguments are wrong: the user fixes them. Nothing was written.
    #[error("{0}")]
    Spec(SpecIssues),
    /// An external system (file system, object store, database) failed. Shown as one line:
    /// what failed, then its cause chain.
    #[error(
        "{system} error{}: {message}{}",
        if *retryable { " (a retry may help)" } else { "" },
        source.as_ref().map(|s| format!(": {}", chain(s.as_ref()))).unwrap_or_default()
    )]
    External {
        /// Which system.
        system: &'static str,
        /// Whether retrying can help.
        retryable: bool,
        /// What failed (a path, a host, an operation).
        message: String,
        /// Why, when another error says it.
        #[source]
        source: Option<BoxError>,
    },
    /// A writer's check after writing failed (e.g. row-count validation).
    #[error("validation failed: {0}")]
    Validation(String),
    /// An error from DataFusion while running a plan.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A bug in Borboleta.
    #[error("internal error: {0}. This is a bug in Borboleta, please report it")]
    Internal(String),
}

impl Error {
    /// A spec error with one problem.
    pub fn spec(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec(SpecIssues(vec![borboleta_core::SpecIssue::new(path, message)]))
    }
    /// An external-system error.
    pub fn external(system: &'static str, retryable: bool, message: impl std::fmt::Display) -> Self {
        Error::External {
            system,
            retryable,
            message: message.to_string(),
            source: None,
        }
    }
    /// An external-system error caused by `source` (kept: [`std::error::Error::source`]).
    pub fn external_caused(
        system: &'static str,
        retryable: bool,
        message: impl std::fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::External {
            system,
            retryable,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }
    /// A file-system error on `path` (the path is kept in the message, the error as its source).
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        let retryable = matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        );
        Self::external_caused("file system", retryable, path.display(), e)
    }
    /// Whether retrying may help (an external failure marked so).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::External { retryable: true, .. })
    }
    /// Whether the user must fix the spec or the arguments (CLI exit code 2).
    pub fn is_spec_error(&self) -> bool {
        matches!(self, Error::Spec(_))
    }
}

impl From<borboleta_core::Error> for Error {
    fn from(e: borboleta_core::Error) -> Self {
        match e {
            borboleta_core::Error::Spec(issues) => Error::Spec(issues),
            borboleta_core::Error::Io { path, source } => {
                Error::spec("spec", format!("cannot read spec file {path}: {source}"))
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

/// A boxed error that can cross threads: the cause of an [`Error::External`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `e` and its causes, `: `-separated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        // many errors repeat their source's text in their own
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An external error shows what failed and why on one line, and keeps the cause as its
    /// source; an io error keeps its path.
    #[test]
    fn external_errors_keep_their_source_and_path() {
        let e = Error::io(
            std::path::Path::new("/data/x.json"),
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
        );
        assert_eq!(
            e.to_string(),
            "file system error: /data/x.json: No such file or directory"
        );
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "No such file or directory");
        assert!(!e.is_retryable());
        let e = Error::external("kafka", true, "cannot reach Kafka at 127.0.0.1:9092");
        assert_eq!(
            e.to_string(),
            "kafka error (a retry may help): cannot reach Kafka at 127.0.0.1:9092"
        );
        assert!(std::error::Error::source(&e).is_none() && e.is_retryable());
    }
}
