//! Errors of the engine, grouped by who must act.

use borboleta_core::SpecIssues;

/// Errors of `borboleta-engine` (and of the connectors, which use it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec or the arguments are wrong: the user fixes them. Nothing was written.
    #[error("{0}")]
    Spec(SpecIssues),
    /// An external system (file system, object store, database) failed.
    #[error("{system} error{}: {message}", if *retryable { " (a retry may help)" } else { "" })]
    External {
        /// Which system.
        system: &'static str,
        /// Whether retrying can help.
        retryable: bool,
        /// What happened.
        message: String,
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
        }
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

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::external("file system", false, e)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
