//! What the retries hide: every call between the shop's services and from
//! the customers' client that failed for the way to a peer (unavailable,
//! deadline_exceeded, internal, unknown, data_loss, resource_exhausted, a
//! breaker failing fast), whether or not a retry then answered it. Read
//! from the kit client's own counter (`shop_downstream_calls_total`) on
//! every process's /metrics and on this one's (the customers' client, and
//! the soak's visitors' refusals sent again, named `generator`),
//! every half second, each increase counted in the phase of the run it came
//! in (a process started again counts from zero, as Prometheus' `rate`
//! reads a reset).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use shop_kit::observe::metrics::Metrics;

use crate::{chaos::calls::Calls, dial::Dial, prometheus::series};

/// The codes of an attempt that failed for the way to the peer.
const FAILED: [&str; 7] = [
    "unavailable",
    "deadline_exceeded",
    "internal",
    "unknown",
    "data_loss",
    "resource_exhausted",
    "circuit_open",
];
const EVERY: Duration = Duration::from_millis(500);

/// The failed attempts of one page of metrics, by downstream.
fn failed_attempts(text: &str) -> HashMap<String, f64> {
    let mut by_downstream = HashMap::new();
    for series in series(text, "shop_downstream_calls_total") {
        let (Some(code), Some(downstream)) = (series.label("code"), series.label("downstream"))
        else {
            continue;
        };
        if FAILED.contains(&code) {
            *by_downstream.entry(downstream.to_owned()).or_default() += series.value;
        }
    }
    by_downstream
}

/// Failed attempts by phase and by (phase, caller, downstream).
#[derive(Debug, Default)]
struct Tally {
    /// The last value read, by (source, downstream).
    last: HashMap<(String, String), f64>,
    by_phase: HashMap<&'static str, f64>,
    by_pair: HashMap<(&'static str, String, String), f64>,
}

impl Tally {
    fn read(&mut self, source: &str, text: &str, phase: &'static str) {
        for (downstream, value) in failed_attempts(text) {
            let key = (source.to_owned(), downstream);
            let last = self.last.insert(key.clone(), value).unwrap_or(0.0);
            let increase = if value >= last { value - last } else { value };
            if increase > 0.0 {
                *self.by_phase.entry(phase).or_default() += increase;
                let (source, downstream) = key;
                *self.by_pair.entry((phase, source, downstream)).or_default() += increase;
            }
        }
    }
}

/// Watches every process until stopped.
pub struct Attempts {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Attempts {
    /// Watches `processes` ((name, address of its /metrics)) and this
    /// process's own metrics (`customers`), counting in `calls`' phase.
    pub fn watch(
        dial: Dial,
        processes: Vec<(String, SocketAddr)>,
        own: Metrics,
        calls: Arc<Calls>,
    ) -> Self {
        let tally: Arc<Mutex<Tally>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (tally, stop) = (tally.clone(), stop.clone());
            async move {
                loop {
                    let phase = calls.phase();
                    // The customers' kit client, and the soak's visitors.
                    let mut pages = vec![("generator".to_owned(), own.render())];
                    for (name, at) in &processes {
                        if let Ok(page) = dial.get(*at, "/metrics").await {
                            pages.push((
                                name.clone(),
                                String::from_utf8_lossy(&page.body).into_owned(),
                            ));
                        }
                    }
                    {
                        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                        for (source, text) in &pages {
                            tally.read(source, text, phase);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(EVERY).await;
                }
            }
        });
        Self { tally, stop, task }
    }

    /// Stops it (after one last read): failed attempts by phase, and the
    /// pairs that had any, by phase ("kills: orders-0 -> catalog: 3").
    pub async fn finish(self) -> (HashMap<&'static str, f64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pairs: Vec<String> = tally
            .by_pair
            .iter()
            .map(|((phase, source, downstream), n)| {
                format!("{phase}: {source} -> {downstream}: {n:.0}")
            })
            .collect();
        pairs.sort();
        (tally.by_phase.clone(), pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_the_way_count_business_answers_do_not_and_a_reset_counts_from_zero() {
        let page = |unavailable: u32| {
            format!(
                "shop_downstream_calls_total{{downstream=\"catalog\",code=\"ok\"}} 90\n\
                 shop_downstream_calls_total{{downstream=\"catalog\",code=\"not_found\"}} 4\n\
                 shop_downstream_calls_total{{downstream=\"catalog\",code=\"unavailable\"}} {unavailable}\n\
                 shop_downstream_calls_total{{code=\"circuit_open\",downstream=\"payments\"}} 1\n"
            )
        };
        let mut tally = Tally::default();
        tally.read("orders-0", &page(2), "warm-up");
        tally.read("orders-0", &page(5), "kills");
        // Started again: its counters begin at zero.
        tally.read("orders-0", &page(1), "after");
        assert_eq!(tally.by_phase.get("warm-up"), Some(&3.0));
        assert_eq!(tally.by_phase.get("kills"), Some(&3.0));
        assert_eq!(tally.by_phase.get("after"), Some(&1.0));
    }
}
