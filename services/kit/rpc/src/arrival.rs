//! What a connection knows of each request it hands the app: who sent it
//! and its count among the connection's requests in flight, which the
//! connection's idle timer reads (a connection with a request in flight is
//! never idle; one is idle a while after its last request's answer was
//! sent or dropped).

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

/// Requests in flight on one connection, and when one last ended.
pub(super) struct Activity {
    in_flight: AtomicUsize,
    changed_at_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            changed_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_at_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = Duration::from_millis(self.changed_at_ms.load(Ordering::Relaxed));
            let quiet_until = self.epoch + changed + timeout;
            if self.in_flight.load(Ordering::Relaxed) == 0 && Instant::now() >= quiet_until {
                return;
            }
            let next = if self.in_flight.load(Ordering::Relaxed) == 0 {
                quiet_until
            } else {
                Instant::now() + timeout
            };
            tokio::time::sleep_until(next.max(Instant::now() + Duration::from_millis(10))).await;
        }
    }
}

/// What a connection knows of a request it hands the app: who sent it
/// (the peer, or whom a trusted proxy forwarded it for: as the request's
/// extensions say it too) and its count among the requests in flight.
pub(crate) struct Arrival {
    pub(crate) client: IpAddr,
    pub(crate) in_flight: InFlight,
}

/// Counts one request in flight until its response body is gone.
pub(crate) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn start(activity: Arc<Activity>) -> Self {
        // No clock read: while a request is in flight the connection is
        // not idle whatever the time, and its end is what is timed.
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
