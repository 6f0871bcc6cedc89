//! The adaptive limit: how many calls a server works on at once, moved by
//! what each call's latency, against its own method's usual, says about
//! queueing inside the server: cut when calls are slow window after window,
//! grown while they are as fast as usual and the limit is used, left alone
//! while a backlog is caught up on. The rules and why each is so:
//! docs/overload.md, "How the limit adapts".

use std::time::Duration;

use tokio::time::Instant;

/// The mean time calls must spend beyond their usual before the limit
/// shrinks for them: as long as the queue's target wait.
pub const WORTH_REFUSING: Duration = Duration::from_millis(5);
/// How often the limit moves.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Calls a window needs before its mean says anything.
const MIN_SAMPLES: u32 = 8;
/// A ratio counted at most this high: one pathological call (a lock held
/// for a second) weighs as ten slow ones, not a thousand.
const MAX_RATIO: f64 = 10.0;
/// How much of the distance to a new latency a method's usual moves.
const USUAL_SHARE: f64 = 0.05;
/// The share of the limit in use above which it may grow.
const USED: f64 = 0.8;
/// The mean ratio at most at which a used limit grows.
pub const GROW_BELOW: f64 = 1.25;
/// The share of the tolerance the mean ratio may reach while a limit that
/// keeps calls waiting still grows by one.
pub const PROBE_BELOW: f64 = 0.75;

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
            tolerance: 4.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Usual {
    nanos: f64,
}

#[derive(Debug)]
pub struct Limit {
    config: LimitConfig,
    limit: f64,
    /// By method (its index in the server's table of methods).
    usual: Vec<Option<Usual>>,
    /// When this window ends (an instant compared, not a duration
    /// subtracted, on every call's way out).
    window_ends: Instant,
    /// Calls that came to the gate this window (admitted or not).
    came: u32,
    samples: u32,
    ratios: f64,
    /// This window's time beyond the usual, summed (ns).
    excess: f64,
    peak_in_flight: usize,
    /// Whether the last window read was over the tolerance.
    was_over: bool,
    /// Whether a call found the limit used this window.
    pressed: bool,
}

impl Limit {
    pub fn new(config: LimitConfig, methods: usize, now: Instant) -> Self {
        Self {
            config,
            limit: config.initial.clamp(config.min, config.max) as f64,
            usual: vec![None; methods],
            window_ends: now + WINDOW,
            came: 0,
            samples: 0,
            ratios: 0.0,
            excess: 0.0,
            peak_in_flight: 0,
            was_over: false,
            pressed: false,
        }
    }

    /// Calls admitted at once now.
    pub fn current(&self) -> usize {
        self.limit as usize
    }

    /// Calls admitted at once at the least.
    pub fn floor(&self) -> usize {
        self.config.min.max(1)
    }

    /// A call came to the gate (whatever became of it).
    pub fn came(&mut self) {
        self.came = self.came.saturating_add(1);
    }

    /// A call was admitted with `in_flight` calls (itself included) at work.
    pub fn admitted(&mut self, in_flight: usize) {
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
    }

    /// A call found the limit used: it was queued or refused.
    pub fn pressed(&mut self) {
        self.pressed = true;
    }

    /// A call of `method`, let in with `in_flight` calls at work (itself
    /// included), took `latency` from its admission to its answer.
    pub fn finished(&mut self, method: usize, in_flight: usize, latency: Duration, now: Instant) {
        // Not `as_nanos() as f64`: a u128's conversion, in software.
        let nanos = latency.as_secs_f64() * 1e9;
        if let Some(slot) = self.usual.get_mut(method) {
            let usual = slot.get_or_insert(Usual { nanos });
            self.samples += 1;
            self.ratios += (nanos / usual.nanos.max(1.0)).min(MAX_RATIO);
            self.excess += nanos - usual.nanos;
            if in_flight <= self.config.min {
                usual.nanos += (nanos - usual.nanos) * USUAL_SHARE;
            }
        }
        if now >= self.window_ends {
            self.adapt(now);
        }
    }

    fn adapt(&mut self, now: Instant) {
        if self.samples < MIN_SAMPLES {
            return;
        }
        let ratio = self.ratios / f64::from(self.samples);
        let excess = self.excess / f64::from(self.samples);
        let (min, max) = (self.config.min as f64, self.config.max as f64);
        let catching_up = catching_up(self.samples, self.came);
        let over = ratio > self.config.tolerance
            && excess >= WORTH_REFUSING.as_nanos() as f64
            && !catching_up;
        if over && self.was_over {
            self.limit = (self.limit * (self.config.tolerance / ratio).max(0.5)).max(min);
        } else if over {
            // Perhaps a stall that has passed: the next window says.
        } else if ratio <= GROW_BELOW && self.peak_in_flight as f64 >= self.limit * USED {
            self.limit = (self.limit + self.limit.sqrt()).min(max);
        } else if self.pressed && !self.was_over && ratio <= self.config.tolerance * PROBE_BELOW {
            self.limit = (self.limit + 1.0).min(max);
        }
        self.was_over = over;
        self.pressed = false;
        self.window_ends = now + WINDOW;
        self.came = 0;
        self.samples = 0;
        self.ratios = 0.0;
        self.excess = 0.0;
        self.peak_in_flight = 0;
    }
}

