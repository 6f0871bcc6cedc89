//! One address of a peer: its HTTP/2 connection, the calls in flight on it,
//! its breaker, and whether it serves, as its own `grpc.health.v1.Health`
//! says. A task per endpoint keeps a `Watch` stream open, so a replica that
//! starts draining (NOT_SERVING) or dies (the stream breaks) leaves the
//! rotation at once; a call that fails to connect or is answered
//! `unavailable` makes the task ask (`Check`) before the endpoint is used
//! again. An endpoint that is down is probed again with backoff until it
//! serves.
//!
//! To the balancer an endpoint is an
//! [`EndpointService`](super::endpoint_service::EndpointService).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::task::AtomicWaker;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{
    Backoff,
    breaker::Breaker,
    connection::{Connect, Connection},
    resolve::Address,
    target::Scheme,
};
use shop_kit_tls::{ClientTls, TlsError};

/// How long an endpoint that refused a call unprocessed (its admission
/// control: overloaded), answered one `unavailable`, or kept one past its
/// hedging delay is the balancer's last choice.
const AVOID_REFUSING: Duration = Duration::from_millis(250);
/// The load an avoided endpoint counts beyond its calls in flight: more
/// than any endpoint not refusing has.
const AVOIDED_LOAD: usize = 1 << 20;

/// How long a health probe may take before the endpoint counts as down.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Probes of an endpoint that is down: this soon at first, then less often.
const PROBE_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
    multiplier: 2.0,
};
/// Probes of an endpoint that has never served (a peer still starting): no
/// further apart than this, so that a service waiting for its peers is
/// ready moments after they are.
const PROBE_BACKOFF_STARTING: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_millis(250),
    multiplier: 2.0,
};

/// Whether an endpoint serves, as far as this client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Health {
    /// Asked, no answer yet: calls may wait a moment for it.
    Probing = 0,
    Serving = 1,
    /// It answers, and says it does not serve (draining, not ready).
    NotServing = 2,
    /// It does not answer: refused, reset, timed out.
    Down = 3,
}

impl Health {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Serving,
            2 => Self::NotServing,
            3 => Self::Down,
            _ => Self::Probing,
        }
    }

    fn of(status: ServingStatus) -> Self {
        match status {
            ServingStatus::Serving => Self::Serving,
            _ => Self::NotServing,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Probing => "probing",
            Self::Serving => "serving",
            Self::NotServing => "not_serving",
            Self::Down => "down",
        }
    }
}

/// What an endpoint reports to its set.
pub(super) trait Observer: Send + Sync + 'static {
    /// Its health changed.
    fn health_changed(&self, endpoint: &Endpoint, from: Health, to: Health);
    /// Its breaker opened (`true`) or closed.
    fn breaker_changed(&self, endpoint: &Endpoint, open: bool);
    /// A call on it ended with `code`.
    fn call_ended(&self, code: Code);
}

/// How a peer's endpoints are reached and watched.
#[derive(Clone, Debug)]
pub(super) struct EndpointSettings {
    pub(super) connect_timeout: Duration,
    /// TLS for the endpoints whose scheme is https.
    pub(super) tls: Option<ClientTls>,
    /// Whether each endpoint's `grpc.health.v1.Health` is watched; if not,
    /// it serves as far as this client knows, its breaker alone taking it
    /// out (`PeerPolicy::health_checks`).
    pub(super) health_checks: bool,
}

/// Why an endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum EndpointError {
    #[error("{0:?} is no host and port")]
    Authority(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("https needs the CA that signs its certificate: give --tls-ca")]
    NoTls,
}

