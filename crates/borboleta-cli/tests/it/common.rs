use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Runs the `borboleta` binary with `args` in `dir`, with the time zone `tz`.
pub fn borboleta(dir: &Path, args: &[&str], tz: &str) -> Output {
    run_env(dir, args, &[("TZ", tz)])
}

/// Runs the `borboleta` binary with `args` in `dir` and extra environment variables.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_borboleta"));
    c.args(args).current_dir(dir).env_remove("BORBOLETA_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run borboleta")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            if e.file_name() != "feature_store" {
                copy_dir(&e.path(), &target);
            }
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
