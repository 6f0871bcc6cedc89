//! The admission gate of a server's work: calls in flight up to the
//! adaptive limit, then a short queue whose room follows CoDel's rule, then
//! a refusal at once; a queued call waits at most [`PATIENCE`]. The rules
//! and why each is so: docs/overload.md, "How the limit adapts".

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

// tokio's clock (std's outside tests): the tests run on a paused one, so
// no busy machine can make them miss a bound.
use tokio::time::Instant;

use metrics::{Counter, Gauge};
use tokio::sync::oneshot;

use super::limit::{self, Limit, LimitConfig};

/// The wait in the queue that, if even the shortest wait of an interval
/// is longer, makes the queue's room halve.
pub const TARGET_WAIT: Duration = Duration::from_millis(5);
/// The interval over which the queue's shortest wait is watched.
pub const STANDING: Duration = Duration::from_millis(100);
/// How long a queued call waits at most: a safety net for a server where
/// nothing finishes (the queue's room keeps waits near the target). A
/// burst of twice the limit on a loaded machine is served, not refused.
pub const PATIENCE: Duration = Duration::from_millis(500);
/// How often the gauges are set (off the calls' path).
const SHOW_EVERY: Duration = Duration::from_millis(100);
/// Calls queued at most, whatever the pace (each is a small allocation).
const MAX_QUEUED: usize = 1024;
/// The queue's room, at most, per place at work (the limit).
pub const ROOM_PER_PLACE: usize = 2;

/// Why a call was refused (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue had no room (or nothing is finishing).
    QueueFull,
    /// It waited in the queue for [`PATIENCE`].
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
    since: Instant,
}

struct State {
    limit: Limit,
    in_flight: usize,
    queue: VecDeque<Waiter>,
    next_id: u64,
    /// Calls the queue takes now (see the module's doc).
    room: usize,
    /// The shortest wait of a call let in from the queue this interval,
    /// and when the interval ends.
    shortest_wait: Option<Duration>,
    interval_ends: Instant,
    /// Calls that came to the gate, and calls that finished, this interval.
    came: u32,
    finished: u32,
    /// When a call last finished or was let in.
    last_progress: Instant,
    /// How long calls at work have lately taken (a moving average of the
    /// calls that finished as usual; none before the first).
    round: Option<Duration>,
    meters: Meters,
}

impl State {
    /// Sets the gauges to the load now.
    fn show(&self) {
        let load = self.load();
        self.meters.limit.set(load.limit as f64);
        self.meters.in_flight.set(load.in_flight as f64);
        self.meters.queued.set(load.queued as f64);
    }

    fn load(&self) -> Load {
        Load {
            limit: self.limit.current(),
            in_flight: self.in_flight,
            queued: self.queue.len(),
        }
    }

