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
    output_within(c, &format!("borboleta {args:?} in {}", dir.display()))
}

/// Runs `c` to the end and returns its output. A run that hangs (a stream that never stops)
/// fails the test after 180 s instead of hanging CI: SIGTERM, then SIGKILL 5 s later.
pub fn output_within(mut c: Command, what: &str) -> Output {
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).ok();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            // SIGTERM first, so that a script can stop what it started; then SIGKILL
            let pid = child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().ok();
            std::thread::sleep(std::time::Duration::from_secs(5));
            child.kill().ok();
            panic!("{what} did not finish in 180 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
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

/// Starts `borboleta run spec.yaml --quiet` in `dir` as a stream, its warnings in `stderr.log`.
pub fn spawn_stream(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_borboleta"))
        .args(["run", "spec.yaml", "--quiet"])
        .current_dir(dir)
        .env("BORBOLETA_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

/// The last lines of `stderr.log` of [`spawn_stream`], newest first.
pub fn log_tail(dir: &Path) -> String {
    let t = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    t.lines().rev().take(15).collect::<Vec<_>>().join("\n")
}

/// The last committed epoch of the stream in `dir`, from `checkpoint show`.
pub fn committed_epoch(dir: &Path) -> Option<u64> {
    let show = text(&run_env(dir, &["checkpoint", "show", "spec.yaml"], &[]).stdout);
    show.lines()
        .find_map(|l| l.strip_prefix("last committed epoch: ")?.parse().ok())
}
