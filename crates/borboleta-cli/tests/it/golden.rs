//! Data-driven acceptance tests: `tests/golden/<case>/` holds `spec.yaml`, `input/`, optional
//! `args` (extra CLI arguments) and the expected output: `expected.txt` (stdout of
//! `borboleta run spec.yaml --debug --quiet <args>`, the debug tables sorted) or, for a case
//! named `error_*`, `expected_error.txt` (stderr; exit code 2). A case with a `command` file
//! (the whole argument list, e.g. `explain ../a16_writers/spec.yaml`) runs it instead and
//! snapshots its stdout: CLI output formats and `explain` over another case's spec.
//!
//! Every case runs under three time zones and must give the same bytes. `UPDATE_GOLDEN=1`
//! rewrites the expected files (check the diff against the Butterfree semantics before
//! committing).

use crate::common::{borboleta, repo_root, text};

const TIME_ZONES: [&str; 3] = ["UTC", "America/Sao_Paulo", "Europe/Berlin"];

#[test]
fn golden_cases() {
    let root = repo_root().join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "golden cases missing");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let extra = std::fs::read_to_string(case.join("args")).unwrap_or_default();
        let command = std::fs::read_to_string(case.join("command")).ok();
        let mut args = match &command {
            Some(c) => c.split_whitespace().collect(),
            None => vec!["run", "spec.yaml", "--debug", "--quiet"],
        };
        args.extend(extra.split_whitespace());
        let is_error = name.starts_with("error_");
        let expected_file = case.join(if is_error { "expected_error.txt" } else { "expected.txt" });
        for tz in TIME_ZONES {
            let out = borboleta(case, &args, tz);
            let got = if is_error { text(&out.stderr) } else { text(&out.stdout) };
            let code = out.status.code();
            if is_error && code != Some(2) {
                failures.push(format!(
                    "{name} [{tz}]: exit {code:?}, expected 2\n{}",
                    text(&out.stderr)
                ));
                continue;
            }
            if !is_error && code != Some(0) {
                failures.push(format!("{name} [{tz}]: exit {code:?}\n{}", text(&out.stderr)));
                continue;
            }
            if update && tz == "UTC" {
                std::fs::write(&expected_file, &got).unwrap();
            }
            let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
            if got != expected {
                failures.push(format!(
                    "{name} [{tz}]: output differs\n--- expected\n{expected}\n--- got\n{got}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
