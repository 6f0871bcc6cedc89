//! A peer's endpoints as its balancer discovers them: the set follows the
//! peer's addresses as they are resolved again (a `tower::discover` stream
//! of endpoints inserted and removed), and keeps what the rest of the
//! stack reads of it: each endpoint's health, whether any may take a call
//! now (so a call with nowhere to go fails fast instead of waiting), and
//! the peer's metrics. The breaker gauge is computed from the endpoints the
//! peer has now, never kept by hand.

use std::{
    collections::{BTreeSet, HashSet},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use tokio::{
    sync::{Notify, mpsc},
    time::Instant,
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tower::discover::Change;

use super::{
    breaker::Breaker,
    endpoint::{Endpoint, EndpointSettings, Health, Observer},
    endpoint_service::EndpointService,
    resolve::Address,
};

/// Endpoints per peer at most; a name resolving to more uses the first.
pub(super) const MAX_ENDPOINTS: usize = 64;
/// Distinct endpoint labels per peer in the metrics; later ones are
/// counted as `other` (addresses change as replicas come and go).
const MAX_LABELLED: usize = 64;

/// How each endpoint's breaker is set.
#[derive(Clone, Copy, Debug)]
pub(super) struct BreakerPolicy {
    pub(super) threshold: u32,
    pub(super) cooldown: std::time::Duration,
}

/// What the balancer discovers: endpoints coming and going.
pub(super) type Discovered = futures::stream::Map<
    UnboundedReceiverStream<Change<SocketAddr, EndpointService>>,
    fn(
        Change<SocketAddr, EndpointService>,
    ) -> Result<Change<SocketAddr, EndpointService>, Infallible>,
>;

/// Where a call may go now, if anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Availability {
    /// Some endpoint serves and admits a call.
    Ready,
    /// None does now, but one is being asked: a moment may tell.
    Probing,
    /// Some serve, but every such breaker is open.
    Open,
    /// None serves, of `known`.
    None { known: usize },
}

/// The peer's metric handles, looked up once: calls by code (the 17 gRPC
/// codes, then "circuit_open"), sheds, retries, hedges.
#[derive(Debug)]
pub(super) struct Metrics {
    calls: Vec<metrics::Counter>,
    pub(super) shed: metrics::Counter,
    pub(super) retries: metrics::Counter,
    pub(super) hedges: metrics::Counter,
}

/// The label of calls failed fast with no endpoint to take them.
const CIRCUIT_OPEN: usize = 17;

impl Metrics {
    fn new(downstream: &str) -> Self {
        let calls = (0..=16)
            .map(shop_kit_wire::code_name)
            .chain(["circuit_open"])
            .map(|code| {
                metrics::counter!("shop_downstream_calls_total",
                    "downstream" => downstream.to_owned(), "code" => code)
            })
            .collect();
        Self {
            calls,
            shed: metrics::counter!("shop_downstream_shed_total", "downstream" => downstream.to_owned()),
            retries: metrics::counter!("shop_downstream_retries_total", "downstream" => downstream.to_owned()),
            hedges: metrics::counter!("shop_downstream_hedges_total", "downstream" => downstream.to_owned()),
        }
    }

    pub(super) fn circuit_open(&self) {
        self.calls[CIRCUIT_OPEN].increment(1);
    }
}

/// What the endpoints report to, and the stack reads.
pub(super) struct Shared {
    pub(super) downstream: Arc<str>,
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    changed: Notify,
    labelled: Mutex<HashSet<SocketAddr>>,
    pub(super) metrics: Metrics,
}

impl Shared {
    fn current(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn label(&self, addr: SocketAddr) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        if labelled.contains(&addr) || labelled.len() < MAX_LABELLED {
            labelled.insert(addr);
            addr.to_string()
        } else {
            "other".to_owned()
        }
    }

    /// The breaker gauge: 1 while every endpoint the peer has fails fast.
    fn report_open(&self) {
        let open = self.all_failing();
        metrics::gauge!("shop_downstream_breaker_open", "downstream" => self.downstream.to_string())
            .set(if open { 1.0 } else { 0.0 });
    }

    /// Whether every endpoint's breaker fails calls fast.
    pub(super) fn all_failing(&self) -> bool {
        let endpoints = self.current();
        !endpoints.is_empty() && endpoints.iter().all(|e| e.breaker_failing())
    }

    /// Each endpoint's address, health and calls in flight.
    pub(super) fn describe(&self) -> Vec<(SocketAddr, &'static str, usize)> {
        self.current()
            .iter()
            .map(|e| (e.addr(), e.health().as_str(), e.in_flight()))
            .collect()
    }

    /// Whether some endpoint says it serves now.
    pub(super) fn any_serving(&self) -> bool {
        self.current().iter().any(|e| e.health() == Health::Serving)
    }

    /// Whether two endpoints or more may take a call now: a hedge has
    /// somewhere else to go than the endpoint still working on the call.
    pub(super) fn elsewhere(&self, now: Instant) -> bool {
        self.current()
            .iter()
            .filter(|e| e.is_eligible(now))
            .nth(1)
            .is_some()
    }

    /// Where a call may go now.
    pub(super) fn availability(&self, now: Instant) -> Availability {
        let endpoints = self.current();
        if endpoints.iter().any(|e| e.is_eligible(now)) {
            return Availability::Ready;
        }
        if endpoints.iter().any(|e| e.health() == Health::Probing) {
            return Availability::Probing;
        }
        if endpoints
            .iter()
            .any(|e| e.health() == Health::Serving && e.breaker_failing())
        {
            return Availability::Open;
        }
        Availability::None {
            known: endpoints.len(),
        }
    }

    /// Resolves when an endpoint's health or breaker changes, or the set
    /// does. Create it before looking, so no change is missed.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

impl Observer for Shared {
    fn health_changed(&self, endpoint: &Endpoint, from: Health, to: Health) {
        let label = self.label(endpoint.addr());
        let downstream = self.downstream.to_string();
        metrics::gauge!("shop_downstream_endpoint_serving",
            "downstream" => downstream.clone(), "endpoint" => label.clone())
        .set(if to == Health::Serving { 1.0 } else { 0.0 });
        match (from, to) {
            (Health::Serving, Health::Probing) => {}
            (Health::Serving | Health::Probing, Health::NotServing | Health::Down) => {
                metrics::counter!("shop_downstream_endpoint_ejections_total",
                    "downstream" => downstream, "endpoint" => label)
                .increment(1);
                if endpoint.has_served() {
                    tracing::info!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                        health = to.as_str(), "endpoint out of rotation");
                } else {
                    // Still starting up, most likely: news only at debug.
                    tracing::debug!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                        health = to.as_str(), "endpoint not serving yet");
                }
            }
            (_, Health::Serving) if !endpoint.has_served() => {
                tracing::debug!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                    "endpoint serves");
            }
            (Health::NotServing | Health::Down, Health::Serving) => {
                tracing::info!(downstream = %self.downstream, endpoint = %endpoint.addr(),
                    "endpoint serves again");
            }
            _ => {}
        }
        self.changed.notify_waiters();
    }

    fn breaker_changed(&self, _endpoint: &Endpoint, _open: bool) {
        self.report_open();
        self.changed.notify_waiters();
    }

    fn call_ended(&self, code: Code) {
        if let Some(counter) = self.metrics.calls.get(code as usize) {
            counter.increment(1);
        }
    }
}

