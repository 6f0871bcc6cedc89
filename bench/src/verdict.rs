//! How the run-and-check binaries (`shop-chaos`, `shop-replicas`) end and
//! seed themselves, the same way.

use std::process::ExitCode;

/// Runs `check` on a runtime of its own: exit 0 if everything held, 1 if
/// something did not, 2 if the run itself failed (said on stderr).
pub fn exit_with(name: &str, check: impl Future<Output = anyhow::Result<bool>>) -> ExitCode {
    match tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(check))
    {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The seed given, else the clock's seconds (printed by the run, so the
/// same schedule can be run again).
pub fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}
