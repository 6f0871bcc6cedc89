//! The door of a server's work: calls in flight up to the adaptive limit,
//! then a short queue, then a refusal at once.
//!
//! A call that finds the limit used joins the queue (first come, first
//! served) if it would wait there no longer than the queue's allowance;
//! otherwise it is refused at once. Its wait is expected from Little's law:
//! with the limit's calls at work each taking the recent mean latency, a
//! place frees every latency / limit, so the n-th in the queue waits about
//! n times that (or, when nothing has finished or been let in for longer,
//! n times the time since). The allowance is generous ([`LONG_WAIT`]) while the queue keeps
//! emptying, and short ([`SHORT_WAIT`]) once it has not been empty for
//! [`STANDING`]: CoDel's rule, a standing queue is overload, and in
//! overload a call is better refused in microseconds than served late. A
//! queued call still waiting at twice its allowance gives up and is
//! refused.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use metrics::{Counter, Gauge};
use tokio::sync::oneshot;

use super::limit::{Limit, LimitConfig};

/// How long a call may expect to queue while the queue keeps emptying.
pub const LONG_WAIT: Duration = Duration::from_millis(100);
/// How long a call may expect to queue once the queue stands.
pub const SHORT_WAIT: Duration = Duration::from_millis(5);
/// A queue not empty for this long is standing.
pub const STANDING: Duration = Duration::from_millis(100);
/// Calls queued at most, whatever the pace (each is a small allocation).
const MAX_QUEUED: usize = 1024;
/// How much of a new latency the mean latency takes.
const LATENCY_SHARE: f64 = 0.1;

/// Why a call was refused (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue held as much as can be served within its allowance.
    QueueFull,
    /// It waited in the queue for twice its allowance.
    QueueTimeout,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::QueueTimeout => "queue_timeout",
        }
    }
}

/// What the gate's state looks like to its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub limit: usize,
    pub in_flight: usize,
    pub queued: usize,
}

/// The gate's metrics, labelled with the server's (first) service.
struct Meters {
    limit: Gauge,
    in_flight: Gauge,
    queued: Gauge,
    queue_full: Counter,
    queue_timeout: Counter,
}

impl Meters {
    fn new(service: &str) -> Self {
        let service = service.to_owned();
        let refused = |reason: Refused| metrics::counter!("shop_admission_refused_total", "service" => service.clone(), "reason" => reason.as_str());
        Self {
            limit: metrics::gauge!("shop_admission_limit", "service" => service.clone()),
            in_flight: metrics::gauge!("shop_admission_in_flight", "service" => service.clone()),
            queued: metrics::gauge!("shop_admission_queued", "service" => service.clone()),
            queue_full: refused(Refused::QueueFull),
            queue_timeout: refused(Refused::QueueTimeout),
        }
    }

    fn refused(&self, why: Refused) {
        match why {
            Refused::QueueFull => self.queue_full.increment(1),
            Refused::QueueTimeout => self.queue_timeout.increment(1),
        }
    }
}

struct Waiter {
    id: u64,
    admit: oneshot::Sender<()>,
}

struct State {
    limit: Limit,
    in_flight: usize,
    queue: VecDeque<Waiter>,
    next_id: u64,
    /// When the queue was last empty.
    emptied: Instant,
    /// The recent mean latency of the calls at work, in seconds (0: none
    /// finished yet).
    latency: f64,
    /// When a call last finished or was let in.
    last_progress: Instant,
    meters: Meters,
}

impl State {
    /// The load now, as the metrics show it.
    fn show(&self) -> Load {
        let load = self.load();
        self.meters.limit.set(load.limit as f64);
        self.meters.in_flight.set(load.in_flight as f64);
        self.meters.queued.set(load.queued as f64);
        load
    }

    fn load(&self) -> Load {
        Load {
            limit: self.limit.current(),
            in_flight: self.in_flight,
            queued: self.queue.len(),
        }
    }

