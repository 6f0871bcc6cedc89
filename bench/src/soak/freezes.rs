//! `--freeze-database EVERY,FOR`: the whole database stalled now and then,
//! as a slow flush of the disk stalls every commit of every service at
//! once. Every EVERY, each PostgreSQL process on this machine is stopped
//! (SIGSTOP) for FOR and then let go on (SIGCONT), with `pkill -x
//! postgres`: so only a server on this machine, signalled by a user allowed
//! to (root, as `just soak` runs it).
//!
//! The processes are let go on whatever happens to the soak: when the
//! freezing stops, and when the task is dropped mid-freeze (an error, ^C).

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::{process::Command, sync::oneshot, task::JoinHandle};

/// The freezing, while it goes on.
pub struct Freezes {
    hold: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<u32>,
}

impl Freezes {
    /// Freezes PostgreSQL for `hold` every `every`, from now on; an error
    /// if no PostgreSQL process on this machine can be signalled.
    pub async fn start(every: Duration, hold: Duration) -> anyhow::Result<Self> {
        signal("-CONT").await.context(
            "--freeze-database stops PostgreSQL's processes on this machine: \
             it needs the server here and a user allowed to signal it (root)",
        )?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut frozen = 0;
            let mut next = Instant::now() + every;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep_until(next.into()) => {}
                }
                let frozen_now = Frozen { thawed: false };
                if signal("-STOP").await.is_err() {
                    break;
                }
                frozen += 1;
                tokio::time::sleep(hold).await;
                frozen_now.thaw().await;
                next += every;
            }
            frozen
        });
        Ok(Self {
            hold,
            stop: Some(stop),
            task,
        })
    }

    /// Stops freezing (the database let go on); what was done, for the
    /// report.
    pub async fn finish(mut self) -> String {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let times = (&mut self.task).await.unwrap_or_default();
        format!(
            "PostgreSQL frozen {times} times for {} ms",
            self.hold.as_millis()
        )
    }
}

impl Drop for Freezes {
    /// Not finished (the soak failed): no more freezing, and a freeze
    /// under way is let go on (see [`Frozen`]).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// PostgreSQL stopped: let go on by [`Frozen::thaw`], or when dropped
/// (the task dropped mid-freeze).
struct Frozen {
    thawed: bool,
}

impl Frozen {
    async fn thaw(mut self) {
        self.thawed = true;
        if let Err(error) = signal("-CONT").await {
            eprintln!("soak: {error:#}; PostgreSQL may still be stopped (pkill -CONT -x postgres)");
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            // No runtime to wait on here: a short process, waited for.
            let _ = std::process::Command::new("pkill")
                .args(["-CONT", "-x", "postgres"])
                .status();
        }
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to every process named `postgres`.
async fn signal(signal: &str) -> anyhow::Result<()> {
    let status = Command::new("pkill")
        .args([signal, "-x", "postgres"])
        .status()
        .await
        .context("pkill (procps)")?;
    anyhow::ensure!(
        status.success(),
        "pkill {signal} -x postgres: no PostgreSQL process here that this user may signal ({status})"
    );
    Ok(())
}