pub(super) struct Endpoint {
    pub(super) address: Address,
    pub(super) connect: Connect,
    in_flight: AtomicUsize,
    /// Until when (ms after `born`; 0: not) it is avoided for refusing.
    avoid_until: AtomicU64,
    born: Instant,
    health: AtomicU8,
    /// Whether it has served at all (an endpoint still starting up that
    /// is down is no news; one that served and goes down is).
    served: AtomicBool,
    pub(super) breaker: Breaker,
    /// A call failed in a way that asks whether it still serves.
    suspect: Notify,
    /// The balancer's wait for this endpoint to take calls again.
    pub(super) ready: AtomicWaker,
    pub(super) stop: CancellationToken,
    pub(super) calls: metrics::Counter,
    observer: Arc<dyn Observer>,
    /// Whether a health check says when it serves again (else it always
    /// does, as far as this client knows).
    health_checks: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.address.addr)
            .field("health", &self.health())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint at `address`, its health watched until `stop`.
    pub(super) fn start(
        address: Address,
        settings: &EndpointSettings,
        breaker: Breaker,
        calls: metrics::Counter,
        observer: Arc<dyn Observer>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, EndpointError> {
        let authority = address
            .authority
            .parse()
            .map_err(|_| EndpointError::Authority(address.authority.clone()))?;
        let tls = match address.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let tls = settings.tls.as_ref().ok_or(EndpointError::NoTls)?;
                Some(tls.connector(address.addr, address.host(), settings.connect_timeout)?)
            }
        };
        let connect = Connect::new(address.addr, authority, tls, settings.connect_timeout);
        let endpoint = Arc::new(Self {
            address,
            connect,
            in_flight: AtomicUsize::new(0),
            avoid_until: AtomicU64::new(0),
            born: Instant::now(),
            health: AtomicU8::new(if settings.health_checks {
                Health::Probing
            } else {
                Health::Serving
            } as u8),
            served: AtomicBool::new(!settings.health_checks),
            breaker,
            suspect: Notify::new(),
            ready: AtomicWaker::new(),
            stop,
            calls,
            observer,
            health_checks: settings.health_checks,
        });
        if settings.health_checks {
            tokio::spawn(endpoint.clone().watch_health());
        }
        Ok(endpoint)
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.address.addr
    }

    pub(super) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }

    /// Whether it has served since it was added.
    pub(super) fn has_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Its load to the balancer: its calls in flight, and far more while
    /// it is avoided for refusing calls unprocessed (so a retry, and the
    /// calls after, go to a sibling where there is one).
    pub(super) fn load(&self) -> usize {
        let in_flight = self.in_flight();
        let until = self.avoid_until.load(Ordering::Relaxed);
        if until == 0 {
            return in_flight;
        }
        if self.born.elapsed().as_millis() as u64 >= until {
            self.avoid_until.store(0, Ordering::Relaxed);
            return in_flight;
        }
        in_flight + AVOIDED_LOAD
    }

    /// It refused a call unprocessed, failed one, or was slow on a hedged
    /// one: avoided for a moment.
    pub(super) fn avoid(&self) {
        let until = (self.born.elapsed() + AVOID_REFUSING).as_millis() as u64;
        self.avoid_until.fetch_max(until.max(1), Ordering::Relaxed);
    }

    /// Whether a call could go to it now.
    pub(super) fn is_eligible(&self, now: Instant) -> bool {
        self.health() == Health::Serving && self.breaker.would_admit(now)
    }

    /// Whether its breaker fails calls fast (open, or half open with only
    /// a probe let through).
    pub(super) fn breaker_failing(&self) -> bool {
        self.breaker.is_failing()
    }

    /// Stops watching it (it left its set).
    pub(super) fn retire(&self) {
        self.stop.cancel();
        self.ready.wake();
    }

    /// Counts a call in flight until its outcome is recorded.
    pub(super) fn start_call(self: &Arc<Self>) -> Outcome {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.calls.increment(1);
        Outcome {
            endpoint: Some(self.clone()),
        }
    }

    /// Records a call's outcome: its breaker counts it, and a call that
    /// could not reach it, or that it answered `unavailable` or let time
    /// out, takes it out of rotation until a health check says it serves;
    /// one it answered `unavailable` makes it the last choice for a moment
    /// after (a replica failing some of its calls gets few, and the retries
    /// of those go to a sibling).
    fn record(&self, code: Code) {
        if code == Code::Unavailable {
            self.avoid();
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.observer.call_ended(code);
        if let Some(open) = self.breaker.record(code) {
            if open {
                tracing::warn!(endpoint = %self.address.addr, "circuit open: failing fast");
            }
            self.observer.breaker_changed(self, open);
            self.ready.wake();
        }
        if self.health_checks
            && matches!(code, Code::Unavailable | Code::DeadlineExceeded)
            && self.set_health(Health::Serving, Health::Probing)
        {
            self.suspect.notify_one();
        }
    }

    /// Sets the health if it is `from` now; whether it was.
    fn set_health(&self, from: Health, to: Health) -> bool {
        let changed = self
            .health
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if changed {
            self.health_changed(from, to);
        }
        changed
    }

    fn set(&self, to: Health) {
        let from = Health::from_u8(self.health.swap(to as u8, Ordering::AcqRel));
        self.health_changed(from, to);
    }

    fn health_changed(&self, from: Health, to: Health) {
        if from != to {
            self.observer.health_changed(self, from, to);
            if to == Health::Serving {
                self.served.store(true, Ordering::Release);
            }
            self.ready.wake();
        }
    }

    /// Keeps the health current until the endpoint is dropped from its set.
    async fn watch_health(self: Arc<Self>) {
        let mut failures = 0u32;
        // Its own connection: a watch is a stream that stays open.
        let mut health = HealthClient::new(self.connect.connection());
        loop {
            let opened = tokio::time::timeout(
                PROBE_TIMEOUT,
                health.watch(HealthCheckRequest {
                    service: String::new(),
                }),
            );
            let stream = tokio::select! {
                () = self.stop.cancelled() => return,
                opened = opened => opened,
            };
            match stream {
                Ok(Ok(stream)) => {
                    let mut stream = stream.into_inner();
                    loop {
                        tokio::select! {
                            () = self.stop.cancelled() => return,
                            message = stream.message() => match message {
                                Ok(Some(answer)) => {
                                    failures = 0;
                                    self.set(Health::of(answer.status()));
                                }
                                // Ended (the server shut down) or broken.
                                Ok(None) => break,
                                Err(status) => {
                                    tracing::debug!(endpoint = %self.addr(), code = ?status.code(),
                                        message = status.message(), "health watch ended");
                                    break;
                                }
                            },
                            () = self.suspect.notified() => {
                                let now = Self::check(&mut health).await;
                                self.set(now);
                                if now == Health::Down {
                                    break;
                                }
                            }
                        }
                    }
                    self.set(Health::Down);
                }
                // A peer without a health service: its calls alone tell.
                Ok(Err(status)) if status.code() == Code::Unimplemented => {
                    self.set(Health::Serving);
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = self.suspect.notified() => continue,
                    }
                }
                Ok(Err(status)) => {
                    tracing::debug!(endpoint = %self.addr(), code = ?status.code(),
                        message = status.message(), "health watch refused");
                    self.set(Health::Down);
                }
                Err(_) => self.set(Health::Down),
            }
            failures = failures.saturating_add(1);
            let backoff = if self.has_served() {
                PROBE_BACKOFF
            } else {
                PROBE_BACKOFF_STARTING
            };
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(backoff.delay(failures)) => {}
            }
        }
    }

    /// One health check, within [`PROBE_TIMEOUT`].
    async fn check(health: &mut HealthClient<Connection>) -> Health {
        let asked = health.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
            Ok(Ok(answer)) => Health::of(answer.into_inner().status()),
            Ok(Err(status)) if status.code() == Code::Unimplemented => Health::Serving,
            Ok(Err(_)) | Err(_) => Health::Down,
        }
    }
}

/// A call in flight on an endpoint: recorded once, with its code, when it
/// ends (a call dropped unanswered is `cancelled`, which no breaker counts,
/// unless its deadline had passed: then `deadline_exceeded`).
pub(super) struct Outcome {
    endpoint: Option<Arc<Endpoint>>,
}

impl Outcome {
    /// The endpoint refused the call unprocessed (overloaded): it is
    /// avoided for a moment; the call is then ended as usual.
    pub(super) fn refused_unprocessed(&self) {
        if let Some(endpoint) = &self.endpoint {
            endpoint.avoid();
        }
    }

    pub(super) fn end(mut self, code: Code) {
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.record(code);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.record(Code::Cancelled);
        }
    }
}

/// The endpoints a hedged call's copies went to (on its request, filled in
/// by each endpoint as it takes a copy).
#[derive(Default)]
pub(super) struct Copies {
    endpoints: Mutex<Vec<Arc<Endpoint>>>,
}

impl Copies {
    pub(super) fn went_to(&self, endpoint: &Arc<Endpoint>) {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(endpoint.clone());
    }

    /// Each endpoint still slow on a copy: the last choice for a moment.
    pub(super) fn avoid(&self) {
        for endpoint in self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            endpoint.avoid();
        }
    }
}
