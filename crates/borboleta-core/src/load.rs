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
        if let Some(s) = &mut self.streaming {
            for (field, v) in [
                ("checkpoint_path", &mut s.checkpoint_path),
                ("dead_letter_path", &mut s.dead_letter_path),
            ] {
                if let Some(v) = v {
                    *v = expand(v, env, &format!("streaming.{field}"), issues);
                }
            }
        }
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
                match &mut c.hosts {
                    Some(OneOrMany::One(h)) => *h = expand(h, env, &format!("writers[{i}].cassandra.hosts"), issues),
                    Some(OneOrMany::Many(hosts)) => {
                        for (j, h) in hosts.iter_mut().enumerate() {
                            *h = expand(h, env, &format!("writers[{i}].cassandra.hosts[{j}]"), issues);
                        }
                    }
                    None => {}
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

    const STREAM: &str = "\
readers: [{id: e, type: file, path: in, format: json, stream: true}]
source: {query: select * from e}
feature_set:
  name: fs
  entity: user
  keys: [{name: id, dtype: bigint}]
  features: [{name: v, dtype: double}]
writers:
  - type: online_feature_store
    cassandra: {keyspace: ks, hosts: [\"${H1}\", \"${H2}:9142\"]}
streaming: {checkpoint_path: \"${ROOT}/ck\", dead_letter_path: \"${ROOT}/dl\"}
";

    #[test]
    fn streaming_paths_and_host_lists_are_expanded() {
        let env = |k: &str| match k {
            "ROOT" => Some("/data".to_string()),
            "H1" => Some("cass-1".to_string()),
            _ => None,
        };
        let err = FeatureSetPipelineSpec::parse_yaml_str(STREAM, None, &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pipeline spec (1 problem):\n  - writers[0].cassandra.hosts[1] (line 10): environment variable `H2` is not set"
        );
        let env = |k: &str| env(k).or_else(|| (k == "H2").then(|| "cass-2".to_string()));
        let spec = FeatureSetPipelineSpec::parse_yaml_str(STREAM, None, &env).unwrap();
        let s = spec.streaming.unwrap();
        assert_eq!(s.checkpoint_path.as_deref(), Some("/data/ck"));
        assert_eq!(s.dead_letter_path.as_deref(), Some("/data/dl"));
        let WriterSpec::OnlineFeatureStore(o) = &spec.writers[0] else {
            panic!()
        };
        assert_eq!(
            o.cassandra.as_ref().unwrap().hosts,
            Some(OneOrMany::Many(vec!["cass-1".into(), "cass-2:9142".into()]))
        );
        let err = FeatureSetPipelineSpec::parse_yaml_str(STREAM, None, &|_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pipeline spec (4 problems):\n  \
             - streaming.checkpoint_path (line 11): environment variable `ROOT` is not set\n  \
             - streaming.dead_letter_path (line 11): environment variable `ROOT` is not set\n  \
             - writers[0].cassandra.hosts[0] (line 10): environment variable `H1` is not set\n  \
             - writers[0].cassandra.hosts[1] (line 10): environment variable `H2` is not set"
        );
    }
}
