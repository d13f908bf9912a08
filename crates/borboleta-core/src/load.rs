//! Reading a spec from YAML: parse, expand `${VAR}`, resolve relative paths, validate.

use std::path::Path;

use crate::error::{Error, Result, SpecIssue, SpecIssues};
use crate::spec::{FeatureSetPipelineSpec, OneOrMany, ReaderSpec, WriterSpec};

/// Looks up environment variables (a function so tests need not touch the process environment).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl FeatureSetPipelineSpec {
    /// Reads, expands and validates a spec file. Relative paths resolve against its folder.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let spec = Self::parse_yaml_file(path)?;
        let mut issues = crate::validate::validate(&spec);
        spec.locate(&mut issues);
        issues.into_result()?;
        Ok(spec)
    }

    /// Reads and expands a spec file without the semantic checks (the engine runs them together
    /// with the checks that need the data, so that every problem is reported at once).
    pub fn parse_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
        Self::parse_yaml_str(&text, base, &|k| std::env::var(k).ok())
    }

    /// Parses, expands and validates YAML text.
    pub fn from_yaml_str(text: &str, base_dir: Option<&Path>, env: EnvLookup<'_>) -> Result<Self> {
        let spec = Self::parse_yaml_str(text, base_dir, env)?;
        let mut issues = crate::validate::validate(&spec);
        spec.locate(&mut issues);
        issues.into_result()?;
        Ok(spec)
    }

    /// Parses YAML text and expands `${VAR}`; no semantic checks.
    pub fn parse_yaml_str(text: &str, base_dir: Option<&Path>, env: EnvLookup<'_>) -> Result<Self> {
        let mut spec: FeatureSetPipelineSpec = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize);
            let message = e.to_string();
            Error::Spec(SpecIssues(vec![SpecIssue {
                path: yaml_path_of(&message),
                line,
                message: clean(&message),
            }]))
        })?;
        spec.base_dir = base_dir.map(Path::to_path_buf);
        spec.yaml_lines = Some(std::sync::Arc::new(crate::YamlLines::index(text)));
        let mut issues = SpecIssues::default();
        spec.expand_env(env, &mut issues);
        spec.locate(&mut issues);
        issues.into_result()?;
        Ok(spec)
    }

    /// Fills in the spec-file line of every issue that has none (a spec built in Rust has none).
    pub fn locate(&self, issues: &mut SpecIssues) {
        if let Some(lines) = &self.yaml_lines {
            lines.locate(issues);
        }
    }

    /// Replaces `${VAR}` in paths, options and the query; `$${` is a literal `${`.
    fn expand_env(&mut self, env: EnvLookup<'_>, issues: &mut SpecIssues) {
        for (i, reader) in self.readers.iter_mut().enumerate() {
            match reader {
                ReaderSpec::File(f) => {
                    f.path = expand(&f.path, env, &format!("readers[{i}].path"), issues);
                    for (k, v) in f.options.iter_mut() {
                        *v = expand(v, env, &format!("readers[{i}].options.{k}"), issues);
                    }
                }
                ReaderSpec::Kafka(k) => {
                    if let Some(c) = &mut k.connection_string {
                        *c = expand(c, env, &format!("readers[{i}].connection_string"), issues);
                    }
                    for (key, v) in k.options.iter_mut() {
                        *v = expand(v, env, &format!("readers[{i}].options.{key}"), issues);
                    }
                }
                ReaderSpec::Table(t) => {
                    if let Some(p) = &mut t.path {
                        *p = expand(p, env, &format!("readers[{i}].path"), issues);
                    }
                }
            }
        }
        for (name, t) in self.catalog.iter_mut() {
            t.path = expand(&t.path, env, &format!("catalog.{name}.path"), issues);
        }
        self.source.query = expand(&self.source.query, env, "source.query", issues);
        for (i, w) in self.writers.iter_mut().enumerate() {
            if let WriterSpec::OnlineFeatureStore(o) = w
                && let Some(c) = &mut o.cassandra
            {
                for (field, v) in [
                    ("keyspace", &mut c.keyspace),
                    ("local_dc", &mut c.local_dc),
                    ("username", &mut c.username),
                    ("password", &mut c.password),
                ] {
                    if let Some(v) = v {
                        *v = expand(v, env, &format!("writers[{i}].cassandra.{field}"), issues);
                    }
                }
                if let Some(t) = &mut c.tls {
                    t.ca_file = expand(&t.ca_file, env, &format!("writers[{i}].cassandra.tls.ca_file"), issues);
                }
                if let Some(OneOrMany::One(h)) = &mut c.hosts {
                    *h = expand(h, env, &format!("writers[{i}].cassandra.hosts"), issues);
                }
            }
            if let WriterSpec::OnlineFeatureStore(o) = w
                && let Some(k) = &mut o.kafka
            {
                for (field, v) in [("topic", &mut k.topic), ("connection_string", &mut k.connection_string)] {
                    if let Some(v) = v {
                        *v = expand(v, env, &format!("writers[{i}].kafka.{field}"), issues);
                    }
                }
                for (name, v) in k.options.iter_mut() {
                    *v = expand(v, env, &format!("writers[{i}].kafka.options.{name}"), issues);
                }
            }
            let p = match w {
                WriterSpec::HistoricalFeatureStore(h) => &mut h.path,
                WriterSpec::OnlineFeatureStore(o) => &mut o.path,
            };
            if let Some(p) = p {
                *p = expand(p, env, &format!("writers[{i}].path"), issues);
            }
        }
    }
}

/// Expands `${VAR}` references in `s`.
pub fn expand(s: &str, env: EnvLookup<'_>, path: &str, issues: &mut SpecIssues) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            match r.find('}') {
                Some(end) => {
                    let name = &r[..end];
                    match env(name) {
                        Some(v) => out.push_str(&v),
                        None => issues.push(path, format!("environment variable `{name}` is not set")),
                    }
                    rest = &r[end + 1..];
                }
                None => {
                    issues.push(path, "unterminated `${` (write `$${` for a literal)");
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Best effort: serde messages name the field but not the full path.
fn yaml_path_of(message: &str) -> String {
    if let Some(start) = message.find("unknown field `") {
        let r = &message[start + 15..];
        if let Some(end) = r.find('`') {
            return r[..end].to_string();
        }
    }
    "spec".to_string()
}

fn clean(message: &str) -> String {
    let mut m = message.to_string();
    // Suggest the nearest valid field for a misspelt one.
    if let (Some(a), Some(b)) = (message.find("unknown field `"), message.find("expected one of ")) {
        let name = &message[a + 15..];
        let name = &name[..name.find('`').unwrap_or(name.len())];
        let expected: Vec<&str> = message[b + 16..]
            .split(',')
            .map(|s| s.trim().trim_matches(|c| c == '`' || c == '.'))
            .collect();
        if let Some(c) = crate::error::did_you_mean(name, expected.iter().copied()) {
            m.push_str(&format!(" (did you mean `{c}`?)"));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_and_reports_missing_ones() {
        let env = |k: &str| (k == "BUCKET").then(|| "b1".to_string());
        let mut issues = SpecIssues::default();
        assert_eq!(
            expand("s3://${BUCKET}/x/$${LIT}", &env, "p", &mut issues),
            "s3://b1/x/${LIT}"
        );
        assert!(issues.is_empty());
        expand("${NOPE}/a", &env, "readers[0].path", &mut issues);
        assert_eq!(issues.0[0].path, "readers[0].path");
        assert!(issues.0[0].message.contains("NOPE"));
    }
}