/// Whether a server that `finished` calls while `came` came is catching
/// up on a backlog: it finished more by a clear margin (a quarter), not by
/// the few a fixed number of callers, each calling again when answered,
/// make either way.
pub(super) fn catching_up(finished: u32, came: u32) -> bool {
    finished > came.saturating_add(came / 4)
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
            limit.came();
            limit.admitted(in_flight);
            limit.finished(method, in_flight, latency, at);
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
        assert!(used.current() > 64, "grew to {}", used.current());

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
        // Ten times the usual latency: after a second window of it, halved,
        // then again.
        let now = feed(&mut limit, now, WINDOW * 2, 100, 0, 10 * MS, before);
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
    fn a_stall_that_has_passed_does_not_cut_the_limit() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let mut now = feed(&mut limit, start, Duration::from_secs(1), 1000, 0, MS, 32);
        let before = limit.current();
        for _ in 0..10 {
            // A window of calls held by a stall (300 ms each), finishing
            // together, then a second of calls as fast as usual.
            now = feed(&mut limit, now, WINDOW, 40, 0, 300 * MS, before);
            now = feed(&mut limit, now, Duration::from_secs(1), 1000, 0, MS, before);
        }
        assert!(limit.current() >= before, "{before} -> {}", limit.current());
    }

    #[test]
    fn a_backlog_caught_up_on_after_a_stall_does_not_cut_the_limit() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let mut now = feed(&mut limit, start, Duration::from_secs(1), 1000, 0, MS, 32);
        let before = limit.current();
        // The calls a stall held finish together and late, then those it
        // queued, over several windows, while half as many come.
        for _ in 0..4 {
            for _ in 0..20 {
                limit.came();
            }
            for call in 1..=40 {
                limit.finished(0, before, 300 * MS, now + WINDOW * call / 40);
            }
            now += WINDOW;
        }
        assert!(limit.current() >= before, "{before} -> {}", limit.current());
        // As slow with as many coming as finishing is overload: cut.
        feed(&mut limit, now, WINDOW * 4, 160, 0, 300 * MS, before);
        assert!(limit.current() < before, "not cut: {}", limit.current());
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
            // The calls it does not admit are queued or refused.
            limit.pressed();
            now = feed(limit, now, MS, 1, 0, latency(in_flight), in_flight);
        }
        now
    }

    /// A limit whose method's usual was learned from 1,000 calls of
    /// `latency` with four at work; the time after.
    fn learned(latency: Duration) -> (Limit, Instant) {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        let now = feed(
            &mut limit,
            start,
            Duration::from_secs(1),
            1000,
            0,
            latency,
            4,
        );
        (limit, now)
    }

    #[test]
    fn a_fast_method_a_few_times_slower_is_not_worth_a_refusal() {
        // A lookup of 0.2 ms, then 2 ms with the limit used: ten times its
        // usual, but under 2 ms beyond it.
        let (mut limit, now) = learned(MS / 5);
        overload(&mut limit, now, 10, |_| 2 * MS);
        assert!(limit.current() >= 32, "cut to {}", limit.current());
    }

    #[test]
    fn callers_fewer_than_the_limit_are_never_cut_however_they_queue_inside() {
        let start = Instant::now();
        let mut limit = Limit::new(config(), 1, start);
        // Sixteen callers back to back on one CPU: each call waits for the
        // fifteen others, always; that is the usual here, not overload.
        feed(
            &mut limit,
            start,
            Duration::from_secs(60),
            60_000,
            0,
            shared_cpu(16),
            16,
        );
        assert_eq!(limit.current(), 32);
    }

    #[test]
    fn minutes_of_overload_keep_calls_near_their_usual_latency() {
        let (mut limit, now) = learned(shared_cpu(4));
        overload(&mut limit, now, 120, shared_cpu);
        let latency = shared_cpu(limit.current());
        assert!(
            latency <= shared_cpu(4) * 4,
            "{latency:?} at a limit of {} after two minutes",
            limit.current()
        );
        assert!(
            (8..=40).contains(&limit.current()),
            "at the floor or unbounded: {}",
            limit.current()
        );
    }

    #[test]
    fn a_service_that_really_became_slower_is_relearned_at_the_floor() {
        let (mut limit, mut now) = learned(shared_cpu(4));
        // Every call now takes 10 ms however few are at work.
        for _ in 0..500 {
            let in_flight = limit.current();
            now = feed(&mut limit, now, MS, 1, 0, 10 * MS, in_flight);
        }
        assert_eq!(limit.current(), 8, "first it falls to the floor");
        overload(&mut limit, now, 5, |_| 10 * MS);
        assert!(limit.current() > 100, "stuck at {}", limit.current());
    }

    #[test]
    fn a_limit_cut_by_a_slow_moment_comes_back_for_the_callers_it_turns_away() {
        // Sixteen callers on one CPU: twice their usual latency at work.
        let (mut limit, mut now) = learned(shared_cpu(4));
        let steady = shared_cpu(16) * 3 / 2;
        // Another process takes the CPU for a moment: calls take six times
        // their usual, and the limit is cut below the callers (not to its
        // floor, where the usual would be learned again).
        while limit.current() >= 16 {
            now = feed(&mut limit, now, WINDOW, 20, 0, 6 * shared_cpu(4), 16);
        }
        let cut = limit.current();
        assert!(cut > 8, "cut to the floor: {cut}");
        // Then the same sixteen callers as before, those the limit leaves
        // out queued or refused.
        for _ in 0..3000 {
            let in_flight = limit.current().min(16);
            if in_flight < 16 {
                limit.pressed();
            }
            now = feed(&mut limit, now, MS, 1, 0, steady, in_flight);
        }
        assert!(
            limit.current() >= 16,
            "stuck at {} (cut to {cut})",
            limit.current()
        );
    }
}
