//! One address of a peer: its HTTP/2 connection, the calls in flight on it,
//! its breaker, and whether it serves, as its own `grpc.health.v1.Health`
//! says. A task per endpoint keeps a `Watch` stream open, so a replica that
//! starts draining (NOT_SERVING) or dies (the stream breaks) leaves the
//! rotation at once; a call that fails to connect or is answered
//! `unavailable` makes the task ask (`Check`) before the endpoint is used
//! again. An endpoint that is down is probed again with backoff until it
//! serves.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{Backoff, breaker::Breaker, resolve::Address, target::Scheme};
use crate::tls::{ClientTls, TlsError};

/// How long a health probe may take before the endpoint counts as down.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Probes of an endpoint that is down: this soon at first, then less often.
const PROBE_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};
/// HTTP/2 pings on a quiet connection: a peer gone silent (a machine lost,
/// a paused process) is noticed within interval + timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

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
}

/// How connections to a peer's endpoints are made.
#[derive(Clone, Debug)]
pub(super) struct ChannelSettings {
    pub(super) connect_timeout: Duration,
    /// TLS for the endpoints whose scheme is https.
    pub(super) tls: Option<ClientTls>,
}

/// Why an endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum EndpointError {
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("https needs the CA that signs its certificate: give --tls-ca")]
    NoTls,
}

pub(super) struct Endpoint {
    pub(super) address: Address,
    channel: Channel,
    in_flight: AtomicUsize,
    health: AtomicU8,
    breaker: Breaker,
    /// A call failed in a way that asks whether it still serves.
    suspect: Notify,
    stop: CancellationToken,
    pub(super) calls: metrics::Counter,
    observer: Arc<dyn Observer>,
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
        settings: &ChannelSettings,
        breaker: Breaker,
        calls: metrics::Counter,
        observer: Arc<dyn Observer>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, EndpointError> {
        let scheme = match address.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let origin: http::Uri = format!("{scheme}://{}", address.authority)
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://peer"));
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", address.addr))?
            .origin(origin)
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = match address.scheme {
            Scheme::Http => endpoint.connect_lazy(),
            Scheme::Https => {
                let tls = settings.tls.as_ref().ok_or(EndpointError::NoTls)?;
                let connector =
                    tls.connector(address.addr, address.host(), settings.connect_timeout)?;
                endpoint.connect_with_connector_lazy(connector)
            }
        };
        let endpoint = Arc::new(Self {
            address,
            channel,
            in_flight: AtomicUsize::new(0),
            health: AtomicU8::new(Health::Probing as u8),
            breaker,
            suspect: Notify::new(),
            stop,
            calls,
            observer,
        });
        tokio::spawn(endpoint.clone().watch_health());
        Ok(endpoint)
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.address.addr
    }

    pub(super) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(super) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether a call could go to it now.
    pub(super) fn is_eligible(&self, now: Instant) -> bool {
        self.health() == Health::Serving && self.breaker.would_admit(now)
    }

    /// Stops watching it (it left its set).
    pub(super) fn retire(&self) {
        self.stop.cancel();
    }

    pub(super) fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Takes the breaker's leave for one call (the probe slot if half-open).
    pub(super) fn admit(&self) -> bool {
        self.breaker.admit()
    }

    /// Counts a call in flight until the guard is dropped.
    pub(super) fn start_call(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Records a call's outcome: its breaker counts it, and a call that
    /// could not reach it, or that it answered `unavailable` or let time
    /// out, takes it out of rotation until a health check says it serves.
    pub(super) fn record(&self, outcome: Result<(), &Status>) {
        if let Some(open) = self.breaker.record(outcome.map_err(Status::code)) {
            if open {
                tracing::warn!(endpoint = %self.address.addr, "circuit open: failing fast");
            }
            self.observer.breaker_changed(self, open);
        }
        if let Err(status) = outcome
            && matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
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
        if changed && from != to {
            self.observer.health_changed(self, from, to);
        }
        changed
    }

    fn set(&self, to: Health) {
        let from = Health::from_u8(self.health.swap(to as u8, Ordering::AcqRel));
        if from != to {
            self.observer.health_changed(self, from, to);
        }
    }

    /// Keeps the health current until the endpoint is dropped from its set.
    async fn watch_health(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let mut health = HealthClient::new(self.channel());
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
                                Ok(None) | Err(_) => break,
                            },
                            () = self.suspect.notified() => {
                                let health = self.check().await;
                                self.set(health);
                                if health == Health::Down {
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
                Ok(Err(_)) | Err(_) => self.set(Health::Down),
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(PROBE_BACKOFF.delay(failures)) => {}
            }
        }
    }

    /// One health check, within [`PROBE_TIMEOUT`].
    async fn check(&self) -> Health {
        let mut health = HealthClient::new(self.channel());
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

/// One call in flight on an endpoint.
pub(super) struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub(super) fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