    /// How long a call queued at `place` would likely wait: the calls at
    /// work take as long again as nothing has moved, then each round of
    /// the limit's places ahead of it as long as calls have lately taken.
    fn likely_wait(&self, place: usize, now: Instant) -> Duration {
        let stalled = now.duration_since(self.last_progress);
        let rounds_after = place.div_ceil(self.limit.current().max(1)) - 1;
        let round = self.round.unwrap_or(stalled);
        stalled
            .saturating_add(round.saturating_mul(u32::try_from(rounds_after).unwrap_or(u32::MAX)))
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
                let waited = now.duration_since(waiter.since);
                self.shortest_wait = Some(self.shortest_wait.map_or(waited, |w| w.min(waited)));
            }
        }
    }

    /// At the end of each interval: the queue's room halves if even its
    /// shortest wait was long and the server was not catching up (see
    /// [`limit::catching_up`]), else grows. Called before a call's coming or finishing is counted, so an
    /// interval is judged by what happened in it (the waits of the calls a
    /// stall's end lets in, with the calls finishing then, are the next
    /// interval's).
    fn watch_standing(&mut self, now: Instant) {
        // Instants compared, not subtracted: on every call's way in and
        // out, where the subtraction's checks cost more than the rest.
        if now < self.interval_ends {
            return;
        }
        let most = (self.limit.current() * ROOM_PER_PLACE).clamp(1, MAX_QUEUED);
        let catching_up = limit::catching_up(self.finished, self.came);
        let waits_long = self
            .shortest_wait
            .take()
            .is_some_and(|shortest| shortest >= TARGET_WAIT);
        self.room = if waits_long && !catching_up {
            (self.room / 2).max(self.limit.floor()).min(most)
        } else {
            (self.room + (self.room / 8).max(1)).min(most)
        };
        self.interval_ends = now + STANDING;
        self.came = 0;
        self.finished = 0;
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
                room: config.initial,
                shortest_wait: None,
                interval_ends: now + STANDING,
                came: 0,
                finished: 0,
                last_progress: now,
                round: None,
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
        state.watch_standing(now);
        state.came = state.came.saturating_add(1);
        state.limit.came();
        if state.in_flight < state.limit.current() && state.queue.is_empty() {
            state.in_flight += 1;
            let in_flight = state.in_flight;
            state.limit.admitted(in_flight);
            state.last_progress = now;
            return Entry::Admitted(Pass::new(self.clone(), method, in_flight, now));
        }
        state.limit.pressed();
        let queued = state.queue.len();
        if queued >= state.room || state.likely_wait(queued + 1, now) > PATIENCE {
            state.meters.refused(Refused::QueueFull);
            return Entry::Refused(Refused::QueueFull, state.load());
        }
        let (admit, admitted) = oneshot::channel();
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push_back(Waiter {
            id,
            admit,
            since: now,
        });
        Entry::Queued(Ticket {
            gate: self.clone(),
            id,
            method,
            admitted,
            settled: false,
        })
    }

    /// A call let in with `in_flight` at work (and started then) finished,
    /// teaching the limit (`Some`), or ended otherwise (`None`).
    fn leave(&self, sample: Option<(usize, usize, Instant)>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.watch_standing(now);
        state.in_flight = state.in_flight.saturating_sub(1);
        state.finished = state.finished.saturating_add(1);
        if let Some((method, in_flight_then, started)) = sample {
            let latency = now.duration_since(started);
            state.limit.finished(method, in_flight_then, latency, now);
            state.round = Some(
                state
                    .round
                    .map_or(latency, |round| (round * 7 + latency) / 8),
            );
        }
        state.last_progress = now;
        state.admit_queued(now);
    }

    /// Sets the gauges every [`SHOW_EVERY`] until the gate is dropped (a
    /// scrape reads a recent value; the calls' path sets none).
    pub fn show_meanwhile(&self) {
        let state = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SHOW_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                let Some(state) = state.upgrade() else {
                    break;
                };
                state
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .show();
            }
        });
    }

    /// Takes a queued call out: `true` if it was still waiting (else it
    /// was admitted meanwhile).
    fn withdraw(&self, id: u64) -> bool {
        let mut state = self.lock();
        let before = state.queue.len();
        state.queue.retain(|waiter| waiter.id != id);
        state.queue.len() < before
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
    /// Admitted or refused: nothing left to give back.
    settled: bool,
}

