//! What a connection knows of each request it hands the app: who sent it
//! and its count among the connection's requests in flight, which the
//! connection's idle timer reads (a connection with a request in flight is
//! never idle; one is idle a while after its last request's answer was
//! sent or dropped).

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Looks at a connection's activity per idle timeout: its idleness is
/// seen at most a quarter of the timeout late.
const LOOKS_PER_TIMEOUT: u32 = 4;
/// The shortest time between two looks.
const LOOK_EVERY_AT_LEAST: Duration = Duration::from_millis(10);
/// A request begun, in [`Activity`]'s word (the requests in flight are
/// its low half).
const BEGUN: u64 = 1 << 32;
/// The requests in flight, in [`Activity`]'s word.
const IN_FLIGHT: u64 = BEGUN - 1;

/// Requests in flight on one connection, and how many have begun, in one
/// word: a request's start and end each change it once, with no clock
/// read (the idle timer looks at it now and then instead).
pub(super) struct Activity {
    /// Requests begun (high half, wrapping) and in flight (low half).
    word: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
        }
    }

    /// Resolves once no request has been in flight for `timeout` (seen
    /// within a quarter of it): each look finds none in flight and none
    /// begun since the last, `LOOKS_PER_TIMEOUT` times in a row.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        let every = (timeout / LOOKS_PER_TIMEOUT).max(LOOK_EVERY_AT_LEAST);
        let mut looks = tokio::time::interval(every);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        let mut quiet = Duration::ZERO;
        loop {
            looks.tick().await;
            let now = self.word.load(Ordering::Relaxed);
            // Nothing in flight now or at the last look, nothing begun
            // between: nothing was in flight since the last look.
            quiet = if last == Some(now) && now & IN_FLIGHT == 0 {
                quiet + every
            } else {
                Duration::ZERO
            };
            if quiet >= timeout {
                return;
            }
            last = Some(now);
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
        activity.word.fetch_add(BEGUN + 1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.word.fetch_sub(1, Ordering::Relaxed);
    }
}