    /// Hands freed places to the first callers queued.
    fn admit_queued(&mut self, now: Instant) {
        while self.in_flight < self.limit.current() {
            let Some(waiter) = self.queue.pop_front() else {
                break;
            };
            // A waiter that gave up removed itself first: this one waits.
            if waiter.admit.send(()).is_ok() {
                self.in_flight += 1;
                self.limit.admitted(self.in_flight);
            }
        }
        if self.queue.is_empty() {
            self.emptied = now;
        }
    }
}

/// One server's gate, shared by every connection.
#[derive(Clone)]
pub struct Gate {
    state: Arc<Mutex<State>>,
}

/// What the gate says to a call.
pub enum Entry {
    Admitted(Pass),
    Queued(Ticket),
    Refused(Refused, Load),
}

impl Gate {
    /// A gate for a server of `methods` methods, its metrics labelled
    /// `service`.
    pub fn new(config: LimitConfig, methods: usize, service: &str) -> Self {
        let now = Instant::now();
        let gate = Self {
            state: Arc::new(Mutex::new(State {
                limit: Limit::new(config, methods, now),
                in_flight: 0,
                queue: VecDeque::new(),
                next_id: 0,
                emptied: now,
                latency: 0.0,
                last_progress: now,
                meters: Meters::new(service),
            })),
        };
        gate.lock().show();
        gate
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays whole whatever a panicking holder did (every
        // change is a few assignments): go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    pub fn load(&self) -> Load {
        self.lock().load()
    }

    /// A call of `method` (its index) arrives.
    pub fn enter(&self, method: usize) -> Entry {
        let now = Instant::now();
        let mut state = self.lock();
        if state.in_flight < state.limit.current() && state.queue.is_empty() {
            state.in_flight += 1;
            let in_flight = state.in_flight;
            state.limit.admitted(in_flight);
            state.emptied = now;
            state.last_progress = now;
            state.show();
            return Entry::Admitted(Pass::new(self.clone(), method));
        }
        let allowance = if now.duration_since(state.emptied) >= STANDING {
            SHORT_WAIT
        } else {
            LONG_WAIT
        };
        let every = state.latency / state.limit.current().max(1) as f64;
        let stalled = now.duration_since(state.last_progress).as_secs_f64();
        let expected = every.max(stalled) * (state.queue.len() + 1) as f64;
        if state.queue.len() >= MAX_QUEUED || expected > allowance.as_secs_f64() {
            state.meters.refused(Refused::QueueFull);
            return Entry::Refused(Refused::QueueFull, state.show());
        }
        let (admit, admitted) = oneshot::channel();
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push_back(Waiter { id, admit });
        state.show();
        Entry::Queued(Ticket {
            gate: self.clone(),
            id,
            method,
            admitted,
            patience: allowance * 2,
            settled: false,
        })
    }

    fn leave(&self, sample: Option<(usize, Duration)>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some((method, latency)) = sample {
            let seconds = latency.as_secs_f64();
            state.latency = if state.latency == 0.0 {
                seconds
            } else {
                state.latency + (seconds - state.latency) * LATENCY_SHARE
            };
            state.limit.finished(method, latency, now);
        }
        state.last_progress = now;
        state.admit_queued(now);
        state.show();
    }

    /// Takes a queued call out: `true` if it was still waiting (else it
    /// was admitted meanwhile).
    fn withdraw(&self, id: u64) -> bool {
        let mut state = self.lock();
        let before = state.queue.len();
        state.queue.retain(|waiter| waiter.id != id);
        let withdrawn = state.queue.len() < before;
        if state.queue.is_empty() {
            state.emptied = Instant::now();
        }
        state.show();
        withdrawn
    }

    /// A queued call gave up waiting: counted, with the load it met.
    fn timed_out(&self) -> Load {
        let state = self.lock();
        state.meters.refused(Refused::QueueTimeout);
        state.load()
    }
}

/// A call's place in the queue.
pub struct Ticket {
    gate: Gate,
    id: u64,
    method: usize,
    admitted: oneshot::Receiver<()>,
    patience: Duration,
    /// Admitted or refused: nothing left to give back.
    settled: bool,
}

impl Ticket {
    /// Waits for a place, at most twice the allowance it queued under.
    pub async fn wait(mut self) -> Result<Pass, (Refused, Load)> {
        let admitted = tokio::time::timeout(self.patience, &mut self.admitted).await;
        self.settled = true;
        // Admitted, or admitted between the timeout and the withdrawal.
        if matches!(admitted, Ok(Ok(()))) || !self.gate.withdraw(self.id) {
            return Ok(Pass::new(self.gate.clone(), self.method));
        }
        Err((Refused::QueueTimeout, self.gate.timed_out()))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // A caller gone while queued: out of the queue, or, if a place was
        // handed to it meanwhile, the place given back.
        if !self.settled && !self.gate.withdraw(self.id) {
            self.gate.leave(None);
        }
    }
}

/// An admitted call's place: given back when it finishes ([`Pass::finish`],
/// its latency then teaching the limit) or is dropped (a caller gone).
pub struct Pass {
    gate: Option<Gate>,
    method: usize,
    started: Instant,
}

impl Pass {
    fn new(gate: Gate, method: usize) -> Self {
        Self {
            gate: Some(gate),
            method,
            started: Instant::now(),
        }
    }