impl Ticket {
    /// Waits for a place, at most [`PATIENCE`].
    pub async fn wait(mut self) -> Result<Pass, (Refused, Load)> {
        let admitted = tokio::time::timeout(PATIENCE, &mut self.admitted).await;
        self.settled = true;
        // Admitted, or admitted between the timeout and the withdrawal.
        if matches!(admitted, Ok(Ok(()))) || !self.gate.withdraw(self.id) {
            // Let in from the queue: the limit was in use.
            return Ok(Pass::new(
                self.gate.clone(),
                self.method,
                usize::MAX,
                Instant::now(),
            ));
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
    /// Calls at work when it was let in (itself included).
    in_flight: usize,
    started: Instant,
}

impl Pass {
    fn new(gate: Gate, method: usize, in_flight: usize, started: Instant) -> Self {
        Self {
            gate: Some(gate),
            method,
            in_flight,
            started,
        }
    }

    /// The call answered; `usual` if as a call that did its work answers
    /// (else its latency, a refusal's or a failure's, teaches nothing).
    pub fn finish(mut self, usual: bool) {
        if !usual {
            return;
        }
        if let Some(gate) = self.gate.take() {
            gate.leave(Some((self.method, self.in_flight, self.started)));
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

    /// A server at its usual pace for a while: its queue's room grows to
    /// twice the limit.
    async fn at_the_usual_pace(gate: &Gate) {
        for _ in 0..8 {
            admitted(gate.enter(0)).finish(true);
            tokio::time::sleep(STANDING).await;
        }
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

    #[tokio::test(start_paused = true)]
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
        first.finish(true);
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

    #[tokio::test(start_paused = true)]
    async fn twice_the_floor_of_callers_calling_back_to_back_are_never_refused() {
        // A limit held at its floor of two and four callers, each calling
        // again as soon as answered: two always wait, far longer than the
        // queue's target, interval after interval.
        let gate = gate(2);
        let until = Instant::now() + STANDING * 6;
        let callers = (0..4).map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut refused = 0;
                while Instant::now() < until {
                    let pass = match gate.enter(0) {
                        Entry::Admitted(pass) => pass,
                        Entry::Queued(ticket) => match ticket.wait().await {
                            Ok(pass) => pass,
                            Err(_) => {
                                refused += 1;
                                continue;
                            }
                        },
                        Entry::Refused(..) => {
                            refused += 1;
                            continue;
                        }
                    };
                    tokio::time::sleep(TARGET_WAIT * 4).await;
                    pass.finish(true);
                }
                refused
            })
        });
        let mut refused = 0;
        for caller in callers.collect::<Vec<_>>() {
            refused += caller.await.expect("caller");
        }
        assert_eq!(refused, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_finishing_the_queue_closes_and_its_callers_give_up() {
        let gate = gate(1);
        let _held = admitted(gate.enter(0));
        let waiting = queued(gate.enter(0));
        // Nothing finishes or is let in for longer than the patience a
        // second queued call would wait: refused at once.
        tokio::time::sleep(PATIENCE * 6 / 10).await;
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

    #[tokio::test(start_paused = true)]
    async fn a_stall_that_holds_every_call_at_work_is_waited_out_not_refused() {
        let gate = gate(24);
        at_the_usual_pace(&gate).await;
        admitted(gate.enter(0)).finish(true);
        // Then the database stalls every call at work for 300 ms (an
        // autovacuum, a checkpoint), while calls keep coming at 130 a
        // second: 40 of them, more than the limit, none refused.
        let held: Vec<Pass> = (0..24).map(|_| admitted(gate.enter(0))).collect();
        let mut waiting = Vec::new();
        for arrival in 0..40 {
            match gate.enter(0) {
                Entry::Queued(ticket) => waiting.push(ticket),
                Entry::Admitted(_) => panic!("admitted beyond the limit"),
                Entry::Refused(why, load) => {
                    panic!("arrival {arrival} refused ({why:?}, {load:?})")
                }
            }
            tokio::time::sleep(Duration::from_micros(7_500)).await;
        }
        // The stall ends for all of them at once; the queue is served.
        for pass in held {
            pass.finish(true);
        }
        let mut served = 0;
        let waits = waiting.into_iter().map(|ticket| {
            tokio::spawn(async move {
                let pass = ticket.wait().await.map_err(|(why, _)| why)?;
                tokio::time::sleep(Duration::from_millis(1)).await;
                pass.finish(true);
                Ok::<(), Refused>(())
            })
        });
        for wait in waits.collect::<Vec<_>>() {
            wait.await.expect("waiter").expect("let in");
            served += 1;
        }
        assert_eq!(served, 40);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_caught_up_on_after_a_stall_keeps_the_room_for_the_calls_still_coming() {
        // Four places, each call 40 ms at work: 100 calls a second.
        let gate = gate(4);
        at_the_usual_pace(&gate).await;
        let work = |pass: Pass| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(40)).await;
                pass.finish(true);
            })
        };
        let wait_and_work = |ticket: Ticket| {
            tokio::spawn(async move {
                let pass = ticket.wait().await.map_err(|(why, _)| why)?;
                tokio::time::sleep(Duration::from_millis(40)).await;
                pass.finish(true);
                Ok::<(), Refused>(())
            })
        };
        // A stall holds the four at work while eight more queue.
        let held: Vec<Pass> = (0..4).map(|_| admitted(gate.enter(0))).collect();
        let mut waiting: Vec<_> = (0..8).map(|_| queued(gate.enter(0))).collect();
        tokio::time::sleep(STANDING).await;
        for pass in held {
            pass.finish(true);
        }
        let mut served = waiting.drain(..).map(wait_and_work).collect::<Vec<_>>();
        // Calls go on coming at 80 a second while the backlog drains (at
        // 20 a second): the first ones let in waited a stall, far longer
        // than the target, yet none of those coming is refused.
        for arrival in 0..40 {
            match gate.enter(0) {
                Entry::Admitted(pass) => drop(work(pass)),
                Entry::Queued(ticket) => served.push(wait_and_work(ticket)),
                Entry::Refused(why, load) => {
                    panic!("arrival {arrival} refused ({why:?}, {load:?})")
                }
            }
            tokio::time::sleep(Duration::from_micros(12_500)).await;
        }
        for call in served {
            call.await.expect("waiter").expect("let in");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_gone_from_the_queue_or_from_its_place_gives_it_back() {
        let gate = gate(1);
        let held = admitted(gate.enter(0));
        let gone = queued(gate.enter(0));
        drop(gone);
        assert_eq!(gate.load().queued, 0);
        // Handed a place, then gone before it took it: the place is free.
        let late = queued(gate.enter(0));
        held.finish(true);
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
