//! Crash points for the crash-recovery tests of streams (`BORBOLETA_FAILPOINT`).

/// Crashes the process at a named step of the protocol when `BORBOLETA_FAILPOINT` is
/// `<name>@<epoch>` (tests of crash recovery). Steps: `after_offsets`, `during_writers`,
/// `before_commit`, `after_commit`.
pub fn failpoint(name: &str, epoch: u64) {
    static SPEC: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        let v = std::env::var("BORBOLETA_FAILPOINT").ok()?;
        let (n, e) = v.split_once('@')?;
        Some((n.to_string(), e.parse().ok()?))
    });
    if let Some((n, e)) = spec
        && n == name
        && *e == epoch
    {
        eprintln!("failpoint {name}@{epoch}: aborting");
        std::process::abort();
    }
}