/// A peer's endpoints: the set, and the stream its balancer discovers it
/// by.
pub(super) struct EndpointSet {
    pub(super) shared: Arc<Shared>,
    settings: EndpointSettings,
    breaker: BreakerPolicy,
    stop: CancellationToken,
    changes: mpsc::UnboundedSender<Change<SocketAddr, EndpointService>>,
}

impl EndpointSet {
    /// An empty set, and what its balancer discovers it by.
    pub(super) fn new(
        downstream: &str,
        settings: EndpointSettings,
        breaker: BreakerPolicy,
        stop: CancellationToken,
    ) -> (Self, Discovered) {
        let shared = Arc::new(Shared {
            downstream: downstream.into(),
            endpoints: RwLock::new(Arc::new(Vec::new())),
            changed: Notify::new(),
            labelled: Mutex::default(),
            metrics: Metrics::new(downstream),
        });
        shared.report_open();
        let (changes, discovered) = mpsc::unbounded_channel();
        let discovered: Discovered =
            futures::StreamExt::map(UnboundedReceiverStream::new(discovered), Ok);
        (
            Self {
                shared,
                settings,
                breaker,
                stop,
                changes,
            },
            discovered,
        )
    }

    /// Makes the set `addresses` (at most [`MAX_ENDPOINTS`]): endpoints
    /// already known are kept as they are, new ones start being watched
    /// and are inserted into the balancer, gone ones stop and are removed.
    pub(super) fn update(&self, addresses: &BTreeSet<Address>) {
        let downstream = &self.shared.downstream;
        if addresses.len() > MAX_ENDPOINTS {
            tracing::warn!(%downstream, found = addresses.len(), used = MAX_ENDPOINTS,
                "more addresses than endpoints allowed per peer; using the first");
        }
        let wanted: Vec<&Address> = addresses.iter().take(MAX_ENDPOINTS).collect();
        let mut endpoints = self
            .shared
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
                "downstream" => downstream.to_string(), "endpoint" => label);
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
                    tracing::debug!(%downstream, endpoint = %address.addr, "endpoint added");
                    let _ = self.changes.send(Change::Insert(
                        address.addr,
                        EndpointService::new(endpoint.clone()),
                    ));
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
            gone.retire();
            let _ = self.changes.send(Change::Remove(gone.addr()));
        }
        metrics::gauge!("shop_downstream_endpoints", "downstream" => downstream.to_string())
            .set(next.len() as f64);
        *endpoints = Arc::new(next);
        drop(endpoints);
        self.shared.report_open();
        self.shared.changed.notify_waiters();
    }
}
