//! The circuit breaker of one downstream. It counts infrastructure
//! failures only; its state is read and written under one lock, so
//! failures that end at once are all counted.

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
    downstream: String,
    /// Consecutive infrastructure failures that open it.
    threshold: u32,
    /// How long it fails fast before letting a probe through.
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(super) fn new(downstream: &str, threshold: u32, cooldown: Duration) -> Self {
        metrics::gauge!("shop_downstream_breaker_open", "downstream" => downstream.to_owned())
            .set(0.0);
        Self {
            downstream: downstream.to_owned(),
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

    /// Counts a call's outcome.
    pub(super) fn record(&self, outcome: Result<(), Code>) {
        let infrastructure = matches!(outcome, Err(code) if is_infrastructure_failure(code));
        let mut state = self.lock();
        let next = match (*state, infrastructure) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            (_, true) => {
                tracing::warn!(downstream = %self.downstream, "circuit open: failing fast");
                State::Open {
                    until: Instant::now() + self.cooldown,
                }
            }
        };
        let changed_openness =
            matches!(next, State::Open { .. }) != matches!(*state, State::Open { .. });
        *state = next;
        drop(state);
        if changed_openness {
            let open = matches!(next, State::Open { .. });
            metrics::gauge!("shop_downstream_breaker_open", "downstream" => self.downstream.clone())
                .set(if open { 1.0 } else { 0.0 });
        }
    }
}
