//! Graceful shutdown, in two steps. SIGTERM or Ctrl-C first starts
//! *draining*: the service says it no longer serves (`grpc.health.v1`
//! NOT_SERVING, `/readyz` 503), so balancers send it no new calls, while it
//! still serves whatever arrives. After the drain delay, shutdown is
//! *requested*: the listener stops accepting and lets in-flight calls
//! finish, long streams end cleanly, and the background work (relays, saga
//! steps, sweeps) is let finish before the process exits.
//!
//! The grace period is spent once: in-flight calls and background work
//! share one deadline, counted from the moment shutdown was requested, so
//! the worst case is drain + grace, which a pod's termination grace period
//! must cover.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::time::Instant;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// A cloneable shutdown signal, and the background work it waits for.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    draining: CancellationToken,
    token: CancellationToken,
    work: TaskTracker,
    /// When shutdown was requested: the grace period counts from here.
    requested_at: Arc<OnceLock<Instant>>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drains when the process gets SIGTERM or Ctrl-C, and stops
    /// `drain_delay` later.
    pub fn on_signals(drain_delay: Duration) -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            trigger.drain_then_trigger(drain_delay).await;
        });
        shutdown
    }

    /// Starts draining, and requests shutdown `delay` later.
    pub async fn drain_then_trigger(&self, delay: Duration) {
        if !delay.is_zero() && !self.draining.is_cancelled() {
            tracing::info!(
                drain_ms = delay.as_millis() as u64,
                "draining: not serving new calls, still answering"
            );
            self.draining.cancel();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.token.cancelled() => {}
            }
        }
        tracing::info!("shutdown requested: finishing in-flight requests");
        self.trigger();
    }

    /// Requests shutdown at once (draining too, if it had not started).
    pub fn trigger(&self) {
        let _ = self.requested_at.set(Instant::now());
        self.draining.cancel();
        self.token.cancel();
    }

    /// When a `grace` counted from the request for shutdown runs out (from
    /// now, if none was requested yet): the one deadline the listener's
    /// in-flight calls and the background work share.
    pub fn grace_deadline(&self, grace: Duration) -> Instant {
        let requested = self.requested_at.get().copied();
        requested.unwrap_or_else(Instant::now) + grace
    }

    /// Whether draining (or shutdown) has started.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Resolves once draining (or shutdown) has started.
    pub async fn draining(&self) {
        self.draining.cancelled().await;
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been requested.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// Runs background work that shutdown lets finish: the work should
    /// watch [`Self::requested`] between steps and return, never stop
    /// half-way through one. It works for the spawning task's service (its
    /// spans are that service's).
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.work
            .spawn(shop_kit_observe::traces::with_current_service(work))
    }

    /// Waits for the background work to end, at most until `grace` after
    /// shutdown was requested (the same deadline as in-flight calls, see
    /// [`Self::grace_deadline`]). False when some was still running.
    pub async fn work_finished(&self, grace: Duration) -> bool {
        self.work.close();
        tokio::time::timeout_at(self.grace_deadline(grace), self.work.wait())
            .await
            .is_ok()
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_work_is_let_finish_its_step_within_the_grace() {
        let shutdown = Shutdown::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let watcher = shutdown.clone();
        shutdown.spawn(async move {
            watcher.requested().await;
            // A step that was under way when shutdown came.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = done_tx.send(());
        });
        shutdown.trigger();
        assert!(shutdown.work_finished(Duration::from_secs(5)).await);
        assert!(done_rx.await.is_ok(), "the step finished");
    }

    #[tokio::test]
    async fn draining_comes_first_and_shutdown_after_the_delay() {
        let shutdown = Shutdown::new();
        let started = tokio::time::Instant::now();
        let stopping = shutdown.clone();
        let drained = tokio::spawn(async move {
            stopping
                .drain_then_trigger(Duration::from_millis(200))
                .await;
        });
        shutdown.draining().await;
        assert!(shutdown.is_draining());
        assert!(!shutdown.is_triggered(), "still serving while draining");
        shutdown.requested().await;
        assert!(started.elapsed() >= Duration::from_millis(190));
        drained.await.expect("join");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_and_background_work_share_one_grace() {
        let shutdown = Shutdown::new();
        shutdown.spawn(std::future::pending::<()>());
        shutdown.trigger();
        // The listener spent 8 s of a 10 s grace on in-flight calls...
        tokio::time::sleep(Duration::from_secs(8)).await;
        let waited = Instant::now();
        assert!(!shutdown.work_finished(Duration::from_secs(10)).await);
        // ...so the background work gets the 2 s left, not 10 more.
        assert_eq!(waited.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn work_that_never_ends_is_given_up_after_the_grace() {
        let shutdown = Shutdown::new();
        shutdown.spawn(std::future::pending::<()>());
        shutdown.trigger();
        assert!(!shutdown.work_finished(Duration::from_millis(50)).await);
    }
}
