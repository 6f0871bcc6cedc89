//! The process's metrics: one Prometheus recorder, installed by the
//! program when it starts ([`Metrics::install`]), before anything takes a
//! metric handle (a handle taken earlier counts into nothing), and the
//! handle that renders them, given to whoever serves `GET /metrics`.
//! Nothing in the kit installs it as a side effect.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{OnceLock, PoisonError, RwLock},
    time::Duration,
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for RPC durations, in seconds (1 ms to 30 s).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram buckets for message sizes, in bytes (64 B to 4 MiB).
const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
];

/// How often histogram samples are folded into their buckets, so they do
/// not pile up in memory between scrapes (or when nobody scrapes).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process's metrics, as `/metrics` renders them.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process's recorder (with a thread that keeps its
    /// histograms folded) and returns its handle. A process has one: a
    /// second call (several services, or tests, in one process) returns
    /// the first's handle.
    pub fn install() -> Self {
        static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = INSTALLED
            .get_or_init(|| {
                let recorder = PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        Matcher::Suffix("duration_seconds".to_owned()),
                        DURATION_BUCKETS,
                    )
                    .and_then(|builder| {
                        builder.set_buckets_for_metric(
                            Matcher::Suffix("size_bytes".to_owned()),
                            SIZE_BUCKETS,
                        )
                    })
                    .unwrap_or_else(|_| PrometheusBuilder::new())
                    .build_recorder();
                let handle = recorder.handle();
                // Another recorder may already be installed (e.g. by a test
                // harness); ours then only renders what it was given.
                let _ = ::metrics::set_global_recorder(recorder);
                let upkeep = handle.clone();
                let _ = std::thread::Builder::new()
                    .name("metrics-upkeep".to_owned())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(METRICS_UPKEEP);
                            upkeep.run_upkeep();
                        }
                    });
                handle
            })
            .clone();
        Self { handle }
    }

    /// Every series, in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The counter `name` (no labels), in the installed recorder: for a
    /// part made at start, before any call, that keeps its handle.
    pub fn counter(&self, name: &'static str) -> metrics::Counter {
        metrics::counter!(name)
    }
}

/// The value kept under `key` in `kept`, made by `make` the first time
/// (metric handles, looked up in the recorder once per series and kept:
/// a read lock on every call after the first).
pub fn kept<K, Q, V, S>(kept: &RwLock<HashMap<K, V, S>>, key: &Q, make: impl FnOnce() -> V) -> V
where
    K: Borrow<Q> + Hash + Eq,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    V: Clone,
    S: std::hash::BuildHasher,
{
    if let Some(found) = kept.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return found.clone();
    }
    let made = make();
    kept.write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert(made)
        .clone()
}
