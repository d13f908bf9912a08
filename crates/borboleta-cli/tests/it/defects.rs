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

/// Runs `borboleta args` in `dir`, reads the first line of its stdout and closes the pipe, as
/// `| head -1` does; returns the exit code, the first line and stderr.
fn closed_after_one_line(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::{BufRead, Read};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_borboleta"))
        .args(args)
        .current_dir(dir)
        .env_remove("BORBOLETA_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // the reader is dropped here: the pipe is closed with most of the output unread
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    (status.code(), first, stderr)
}

/// Checks that `args` prints more than a pipe holds, and ends quietly (exit 0, nothing on
/// stderr) when its stdout is closed after the first line; returns what went wrong.
fn quiet_when_stdout_closes(dir: &Path, args: &[&str]) -> Option<String> {
    let full = run_env(dir, args, &[]);
    assert!(full.status.success(), "{args:?}: {}", text(&full.stderr));
    assert!(
        full.stdout.len() > 256 * 1024,
        "{args:?} must print more than a pipe buffer: {} bytes",
        full.stdout.len()
    );
    let (code, first, stderr) = closed_after_one_line(dir, args);
    let expected_first = text(&full.stdout).lines().next().unwrap().to_string() + "\n";
    (code != Some(0) || !stderr.is_empty() || first != expected_first).then(|| {
        let stderr: String = stderr.lines().take(3).collect::<Vec<_>>().join("\n");
        format!("{args:?}: exit {code:?}, first line {first:?}, stderr:\n{stderr}")
    })
}

/// `borboleta … | head -1`: a closed stdout ends the command quietly, as in other Unix tools (it
/// used to panic with "failed printing to stdout: Broken pipe", exit 101, or fail with an I/O
/// error for jsonl and csv).
#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // run --sql, in every output format
    write(d, "spec.yaml", SPEC);
    write(d, "e.jsonl", "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":1.5}\n");
    let mut failures = Vec::new();
    for output in ["table", "jsonl", "csv"] {
        failures.extend(quiet_when_stdout_closes(
            d,
            &[
                "run",
                "spec.yaml",
                "--quiet",
                "--output",
                output,
                "--sql",
                "select value, 'some text to make the rows longer' as t from generate_series(1, 9999)",
            ],
        ));
    }
    // describe: a feature set with long descriptions
    let description = "a long description of the feature ".repeat(100);
    let features: Vec<String> = (0..100)
        .map(|i| format!("{{name: feature_{i}, from_column: v, dtype: double, description: {i} {description}}}"))
        .collect();
    let wide = SPEC.replace(
        "features: [{name: v, dtype: double}]",
        &format!("features: [{}]", features.join(", ")),
    );
    write(d, "wide.yaml", &wide);
    failures.extend(quiet_when_stdout_closes(d, &["describe", "wide.yaml"]));
    // checkpoint show: an epoch whose planned range is long
    write(
        d,
        "stream.yaml",
        &format!(
            "{}streaming: {{checkpoint_path: ckpt}}\n",
            SPEC.replace("path: e.jsonl, format: json", "path: in, format: json, stream: true")
        ),
    );
    let offsets = d.join("ckpt/user/fs/offsets");
    std::fs::create_dir_all(&offsets).unwrap();
    for epoch in 0..3 {
        let files: Vec<String> = (0..10_000).map(|i| format!("file-{epoch}-{i}.jsonl")).collect();
        let record = serde_json::json!({
            "epoch": epoch,
            "planned_at": "2024-01-01T00:00:00Z",
            "ranges": {"e": {"files": files}},
        });
        std::fs::write(offsets.join(epoch.to_string()), record.to_string()).unwrap();
    }
    failures.extend(quiet_when_stdout_closes(d, &["checkpoint", "show", "stream.yaml"]));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `streaming.checkpoint_path` and `streaming.dead_letter_path` expand `${VAR}` like every other
/// path of the spec (they used to be taken literally: a folder named `${CK}` appeared next to the
/// spec), and an unset variable is a spec error with the YAML path, before anything is written.
#[test]
fn streaming_paths_expand_variables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = format!(
        "{}streaming:\n  checkpoint_path: ${{CK}}/checkpoints\n  dead_letter_path: ${{DL}}\n",
        SPEC.replace("path: e.jsonl, format: json", "path: in, format: json, stream: true")
    );
    write(d, "spec.yaml", &spec);
    std::fs::create_dir_all(d.join("in")).unwrap();
    write(
        d,
        "in/a.jsonl",
        "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":1.5}\nnot json\n",
    );
    let env = [("CK", "state"), ("DL", "bad")];
    let out = run_env(d, &["run", "spec.yaml", "--quiet", "--available-now"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        d.join("state/checkpoints/user/fs/commits/0").is_file(),
        "the checkpoint is under $CK"
    );
    let dead = std::fs::read_to_string(d.join("bad/epoch=0.jsonl")).unwrap();
    assert!(dead.contains("not json"), "{dead}");
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["bad", "in", "spec.yaml", "state"],
        "no folder named after a variable"
    );
    let out = run_env(d, &["checkpoint", "show", "spec.yaml"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("checkpoint: ./state/checkpoints/user/fs\nlast committed epoch: 0\n"),
        "{}",
        text(&out.stdout)
    );

    // unset variables: a spec error naming each path, nothing written
    let fresh = tempfile::tempdir().unwrap();
    let f = fresh.path();
    write(f, "spec.yaml", &spec);
    std::fs::create_dir_all(f.join("in")).unwrap();
    for args in [
        &["run", "spec.yaml", "--quiet", "--available-now"][..],
        &["validate", "spec.yaml"],
        &["checkpoint", "show", "spec.yaml"],
    ] {
        let out = run_env(f, args, &[]);
        assert_eq!(
            (out.status.code(), text(&out.stderr).as_str()),
            (
                Some(2),
                "error: invalid pipeline spec (2 problems):\n  \
                 - streaming.checkpoint_path (line 12): environment variable `CK` is not set\n  \
                 - streaming.dead_letter_path (line 13): environment variable `DL` is not set\n"
            ),
            "{args:?}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(f)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "only spec.yaml and in/: {names:?}");
}

/// `validate` takes `run`'s `--start-date`, `--end-date`, `--date` and `--no-checkpoint`, and
/// refuses what `run` would refuse, with the same message and exit code: an aggregated feature
/// set with windows without an end date (it used to pass `validate` and fail `run`), dates the
/// wrong way round, a date that does not parse, dates on a stream, a stream without a checkpoint.
#[test]
fn validate_refuses_what_run_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "e.jsonl",
        "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":1.5}\n{\"id\":1,\"ts\":\"2024-01-02 10:00:00\",\"v\":2.5}\n",
    );
    let aggregated = SPEC.replace(
        "  features: [{name: v, dtype: double}]\n",
        "  aggregation: {windows: [\"2 days\"]}\n  \
         features: [{name: v, transformation: {type: aggregated, functions: [{function: avg, dtype: double}]}}]\n",
    );
    write(d, "aggregated.yaml", &aggregated);
    write(
        d,
        "stream.yaml",
        &SPEC.replace("path: e.jsonl, format: json", "path: in, format: json, stream: true"),
    );
    std::fs::create_dir_all(d.join("in")).unwrap();
    let problem = |issue: &str| format!("error: invalid pipeline spec (1 problem):\n  - {issue}\n");
    let windows = problem(
        "feature_set.aggregation.windows (line 9): an aggregated feature set with windows needs an end date: \
         run with --end-date (or --date)",
    );
    for (spec, args, expected) in [
        ("aggregated.yaml", &[][..], windows.clone()),
        ("aggregated.yaml", &["--start-date", "2024-01-01"], windows),
        (
            "aggregated.yaml",
            &["--start-date", "2024-01-05", "--end-date", "2024-01-02"],
            problem("--start-date: start date 2024-01-05 is after end date 2024-01-02"),
        ),
        (
            "aggregated.yaml",
            &["--end-date", "2024-13-01"],
            problem("--end-date: `2024-13-01` is not a date; expected YYYY-MM-DD, e.g. 2024-01-31"),
        ),
        (
            "stream.yaml",
            &["--date", "2024-01-01", "--no-checkpoint"],
            problem(
                "--start-date: a streaming pipeline takes whatever arrives: --start-date, --end-date and --date \
                 are for batch runs",
            ),
        ),
        (
            "stream.yaml",
            &[],
            problem(
                "streaming.checkpoint_path: a streaming pipeline needs a checkpoint: set `streaming.checkpoint_path` \
                 or STREAM_CHECKPOINT_PATH, or run with --no-checkpoint (a restart then reads everything again)",
            ),
        ),
    ] {
        for command in ["validate", "run"] {
            let mut a = vec![command, spec];
            a.extend(args);
            if command == "run" {
                a.push("--quiet");
                if spec == "stream.yaml" {
                    a.push("--available-now");
                }
            }
            let out = run_env(d, &a, &[]);
            assert_eq!(
                (out.status.code(), text(&out.stderr)),
                (Some(2), expected.clone()),
                "{a:?}"
            );
        }
    }
    // with what run needs, both go
    for (spec, args) in [
        ("aggregated.yaml", &["--end-date", "2024-01-02"][..]),
        ("aggregated.yaml", &["--date", "2024-01-02"]),
        ("stream.yaml", &["--no-checkpoint"]),
    ] {
        let out = run_env(d, &[&["validate", spec][..], args].concat(), &[]);
        assert!(out.status.success(), "validate {spec} {args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with(&format!("ok: {spec} (fs)\n")),
            "{}",
            text(&out.stdout)
        );
        let mut a = vec!["run", spec, "--quiet"];
        a.extend(args);
        if spec == "stream.yaml" {
            a.push("--available-now");
        }
        let out = run_env(d, &a, &[]);
        assert!(out.status.success(), "{a:?}: {}", text(&out.stderr));
    }
}

