//! The circuit breaker of one endpoint. It counts infrastructure failures
//! only; its state is read and written under one lock, so failures that end
//! at once are all counted. One per endpoint: a dead replica opens its own
//! breaker, never its healthy sibling's.

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::time::Instant;
use tonic::Code;

use super::is_infrastructure_failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Cooled down: one probe call is on its way (if it never reports, say
    /// its caller gave up, another may go after a cool-down).
    HalfOpen {
        probe_sent: Instant,
    },
}

#[derive(Debug)]
pub(super) struct Breaker {
    /// Consecutive infrastructure failures that open it.
    threshold: u32,
    /// How long it fails fast before letting a probe through.
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(super) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether it is open (failing fast) right now.
    pub(super) fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
    }

    /// Whether [`Self::admit`] would let a call through now (without
    /// taking the probe slot).
    pub(super) fn would_admit(&self, now: Instant) -> bool {
        match *self.lock() {
            State::Closed { .. } => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probe_sent } => now >= probe_sent + self.cooldown,
        }
    }

    /// Whether a call may go through now (taking the probe slot when
    /// half-open).
    pub(super) fn admit(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let (admitted, next) = match *state {
            State::Closed { .. } => (true, *state),
            State::Open { until } if now < until => (false, *state),
            State::HalfOpen { probe_sent } if now < probe_sent + self.cooldown => (false, *state),
            // Cooled down: this call is the probe.
            State::Open { .. } | State::HalfOpen { .. } => {
                (true, State::HalfOpen { probe_sent: now })
            }
        };
        *state = next;
        admitted
    }

    /// Counts a call's outcome; `Some(open)` when that opened or closed it.
    pub(super) fn record(&self, outcome: Result<(), Code>) -> Option<bool> {
        let infrastructure = matches!(outcome, Err(code) if is_infrastructure_failure(code));
        let mut state = self.lock();
        let next = match (*state, infrastructure) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            (_, true) => State::Open {
                until: Instant::now() + self.cooldown,
            },
        };
        // Half-open counts as open: calls still fail fast but for the probe.
        let was_open = !matches!(*state, State::Closed { .. });
        let open = !matches!(next, State::Closed { .. });
        *state = next;
        (was_open != open).then_some(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_ending_at_once_are_all_counted() {
        // 8 threads each record 50 failures: 400 against a threshold of 400
        // must open the breaker, exactly as 400 in a row do.
        let breaker = Breaker::new(400, Duration::from_secs(60));
        std::thread::scope(|threads| {
            for _ in 0..8 {
                threads.spawn(|| {
                    for _ in 0..50 {
                        breaker.record(Err(Code::Unavailable));
                    }
                });
            }
        });
        assert!(breaker.is_open(), "{breaker:?}");
        let sequential = Breaker::new(400, Duration::from_secs(60));
        for _ in 0..399 {
            assert_eq!(sequential.record(Err(Code::Unavailable)), None);
        }
        assert!(!sequential.is_open(), "one short of the threshold");
        assert_eq!(sequential.record(Err(Code::Unavailable)), Some(true));
        assert!(sequential.is_open());
    }

    #[tokio::test]
    async fn business_errors_never_open_it_and_a_probe_closes_it() {
        let breaker = Breaker::new(2, Duration::from_millis(50));
        for _ in 0..10 {
            breaker.record(Err(Code::NotFound));
        }
        assert!(!breaker.is_open(), "not_found is the caller's problem");
        breaker.record(Err(Code::Internal));
        breaker.record(Err(Code::Unknown));
        assert!(breaker.is_open());
        assert!(!breaker.admit(), "open: fail fast");
        assert!(!breaker.would_admit(Instant::now()));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(breaker.would_admit(Instant::now()));
        assert!(breaker.admit(), "cooled down: the probe");
        assert!(!breaker.admit(), "one probe at a time");
        assert_eq!(breaker.record(Ok(())), Some(false), "the probe closed it");
        assert!(breaker.admit());
    }
}
