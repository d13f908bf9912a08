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
        let mut spec: FeatureSetPipelineSpec = serde_saphyr::from_str(text).map_err(|e| deserialize_error(text, &e))?;
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

/// A spec error for a document that does not deserialize: the full YAML path of the offending
/// node (found from serde-saphyr's location in the parsed document), its line, and the bare
/// message (no location prefix, no source snippet: the path and its line say where).
fn deserialize_error(text: &str, e: &serde_saphyr::Error) -> Error {
    use serde_saphyr::MessageFormatter;
    let location = e.location();
    let message = serde_saphyr::DefaultMessageFormatter.format_message(e.without_snippet());
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let (path, line) = location
        .and_then(|l| {
            let span = l.span();
            crate::yaml_lines::error_path(text, span.offset() as usize, span.len() as usize, &message)
        })
        .filter(|(p, _)| !p.is_empty())
        // a syntax error: no node to name
        .unwrap_or_else(|| ("spec".to_string(), location.map_or(0, |l| l.line() as usize)));
    let line = Some(line).filter(|l| *l > 0);
    Error::Spec(SpecIssues(vec![SpecIssue {
        path,
        line,
        message: clean(&message),
    }]))
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

    const BASE: &str = "\
readers:
  - {id: events, type: file, path: events.jsonl, format: json}
source: {query: select * from events}
feature_set:
  name: user_features
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features:
    - name: amount
      dtype: double
writers: [{type: online_feature_store}]
";

    /// The one problem of `BASE` with `from` replaced by `to`.
    fn problem(from: &str, to: &str) -> String {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "{from}");
        let err = FeatureSetPipelineSpec::parse_yaml_str(&text, None, &|_| None).unwrap_err();
        let Error::Spec(issues) = err else { panic!("{err}") };
        assert_eq!(issues.0.len(), 1);
        issues.0[0].to_string()
    }

    #[test]
    fn deserialize_errors_have_full_paths() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "  entity: user\n",
                "  entity: user\n  kyes: x\n",
                "feature_set.kyes (line 7): unknown field `kyes`, expected one of name, entity, description, keys, timestamp, features, deduplicate_rows, aggregation, hooks (did you mean `keys`?)",
            ),
            (
                "dtype: double",
                "dtype: doubel",
                "feature_set.features[0].dtype (line 11): unknown data type `doubel` (did you mean `double`?); expected one of: timestamp, timestamp_ntz, binary, boolean, date, decimal, double, float, integer, bigint, string, array<bigint>, array<string>, array<float>",
            ),
            (
                "path: events.jsonl",
                "pathh: events.jsonl",
                "readers[0].pathh (line 2): unknown field `pathh`, expected one of id, path, format, schema, options, columns, incremental_strategy, pre_processing, hooks, stream, max_file_age_seconds (did you mean `path`?)",
            ),
            (
                "format: json}",
                "format: jsn}",
                "readers[0].format (line 2): unknown variant `jsn`, expected one of parquet, csv, json, jsonl, ndjson",
            ),
            (
                "{type: online_feature_store}",
                "{type: online_feature_stor}",
                "writers[0].type (line 12): unknown variant `online_feature_stor`, expected one of historical_feature_store, online_feature_store",
            ),
            (
                "{type: online_feature_store}",
                "{type: online_feature_store, debug_mod: true}",
                "writers[0].debug_mod (line 12): unknown field `debug_mod`, expected one of path, debug_mode, write_to_entity, max_future_skew_seconds, cassandra, kafka, ttl_seconds (did you mean `debug_mode`?)",
            ),
            ("  entity: user\n", "", "feature_set (line 4): missing field `entity`"),
            (
                "      dtype: double\n",
                "      dtype: double\n      transformation: {type: sql_expression, expresion: x}\n",
                "feature_set.features[0].transformation.expresion (line 12): unknown field `expresion`, expected one of expression (did you mean `expression`?)",
            ),
            (
                "      dtype: double\n",
                "      dtype: double\n      transformation: {type: sql_expression}\n",
                "feature_set.features[0].transformation (line 12): missing field `expression`",
            ),
            (
                "      dtype: double\n",
                "      transformation: {type: sql_expression}\n      dtype: double\n",
                "feature_set.features[0].transformation (line 11): missing field `expression`",
            ),
            (
                "      dtype: double\n",
                "      dtype: double\n      transformation:\n        type: sql_expresion\n        expression: x\n",
                "feature_set.features[0].transformation.type (line 13): unknown variant `sql_expresion`, expected one of sql_expression, function, spark_function, aggregated, aggregated_transform, h3, h3_hash, stack",
            ),
            (
                "      dtype: double\n",
                "      dtype: double\n      transformation:\n        type: spark_function\n        functions: [{function: avg, dtype: double}]\n        window: {partition_by: id, mode: fixed_windowz, definitions: [1 day]}\n",
                "feature_set.features[0].transformation.window.mode (line 15): unknown variant `fixed_windowz`, expected one of fixed_windows, row_windows, rolling_windows",
            ),
            (
                "[{name: id, dtype: bigint}]",
                "[{name: id, dtype: [1]}]",
                "feature_set.keys[0].dtype (line 7): expected string scalar",
            ),
            (
                "writers:",
                "writer:",
                "writer (line 12): unknown field `writer`, expected one of readers, source, feature_set, writers, sink, streaming, catalog (did you mean `writers`?)",
            ),
            (
                "{from_column: ts}",
                "{from_column: ts, from_ms: maybe}",
                "feature_set.timestamp.from_ms (line 8): invalid boolean",
            ),
            (
                "source: {query: select * from events}",
                "source: {}",
                "source (line 3): missing field `query`",
            ),
            (
                "source: {query: select * from events}",
                "source:\n  hooks: {}",
                "source (line 3): missing field `query`",
            ),
            (
                "    - name: amount\n      dtype: double\n",
                "    name: amount\n",
                "feature_set.features (line 9): expected sequence start",
            ),
            (
                "  name: user_features\n",
                "  name: user_features\n  name: again\n",
                "feature_set.name (line 6): duplicate mapping key: name",
            ),
            (
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - id: events\n    type: file\n    path: events.jsonl\n    format: json\n    schema: {a: doubel}\n",
                "readers[0].schema.a (line 6): unknown data type `doubel` (did you mean `double`?); expected one of: timestamp, timestamp_ntz, binary, boolean, date, decimal, double, float, integer, bigint, string, array<bigint>, array<string>, array<float>",
            ),
            (
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - id: events\n    type: file\n    path: events.jsonl\n    format: json\n    options: {a: [1]}\n",
                "readers[0].options.a (line 6): invalid type: sequence, expected a string",
            ),
            (
                "  - {id: events, type: file, path: events.jsonl, format: json}\n",
                "  - id: events\n    type: file\n    path: events.jsonl\n    format: json\n    incremental_strategy: {colum: ts}\n",
                "readers[0].incremental_strategy.colum (line 6): unknown field `colum`, expected one of column, from_milliseconds, from_string, mask, from_year_month_day_partitions (did you mean `column`?)",
            ),
            (
                "{type: online_feature_store}",
                "{type: online_feature_store, cassandra: {port: 99999}}",
                "writers[0].cassandra.port (line 12): invalid value: integer `99999`, expected u16",
            ),
            (
                "{type: online_feature_store}",
                "{type: online_feature_store, cassandra: {prot: 1}}",
                "writers[0].cassandra.prot (line 12): unknown field `prot`, expected one of hosts, port, keyspace, local_dc, username, password, read_consistency, write_consistency, create_keyspace, tls (did you mean `port`?)",
            ),
            (", format: json}", "}", "readers[0] (line 2): missing field `format`"),
            (
                "  entity: user\n",
                "  entity: user\n    bad: indent\n",
                "spec (line 7): mapping values are not allowed in this context",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(problem(from, to), *expected, "{to:?}");
        }
    }
}