/// Names that become columns, tables or folders must be identifiers (letters, digits and `_`, not
/// starting with a digit): a feature named `amount"; DROP TABLE x; --` used to pass `validate`
/// and become a quoted Cassandra column of that name. Every such name is refused with its YAML
/// path, before anything is written.
#[test]
fn names_that_are_not_identifiers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "e.jsonl", "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":1.5}\n");
    write(
        d,
        "spec.yaml",
        r#"
readers: [{id: e, type: file, path: e.jsonl, format: json, schema: {id: bigint, ts: timestamp, v: double}}]
source: {query: select * from e}
feature_set:
  name: fs
  entity: user
  keys:
    - {name: user id, from_column: id, dtype: bigint}
  timestamp: {from_column: ts}
  features:
    - name: 'amount"; DROP TABLE x; --'
      from_column: v
      dtype: double
    - {name: 2v, from_column: v, dtype: double}
    - name: v
      transformation:
        type: spark_function
        functions: [{function: avg, dtype: double}]
        window: {partition_by: id, mode: row_windows, definitions: ["3 past-events"]}
writers: [{type: historical_feature_store}, {type: online_feature_store}]
"#,
    );
    let expected = "error: invalid pipeline spec (4 problems):\n  \
        - feature_set.keys[0].name (line 8): `user id` is not an identifier: a key name is letters, digits \
          and `_`, not starting with a digit (it names a column of the feature stores)\n  \
        - feature_set.features[0].name (line 11): `amount\"; DROP TABLE x; --` is not an identifier: a \
          feature name is letters, digits and `_`, not starting with a digit (it names a column of the \
          feature stores)\n  \
        - feature_set.features[1].name (line 14): `2v` is not an identifier: a feature name is letters, \
          digits and `_`, not starting with a digit (it names a column of the feature stores)\n  \
        - feature_set.features[2].transformation.window.definitions[0] (line 19): window `3 past-events` \
          names the column `v__avg_over_3_past-events_row_windows`, which is not an identifier: write the \
          unit with letters, digits and `_`\n";
    for command in ["validate", "run"] {
        let out = run_env(d, &[command, "spec.yaml"], &[]);
        assert_eq!(
            (out.status.code(), text(&out.stderr).as_str()),
            (Some(2), expected),
            "{command}"
        );
    }
    assert!(!d.join("feature_store").exists(), "nothing written");
}

