//! The customers' calls and failures, by phase of a run: what the chaos,
//! replicas and soak runs count and judge.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tonic::Status;

/// The customers' calls and failures, by phase of the run (a chaos run has
/// one; a replicas run: warm-up, rolling restart, kills, ...).
#[derive(Debug)]
pub struct Calls {
    phases: Vec<&'static str>,
    current: AtomicUsize,
    made: Vec<AtomicU64>,
    failed: Vec<AtomicU64>,
    /// The first few failures, to say what they were.
    examples: Mutex<Vec<String>>,
    /// Every failure counted by (phase, call, code): few keys, all named
    /// by this program, however many failures.
    kinds: Mutex<BTreeMap<(&'static str, String, String), u64>>,
    /// Each call's kind and latency in ms since last taken, when asked for
    /// ([`Calls::timed`]).
    latencies: Option<Mutex<Vec<(&'static str, f32)>>>,
}

impl Calls {
    pub fn new(phases: &[&'static str]) -> Arc<Self> {
        Arc::new(Self::of(phases, None))
    }

    /// As [`Calls::new`], keeping each call's latency too until
    /// [`Calls::take_latencies`] takes them.
    pub fn timed(phases: &[&'static str]) -> Arc<Self> {
        Arc::new(Self::of(phases, Some(Mutex::default())))
    }

    fn of(phases: &[&'static str], latencies: Option<Mutex<Vec<(&'static str, f32)>>>) -> Self {
        Self {
            phases: phases.to_vec(),
            current: AtomicUsize::new(0),
            made: phases.iter().map(|_| AtomicU64::new(0)).collect(),
            failed: phases.iter().map(|_| AtomicU64::new(0)).collect(),
            examples: Mutex::default(),
            kinds: Mutex::default(),
            latencies,
        }
    }

    /// The calls ended since last taken: (kind, latency in ms).
    pub fn take_latencies(&self) -> Vec<(&'static str, f32)> {
        self.latencies.as_ref().map_or_else(Vec::new, |kept| {
            std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }

    /// Counts a call that took `latency`.
    pub fn count_timed<T>(
        &self,
        call: &'static str,
        result: &Result<T, Status>,
        latency: Duration,
    ) {
        if let Some(kept) = &self.latencies {
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((call, latency.as_secs_f32() * 1000.0));
        }
        self.count(call, result);
    }

    /// From now on, calls count in `phase`.
    pub fn enter(&self, phase: &str) {
        if let Some(index) = self.phases.iter().position(|p| *p == phase) {
            self.current.store(index, Ordering::SeqCst);
        }
    }

    /// The phase calls count in now.
    pub fn phase(&self) -> &'static str {
        self.phases[self.current.load(Ordering::SeqCst)]
    }

    fn count<T>(&self, call: &str, result: &Result<T, Status>) {
        let phase = self.current.load(Ordering::SeqCst);
        self.made[phase].fetch_add(1, Ordering::Relaxed);
        if let Err(status) = result {
            self.failed[phase].fetch_add(1, Ordering::Relaxed);
            *self
                .kinds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((
                    self.phases[phase],
                    call.to_owned(),
                    format!("{:?}", status.code()),
                ))
                .or_default() += 1;
            let mut examples = self.examples.lock().unwrap_or_else(PoisonError::into_inner);
            if examples.len() < 10 {
                examples.push(format!(
                    "{} {call}: {:?} {}",
                    self.phases[phase],
                    status.code(),
                    status.message()
                ));
            }
        }
    }

    /// (phase, calls, failed), in order.
    pub fn by_phase(&self) -> Vec<(&'static str, u64, u64)> {
        self.phases
            .iter()
            .zip(self.made.iter().zip(&self.failed))
            .map(|(phase, (made, failed))| {
                (
                    *phase,
                    made.load(Ordering::Relaxed),
                    failed.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    pub fn failures_in(&self, phase: &str) -> u64 {
        self.by_phase()
            .into_iter()
            .find(|(p, _, _)| *p == phase)
            .map_or(0, |(_, _, failed)| failed)
    }

    /// How many calls failed, by phase, call and code: "soak WatchOrder
    /// (Connect stream) ResourceExhausted: 180", the most first.
    pub fn failed_by_kind(&self) -> Vec<String> {
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counted: Vec<_> = kinds.iter().collect();
        counted.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        counted
            .into_iter()
            .map(|((phase, call, code), n)| format!("{phase} {call} {code}: {n}"))
            .collect()
    }

    pub fn examples(&self) -> Vec<String> {
        self.examples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// "calls: 5231, failed: 0 (warm-up 812/0, rolling restart 3001/0, ...)"
    pub fn summary(&self) -> String {
        let phases = self.by_phase();
        let made: u64 = phases.iter().map(|(_, m, _)| m).sum();
        let failed: u64 = phases.iter().map(|(_, _, f)| f).sum();
        let each: Vec<String> = phases
            .iter()
            .map(|(phase, made, failed)| format!("{phase} {made}/{failed}"))
            .collect();
        format!(
            "calls: {made}, failed: {failed} (calls/failed by phase: {})",
            each.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_counted_by_kind_beyond_the_examples() {
        let calls = Calls::new(&["warm-up", "soak"]);
        calls.count::<()>("CreateOrder", &Err(Status::unavailable("down")));
        calls.enter("soak");
        for _ in 0..12 {
            calls.count::<()>("WatchOrder", &Err(Status::resource_exhausted("full")));
        }
        calls.count("WatchOrder", &Ok(()));
        assert_eq!(
            calls.failed_by_kind(),
            [
                "soak WatchOrder ResourceExhausted: 12",
                "warm-up CreateOrder Unavailable: 1"
            ]
        );
        assert_eq!(calls.examples().len(), 10, "the examples stay few");
    }
}
