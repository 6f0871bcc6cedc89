//! A peer's endpoints and which one takes the next call: the power of two
//! choices by load, where the load is the calls in flight on each (two
//! endpoints picked at random, the less busy one called), among endpoints
//! that serve (their health) and whose breaker admits the call. The set
//! follows the peer's addresses as they are resolved again.

use std::{
    collections::{BTreeSet, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use rand::Rng;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    breaker::Breaker,
    endpoint::{ChannelSettings, Endpoint, Health, InFlight, Observer},
    resolve::Address,
};

/// Endpoints per peer at most; a name resolving to more uses the first.
pub(super) const MAX_ENDPOINTS: usize = 64;
/// Distinct endpoint labels per peer in the metrics; later ones are
/// counted as `other` (addresses change as replicas come and go).
const MAX_LABELLED: usize = 64;

/// Where the next call goes.
pub(super) enum Pick {
    /// This endpoint, its call counted in flight.
    Ready(InFlight),
    /// None serves now, but one is being asked: a moment may tell.
    Wait,
    /// None serves: `open` if some serve but every such breaker is open.
    None { known: usize, open: bool },
}

/// How each endpoint's breaker is set.
#[derive(Clone, Copy, Debug)]
pub(super) struct BreakerPolicy {
    pub(super) threshold: u32,
    pub(super) cooldown: std::time::Duration,
}

pub(super) struct Balancer {
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    shared: Arc<Shared>,
    settings: ChannelSettings,
    breaker: BreakerPolicy,
    stop: CancellationToken,
}

/// What the endpoints report to: a wake-up for calls waiting for one to
/// serve, and the peer's metrics.
struct Shared {
    downstream: String,
    changed: Notify,
    known: AtomicUsize,
    open_breakers: AtomicUsize,
    labelled: Mutex<HashSet<SocketAddr>>,
}

impl Shared {
    fn label(&self, addr: SocketAddr) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        if labelled.contains(&addr) || labelled.len() < MAX_LABELLED {
            labelled.insert(addr);
            addr.to_string()
        } else {
            "other".to_owned()
        }
    }

    fn report_open(&self) {
        let known = self.known.load(Ordering::Relaxed);
        let open = self.open_breakers.load(Ordering::Relaxed);
        metrics::gauge!("shop_downstream_breaker_open", "downstream" => self.downstream.clone())
            .set(if known > 0 && open >= known { 1.0 } else { 0.0 });
    }
}

impl Observer for Shared {
    fn health_changed(&self, endpoint: &Endpoint, from: Health, to: Health) {
        let label = self.label(endpoint.addr());
        metrics::gauge!("shop_downstream_endpoint_serving",
            "downstream" => self.downstream.clone(), "endpoint" => label.clone())
        .set(if to == Health::Serving { 1.0 } else { 0.0 });
        match (from, to) {
            (Health::Serving, Health::Probing) => {}
            (Health::Serving | Health::Probing, Health::NotServing | Health::Down) => {
                metrics::counter!("shop_downstream_endpoint_ejections_total",
                    "downstream" => self.downstream.clone(), "endpoint" => label)
                .increment(1);
                tracing::info!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                    health = to.as_str(), "endpoint out of rotation");
            }
            (Health::NotServing | Health::Down, Health::Serving) => {
                tracing::info!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                    "endpoint serves again");
            }
            _ => {}
        }
        self.changed.notify_waiters();
    }

    fn breaker_changed(&self, _endpoint: &Endpoint, open: bool) {
        if open {
            self.open_breakers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_breakers.fetch_sub(1, Ordering::Relaxed);
        }
        self.report_open();
        self.changed.notify_waiters();
    }
}

