//! The admission limits as the shop's own /metrics show them while a level
//! runs: each service's limit (lowest and highest seen), the most calls
//! it had at work and queued, and the calls it refused meanwhile (so a
//! refusal of a service called by another, work already taken and then
//! wasted, shows beside the door's own).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    app_suite::shop::{addr, get},
    prometheus::series,
};

/// Where /metrics is read: the embedded shop is one process, every
/// service's gate on the same page.
const WATCHED: [&str; 1] = ["orders"];
const EVERY: Duration = Duration::from_millis(200);

/// What was seen of one service's gate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    pub limit_low: f64,
    pub limit_high: f64,
    pub in_flight_high: f64,
    pub queued_high: f64,
    /// The refusals counted at the first look and at the last.
    pub refused_first: Option<f64>,
    pub refused_last: f64,
}

/// Samples every gate until stopped.
pub struct Watch {
    seen: Arc<Mutex<BTreeMap<String, Seen>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Every series of gauge `name` in `text`: (its service's short name,
/// e.g. `orders` of `shop.orders.v1.OrderService`, value).
fn gauges<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (String, f64)> + 'a {
    series(text, name).filter_map(|series| {
        let service = series.label("service")?;
        let short = service.split('.').nth(1).unwrap_or(service);
        Some((short.to_owned(), series.value))
    })
}

impl Watch {
    pub fn start() -> Self {
        let seen: Arc<Mutex<BTreeMap<String, Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (seen, stop) = (seen.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    for service in WATCHED {
                        let Ok((_, body)) = get(&format!("http://{}/metrics", addr(service))).await
                        else {
                            continue;
                        };
                        let text = String::from_utf8_lossy(&body);
                        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                        for (name, value) in gauges(&text, "shop_admission_limit") {
                            let entry = seen.entry(name).or_insert(Seen {
                                limit_low: value,
                                ..Seen::default()
                            });
                            entry.limit_low = entry.limit_low.min(value);
                            entry.limit_high = entry.limit_high.max(value);
                        }
                        for (name, value) in gauges(&text, "shop_admission_in_flight") {
                            let entry = seen.entry(name).or_default();
                            entry.in_flight_high = entry.in_flight_high.max(value);
                        }
                        for (name, value) in gauges(&text, "shop_admission_queued") {
                            let entry = seen.entry(name).or_default();
                            entry.queued_high = entry.queued_high.max(value);
                        }
                        let mut refused = BTreeMap::<String, f64>::new();
                        for (name, value) in gauges(&text, "shop_admission_refused_total") {
                            *refused.entry(name).or_default() += value;
                        }
                        for (name, value) in refused {
                            let entry = seen.entry(name).or_default();
                            entry.refused_first.get_or_insert(value);
                            entry.refused_last = value;
                        }
                    }
                    tokio::time::sleep(EVERY).await;
                }
            }
        });
        Self { seen, stop, task }
    }

    /// Stops it: what was seen, as "orders 24-40 (48 at work, 12 queued,
    /// 310 refused)".
    pub async fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter()
            .map(|(service, seen)| {
                let refused = seen.refused_last - seen.refused_first.unwrap_or(seen.refused_last);
                (service, seen, refused)
            })
            .filter(|(_, seen, refused)| seen.in_flight_high > 0.0 || *refused > 0.0)
            .map(|(service, seen, refused)| {
                format!(
                    "{service} {:.0}-{:.0} ({:.0} at work, {:.0} queued, {refused:.0} refused)",
                    seen.limit_low, seen.limit_high, seen.in_flight_high, seen.queued_high
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
