//! The adaptive limit: how many calls a server works on at once. It is
//! moved by what the calls' latency says about queueing inside the server,
//! each call's latency compared with its own method's usual (so a cheap
//! lookup and an order that writes and calls two services are each judged
//! by their own measure).
//!
//! Every [`WINDOW`] with enough calls finished, the mean ratio of latency
//! to usual is read:
//! - above the tolerance (calls take that many times their usual: they are
//!   queueing for the CPU, a pool or a peer inside), the limit shrinks in
//!   proportion, by at most half;
//! - otherwise, if the limit was nearly used, it grows by its square root
//!   (Envoy's adaptive-concurrency headroom), so it follows more capacity
//!   quickly; an idle limit is left where it is.
//!
//! A method's usual latency falls quickly to faster calls, and rises only
//! while the limit is at its floor (with a time constant of
//! [`USUAL_RISE`]): in overload the limit settles above the floor, where
//! calls take about the tolerance times their usual, so minutes of it do
//! not teach the limit that slow is usual; a service that really became
//! slower (a database on a busier disk) is slow even with the floor's few
//! calls at work, and is relearned there within seconds.

use std::time::{Duration, Instant};

/// How often the limit moves.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Calls a window needs before its mean says anything.
const MIN_SAMPLES: u32 = 8;
/// A ratio counted at most this high: one pathological call (a lock held
/// for a second) weighs as ten slow ones, not a thousand.
const MAX_RATIO: f64 = 10.0;
/// How much of the distance to a faster call a method's usual latency
/// moves at once.
const USUAL_FALL: f64 = 0.05;
/// The time constant of a usual latency's rise (at the floor).
pub const USUAL_RISE: Duration = Duration::from_secs(10);
/// The share of the limit in use above which it may grow.
const USED: f64 = 0.8;

/// The limit's bounds and tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitConfig {
    pub initial: usize,
    pub min: usize,
    pub max: usize,
    /// How many times its usual a call may take before the limit shrinks.
    pub tolerance: f64,
}