impl Balancer {
    pub(super) fn new(
        downstream: &str,
        settings: ChannelSettings,
        breaker: BreakerPolicy,
        stop: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            downstream: downstream.to_owned(),
            changed: Notify::new(),
            known: AtomicUsize::new(0),
            open_breakers: AtomicUsize::new(0),
            labelled: Mutex::default(),
        });
        shared.report_open();
        Self {
            endpoints: RwLock::new(Arc::new(Vec::new())),
            shared,
            settings,
            breaker,
            stop,
        }
    }

    fn current(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The endpoints' addresses and health, for messages and tests.
    pub(super) fn describe(&self) -> Vec<(SocketAddr, &'static str, usize)> {
        self.current()
            .iter()
            .map(|e| (e.addr(), e.health().as_str(), e.in_flight()))
            .collect()
    }

    /// Whether every endpoint's breaker is open.
    pub(super) fn all_open(&self) -> bool {
        let endpoints = self.current();
        !endpoints.is_empty() && endpoints.iter().all(|e| e.breaker_open())
    }

    /// Makes the set `addresses` (at most [`MAX_ENDPOINTS`]): endpoints
    /// already known are kept as they are, new ones start being watched,
    /// gone ones stop.
    pub(super) fn update(&self, addresses: &BTreeSet<Address>) {
        let downstream = &self.shared.downstream;
        if addresses.len() > MAX_ENDPOINTS {
            tracing::warn!(%downstream, found = addresses.len(), used = MAX_ENDPOINTS,
                "more addresses than endpoints allowed per peer; using the first");
        }
        let wanted: Vec<&Address> = addresses.iter().take(MAX_ENDPOINTS).collect();
        let mut endpoints = self
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = Vec::with_capacity(wanted.len());
        for address in wanted {
            if let Some(known) = endpoints.iter().find(|e| &e.address == address) {
                next.push(known.clone());
                continue;
            }
            let label = self.shared.label(address.addr);
            let calls = metrics::counter!("shop_downstream_endpoint_calls_total",
                "downstream" => downstream.clone(), "endpoint" => label);
            let observer: Arc<dyn Observer> = self.shared.clone();
            match Endpoint::start(
                address.clone(),
                &self.settings,
                Breaker::new(self.breaker.threshold, self.breaker.cooldown),
                calls,
                observer,
                self.stop.child_token(),
            ) {
                Ok(endpoint) => {
                    tracing::info!(%downstream, endpoint = %address.addr, "endpoint added");
                    next.push(endpoint);
                }
                Err(error) => {
                    tracing::warn!(%downstream, endpoint = %address.addr, %error, "endpoint refused");
                }
            }
        }
        for gone in endpoints
            .iter()
            .filter(|e| !next.iter().any(|n| Arc::ptr_eq(n, e)))
        {
            tracing::info!(%downstream, endpoint = %gone.addr(), "endpoint removed");
            if gone.breaker_open() {
                self.shared.open_breakers.fetch_sub(1, Ordering::Relaxed);
            }
            gone.retire();
        }
        self.shared.known.store(next.len(), Ordering::Relaxed);
        metrics::gauge!("shop_downstream_endpoints", "downstream" => downstream.clone())
            .set(next.len() as f64);
        *endpoints = Arc::new(next);
        drop(endpoints);
        self.shared.report_open();
        self.shared.changed.notify_waiters();
    }

    /// Picks the endpoint for the next call, if possible not `avoid` (the
    /// one the previous attempt failed on).
    pub(super) fn pick(&self, avoid: Option<SocketAddr>) -> Pick {
        let endpoints = self.current();
        let now = Instant::now();
        let mut avoid = avoid;
        let eligible = |avoid: Option<SocketAddr>| {
            move |e: &&Arc<Endpoint>| e.is_eligible(now) && Some(e.addr()) != avoid
        };
        let mut count = endpoints.iter().filter(eligible(avoid)).count();
        if count == 0 && avoid.is_some() {
            avoid = None;
            count = endpoints.iter().filter(eligible(avoid)).count();
        }
        if count == 0 {
            if endpoints.iter().any(|e| e.health() == Health::Probing) {
                return Pick::Wait;
            }
            return Pick::None {
                known: endpoints.len(),
                open: endpoints
                    .iter()
                    .any(|e| e.health() == Health::Serving && e.breaker_open()),
            };
        }
        let (first, second) = {
            let mut rng = rand::thread_rng();
            let first = rng.gen_range(0..count);
            let second = if count > 1 {
                (first + rng.gen_range(1..count)) % count
            } else {
                first
            };
            (first, second)
        };
        let mut candidates = endpoints.iter().filter(eligible(avoid));
        let nth = |n: usize| endpoints.iter().filter(eligible(avoid)).nth(n);
        let (Some(a), Some(b)) = (nth(first), nth(second)) else {
            // The set changed under us: take any.
            return match candidates.find(|e| e.admit()) {
                Some(e) => Pick::Ready(e.start_call()),
                None => Pick::Wait,
            };
        };
        let (lighter, heavier) = if b.in_flight() < a.in_flight() {
            (b, a)
        } else {
            (a, b)
        };
        for endpoint in [lighter, heavier] {
            if endpoint.admit() {
                return Pick::Ready(endpoint.start_call());
            }
        }
        // Both half-open with their probe already out.
        Pick::None {
            known: endpoints.len(),
            open: true,
        }
    }

    /// Resolves when an endpoint's health or breaker changes, or the set
    /// does. Create it before looking, so no change is missed.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.changed.notified()
    }
}
