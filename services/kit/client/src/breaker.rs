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

use super::status::is_infrastructure_failure;

/// Whether a call may go to an endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// Closed: any call.
    Closed,
    /// Cooled down: this call, as the probe.
    Probe,
    /// Open: none until then.
    Until(Instant),
}

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
    #[cfg(test)]
    pub(super) fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
    }

    /// Whether it fails calls fast: open, or half open (only a probe goes).
    pub(super) fn is_failing(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    /// Whether a call may go now: any (closed), this one as the probe
    /// (cooled down: the probe slot is taken), or none until when.
    pub(super) fn admission(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Closed,
            State::Open { until } if now < until => Admission::Until(until),
            State::HalfOpen { probe_sent } if now < probe_sent + self.cooldown => {
                Admission::Until(probe_sent + self.cooldown)
            }
            // Cooled down: this call is the probe.
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { probe_sent: now };
                Admission::Probe
            }
        }
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

    /// Counts a call's outcome; `Some(open)` when that opened or closed it.
    /// A cancelled call (its caller gave up) says nothing of the endpoint.
    pub(super) fn record(&self, code: Code) -> Option<bool> {
        if code == Code::Cancelled {
            return None;
        }
        let infrastructure = is_infrastructure_failure(code);
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
                        breaker.record(Code::Unavailable);
                    }
                });
            }
        });
        assert!(breaker.is_open(), "{breaker:?}");
        let sequential = Breaker::new(400, Duration::from_secs(60));
        for _ in 0..399 {
            assert_eq!(sequential.record(Code::Unavailable), None);
        }
        assert!(!sequential.is_open(), "one short of the threshold");
        assert_eq!(sequential.record(Code::Unavailable), Some(true));
        assert!(sequential.is_open());
    }

    // On a paused clock: the cool-down passes when the test says, never
    // early on a machine too busy to run it at once.
    #[tokio::test(start_paused = true)]
    async fn business_errors_never_open_it_and_a_probe_closes_it() {
        let breaker = Breaker::new(2, Duration::from_millis(50));
        for _ in 0..10 {
            breaker.record(Code::NotFound);
            // A refusal for want of room (an overloaded replica's
            // admission control): no sign of a broken endpoint.
            breaker.record(Code::ResourceExhausted);
        }
        assert!(!breaker.is_open(), "not_found is the caller's problem");
        breaker.record(Code::Internal);
        breaker.record(Code::Cancelled);
        breaker.record(Code::Unknown);
        assert!(breaker.is_open(), "a cancelled call breaks no streak");
        assert!(matches!(
            breaker.admission(Instant::now()),
            Admission::Until(_)
        ));
        assert!(!breaker.would_admit(Instant::now()));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(breaker.would_admit(Instant::now()));
        assert_eq!(breaker.admission(Instant::now()), Admission::Probe);
        assert!(
            matches!(breaker.admission(Instant::now()), Admission::Until(_)),
            "one probe at a time"
        );
        assert!(breaker.is_failing());
        assert_eq!(breaker.record(Code::Ok), Some(false), "the probe closed it");
        assert_eq!(breaker.admission(Instant::now()), Admission::Closed);
        assert!(!breaker.is_failing());
    }
}