impl LimitConfig {
    /// Sane bounds up to `max` calls at once.
    pub fn up_to(max: usize) -> Self {
        let max = max.max(1);
        Self {
            initial: 32.min(max),
            min: 8.min(max),
            max,
            tolerance: 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Usual {
    nanos: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct Limit {
    config: LimitConfig,
    limit: f64,
    /// By method (its index in the server's table of methods).
    usual: Vec<Option<Usual>>,
    window_start: Instant,
    samples: u32,
    ratios: f64,
    peak_in_flight: usize,
}

impl Limit {
    pub fn new(config: LimitConfig, methods: usize, now: Instant) -> Self {
        Self {
            config,
            limit: config.initial.clamp(config.min, config.max) as f64,
            usual: vec![None; methods],
            window_start: now,
            samples: 0,
            ratios: 0.0,
            peak_in_flight: 0,
        }
    }

    /// Calls admitted at once now.
    pub fn current(&self) -> usize {
        self.limit as usize
    }

    /// A call was admitted with `in_flight` calls (itself included) at work.
    pub fn admitted(&mut self, in_flight: usize) {
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
    }

    /// A call of `method` took `latency` from its admission to its answer.
    pub fn finished(&mut self, method: usize, latency: Duration, now: Instant) {
        let nanos = latency.as_nanos() as f64;
        if let Some(slot) = self.usual.get_mut(method) {
            let usual = slot.get_or_insert(Usual { nanos, at: now });
            self.samples += 1;
            self.ratios += (nanos / usual.nanos.max(1.0)).min(MAX_RATIO);
            learn(usual, nanos, now, self.limit <= self.config.min as f64);
        }
        if now.duration_since(self.window_start) >= WINDOW {
            self.adapt(now);
        }
    }

    fn adapt(&mut self, now: Instant) {
        if self.samples < MIN_SAMPLES {
            return;
        }
        let ratio = self.ratios / f64::from(self.samples);
        let (min, max) = (self.config.min as f64, self.config.max as f64);
        if ratio > self.config.tolerance {
            self.limit = (self.limit * (self.config.tolerance / ratio).max(0.5)).max(min);
        } else if self.peak_in_flight as f64 >= self.limit * USED {
            self.limit = (self.limit + self.limit.sqrt()).min(max);
        }
        self.window_start = now;
        self.samples = 0;
        self.ratios = 0.0;
        self.peak_in_flight = 0;
    }
}

/// Moves a usual latency towards `nanos`: quickly down, slowly up and only
/// `at_floor`.
fn learn(usual: &mut Usual, nanos: f64, now: Instant, at_floor: bool) {
    let share = if nanos < usual.nanos {
        USUAL_FALL
    } else if at_floor {
        (now.duration_since(usual.at).as_secs_f64() / USUAL_RISE.as_secs_f64()).min(1.0)
    } else {
        0.0
    };
    usual.nanos += (nanos - usual.nanos) * share;
    usual.at = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `calls` calls of `method` at `latency`, spread evenly over
    /// `over`, each seen with `in_flight` at work; returns the time after.
    fn feed(
        limit: &mut Limit,
        now: Instant,
        over: Duration,
        calls: u32,
        method: usize,
        latency: Duration,
        in_flight: usize,
    ) -> Instant {
        let step = over / calls;
        let mut at = now;
        for _ in 0..calls {
            at += step;
            limit.admitted(in_flight);
            limit.finished(method, latency, at);
        }
        at
    }

    fn config() -> LimitConfig {
        LimitConfig::up_to(1024)
    }

    #[test]
    fn calls_at_their_usual_latency_grow_a_used_limit_and_leave_an_idle_one() {
        let start = Instant::now();
        let mut used = Limit::new(config(), 1, start);
        overload(&mut used, start, 1, |_| MS);
        assert!(used.current() > 100, "grew to {}", used.current());

        let mut idle = Limit::new(config(), 1, start);
        feed(&mut idle, start, Duration::from_secs(1), 1000, 0, MS, 2);
        assert_eq!(idle.current(), 32);
    }

    #[test]
    fn calls_queueing_inside_shrink_it_by_at_most_half_a_window_down_to_the_floor() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let now = feed(&mut limit, start, Duration::from_secs(1), 1000, 0, MS, 32);
        let before = limit.current();
        // Ten times the usual latency: halved in one window, then again.
        let now = feed(&mut limit, now, WINDOW, 50, 0, 10 * MS, before);
        let once = limit.current();
        assert!(once >= before / 2 && once < before, "{before} -> {once}");
        feed(
            &mut limit,
            now,
            Duration::from_secs(2),
            2000,
            0,
            10 * MS,
            once,
        );
        assert_eq!(limit.current(), 8, "down to the floor");
    }

    #[test]
    fn each_method_is_judged_by_its_own_usual_latency() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 2, start);
        // Lookups of 0.2 ms and orders of 20 ms, mixed, neither queueing.
        let mut now = start;
        for _ in 0..500 {
            now = feed(&mut limit, now, MS, 1, 0, MS / 5, 30);
            now = feed(&mut limit, now, MS, 1, 1, 20 * MS, 30);
        }
        assert!(limit.current() > 32, "{} did not grow", limit.current());
    }

    /// A server that works on `in_flight` calls at once answers each in 1 ms
    /// of waiting plus 0.1 ms per call at work (sharing one CPU).
    fn shared_cpu(in_flight: usize) -> Duration {
        MS + MS / 10 * in_flight as u32
    }

    /// `seconds` of more calls than the limit admits, each answered as
    /// `latency` of the calls at work says; returns the time after.
    fn overload(
        limit: &mut Limit,
        mut now: Instant,
        seconds: u32,
        latency: impl Fn(usize) -> Duration,
    ) -> Instant {
        for _ in 0..seconds * 1000 {
            let in_flight = limit.current();
            now = feed(limit, now, MS, 1, 0, latency(in_flight), in_flight);
        }
        now
    }

    #[test]
    fn minutes_of_overload_keep_calls_near_their_usual_latency() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let now = feed(
            &mut limit,
            start,
            Duration::from_secs(1),
            1000,
            0,
            shared_cpu(4),
            4,
        );
        overload(&mut limit, now, 120, shared_cpu);
        let latency = shared_cpu(limit.current());
        assert!(
            latency <= shared_cpu(4) * 5 / 2,
            "{latency:?} at a limit of {} after two minutes",
            limit.current()
        );
        assert!(limit.current() > 8, "it found the knee, not the floor");
    }

    #[test]
    fn a_service_that_really_became_slower_is_relearned_within_a_minute() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let now = feed(
            &mut limit,
            start,
            Duration::from_secs(1),
            1000,
            0,
            shared_cpu(4),
            4,
        );
        // Every call now takes 5 ms however few are at work.
        let now = overload(&mut limit, now, 2, |_| 5 * MS);
        assert_eq!(limit.current(), 8, "first it falls to the floor");
        overload(&mut limit, now, 60, |_| 5 * MS);
        assert!(limit.current() > 100, "stuck at {}", limit.current());
    }
}
