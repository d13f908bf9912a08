//! Defects found by a new user (issue 16, item 9): each test failed before its fix.

use std::path::Path;

use crate::common::{run_env, text};

/// A row-level spec over `e.jsonl` (`id`, `ts`, `v`) whose online writer is a debug table.
const SPEC: &str = r#"
readers: [{id: e, type: file, path: e.jsonl, format: json, schema: {id: bigint, ts: timestamp, v: double}}]
source: {query: select * from e}
feature_set:
  name: fs
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features: [{name: v, dtype: double}]
writers: [{type: online_feature_store, debug_mode: true}]
"#;

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap();
}

/// `--output jsonl` writes every column on every line, a null one as `null` (it used to leave
/// null fields out, so a consumer could not tell a null from a missing column).
#[test]
fn jsonl_output_keeps_null_fields() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "spec.yaml", SPEC);
    write(
        d,
        "e.jsonl",
        "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":null}\n{\"id\":2,\"ts\":\"2024-01-01 11:00:00\",\"v\":2.5}\n",
    );
    let out = run_env(d, &["run", "spec.yaml", "--quiet", "--output", "jsonl"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"table\":\"online_feature_store__fs\",\"id\":1,\"timestamp\":\"2024-01-01T10:00:00Z\",\"v\":null}\n\
         {\"table\":\"online_feature_store__fs\",\"id\":2,\"timestamp\":\"2024-01-01T11:00:00Z\",\"v\":2.5}\n"
    );
    // a query's null columns too
    let out = run_env(
        d,
        &[
            "run",
            "spec.yaml",
            "--quiet",
            "--output",
            "jsonl",
            "--sql",
            "select id, cast(null as bigint) as nothing from online_feature_store__fs order by id",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"id\":1,\"nothing\":null}\n{\"id\":2,\"nothing\":null}\n"
    );
}