    /// The call answered.
    pub fn finish(mut self) {
        if let Some(gate) = self.gate.take() {
            gate.leave(Some((self.method, self.started.elapsed())));
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.leave(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limit: usize) -> Gate {
        let config = LimitConfig {
            initial: limit,
            min: limit,
            max: limit,
            tolerance: 2.0,
        };
        Gate::new(config, 1, "test")
    }

    fn admitted(entry: Entry) -> Pass {
        match entry {
            Entry::Admitted(pass) => pass,
            _ => panic!("not admitted"),
        }
    }

    fn queued(entry: Entry) -> Ticket {
        match entry {
            Entry::Queued(ticket) => ticket,
            _ => panic!("not queued"),
        }
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_queue_and_take_the_places_freed_in_turn() {
        let gate = gate(2);
        let first = admitted(gate.enter(0));
        let _second = admitted(gate.enter(0));
        let third = queued(gate.enter(0));
        let fourth = queued(gate.enter(0));
        assert_eq!(
            gate.load(),
            Load {
                limit: 2,
                in_flight: 2,
                queued: 2
            }
        );
        first.finish();
        let third = third
            .wait()
            .await
            .map_err(|(why, _)| why)
            .expect("third let in");
        assert_eq!(
            gate.load(),
            Load {
                limit: 2,
                in_flight: 2,
                queued: 1
            }
        );
        drop(third);
        fourth
            .wait()
            .await
            .map_err(|(why, _)| why)
            .expect("fourth let in");
    }

    #[tokio::test]
    async fn with_nothing_finishing_the_queue_closes_and_its_callers_give_up() {
        let gate = gate(1);
        let _held = admitted(gate.enter(0));
        let waiting = queued(gate.enter(0));
        // Nothing finishes or is let in for longer than the allowance a
        // second queued call would wait: refused at once.
        tokio::time::sleep(LONG_WAIT * 6 / 10).await;
        let started = Instant::now();
        assert!(matches!(
            gate.enter(0),
            Entry::Refused(Refused::QueueFull, _)
        ));
        assert!(started.elapsed() < Duration::from_millis(5));
        let waited = waiting.wait().await.map(|_| ()).map_err(|(why, _)| why);
        assert_eq!(waited, Err(Refused::QueueTimeout));
        assert_eq!(gate.load().queued, 0);
    }

    #[tokio::test]
    async fn a_caller_gone_from_the_queue_or_from_its_place_gives_it_back() {
        let gate = gate(1);
        let held = admitted(gate.enter(0));
        let gone = queued(gate.enter(0));
        drop(gone);
        assert_eq!(gate.load().queued, 0);
        // Handed a place, then gone before it took it: the place is free.
        let late = queued(gate.enter(0));
        held.finish();
        assert_eq!(gate.load().in_flight, 1);
        drop(late);
        assert_eq!(
            gate.load(),
            Load {
                limit: 1,
                in_flight: 0,
                queued: 0
            }
        );
        admitted(gate.enter(0));
    }
}
