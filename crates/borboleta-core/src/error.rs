//! Errors of the spec layer, grouped by who must act.

use std::fmt;

/// One problem found in a pipeline spec, with the YAML path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIssue {
    /// Dotted YAML path, e.g. `feature_set.features[2].from_column`.
    pub path: String,
    /// Line in the spec file (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong, and how to fix it when we know.
    pub message: String,
}

impl SpecIssue {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in a spec, reported at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecIssues(pub Vec<SpecIssue>);

impl SpecIssues {
    /// Adds a problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecIssue::new(path, message));
    }
    /// True when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(())` when empty, else the issues as an [`Error::Spec`].
    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Spec(self))
        }
    }
}

impl fmt::Display for SpecIssues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid pipeline spec ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.0 {
            write!(f, "\n  - {issue}")?;
        }
        Ok(())
    }
}

/// Errors of `borboleta-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec is wrong: the user fixes the definition. Lists every problem with its path.
    #[error("{0}")]
    Spec(SpecIssues),
    /// The spec file could not be read.
    #[error("cannot read spec file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bug in Borboleta.
    #[error("internal error: {0}. This is a bug in Borboleta, please report it")]
    Internal(String),
}

impl Error {
    /// A spec error with one problem.
    pub fn spec(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec(SpecIssues(vec![SpecIssue::new(path, message)]))
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The nearest candidate to `name` (for "did you mean" hints), if one is close enough.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `" (did you mean `x`?)"` or an empty string.
pub fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(name, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}