/// A spec that does not deserialize names the full YAML path of the problem, with its line (an
/// unknown key under `feature_set` used to be reported as `kyes (line 14)`, a bad dtype as
/// `spec (line 20)`, each followed by a source snippet).
#[test]
fn serde_errors_name_the_full_yaml_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "e.jsonl", "{\"id\":1,\"ts\":\"2024-01-01 10:00:00\",\"v\":1.5}\n");
    for (from, to, expected) in [
        (
            "  entity: user\n",
            "  entity: user\n  kyes: []\n",
            "feature_set.kyes (line 7): unknown field `kyes`, expected one of name, entity, description, keys, \
             timestamp, features, deduplicate_rows, aggregation, hooks (did you mean `keys`?)",
        ),
        (
            "features: [{name: v, dtype: double}]",
            "features: [{name: v, dtype: doubel}]",
            "feature_set.features[0].dtype (line 9): unknown data type `doubel` (did you mean `double`?); \
             expected one of: timestamp, timestamp_ntz, binary, boolean, date, decimal, double, float, integer, \
             bigint, string, array<bigint>, array<string>, array<float>",
        ),
        (
            "path: e.jsonl",
            "pathh: e.jsonl",
            "readers[0].pathh (line 2): unknown field `pathh`, expected one of id, path, format, schema, options, \
             columns, incremental_strategy, pre_processing, hooks, stream, max_file_age_seconds (did you mean `path`?)",
        ),
        (
            "{type: online_feature_store, debug_mode: true}",
            "{type: online_feature_store, debug_mode: maybe}",
            "writers[0].debug_mode (line 10): invalid type: string \"maybe\", expected a boolean",
        ),
    ] {
        let spec = SPEC.replace(from, to);
        assert_ne!(spec, SPEC);
        write(d, "spec.yaml", &spec);
        for command in ["validate", "run"] {
            let out = run_env(d, &[command, "spec.yaml"], &[]);
            assert_eq!(
                (out.status.code(), text(&out.stderr)),
                (
                    Some(2),
                    format!("error: invalid pipeline spec (1 problem):\n  - {expected}\n")
                ),
                "{command} {to}"
            );
        }
    }
}
