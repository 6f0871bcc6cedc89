//! Calling another service, resiliently. A peer ([`Peer`]) is a
//! `tower::Service` over HTTP that tonic's generated clients take as they
//! are (`CatalogServiceClient::new(peer.clone())`), built of tower's parts:
//!
//! ```text
//! deadline       the caller's (grpc-timeout) or the method's timeout, the
//!                shorter; else the peer's default budget; answered
//!                deadline_exceeded at it; every attempt sends on what is left
//! credentials    the service's own bearer token, had within the deadline
//!                (optional: Peer::with_credentials)
//! gate           nowhere to go (every endpoint down, draining, failing fast):
//!                unavailable at once, marked not sent; the request read whole
//! bulkhead       LoadShed + ConcurrencyLimit: at most so many calls in flight,
//!                the rest shed with resource_exhausted, marked not sent
//! retry          tower::retry, as the method's retryPolicy says (its codes,
//!                attempts, backoff drawn at random), and any call that never
//!                left or that the peer refused unprocessed (overloaded);
//!                within the deadline and the peer's retry budget
//! settle         a call the retry may send again on unavailable has its
//!                answer read whole first: a connection broken mid-answer
//!                (a replica killed) is sent again, not a caller's read
//!                failing half way
//! hedge          as the method's hedgingPolicy says: a copy sent every delay
//!                while none has answered and another endpoint may take it,
//!                the first final answer taken, the others cancelled; copies
//!                drawn from the same budget
//! shared         the balancer, shared by every clone: taken in turn (a fair
//!                lock) until an endpoint is ready, the answer awaited without it
//! balance        tower::balance::p2c over a Discover fed by the peer's
//!                addresses, looked up again every few seconds; load = calls
//!                in flight
//! endpoint       ready only while its grpc.health.v1 Watch says it serves and
//!                its breaker (infrastructure failures only, per endpoint)
//!                admits a call; a call that cannot connect or is answered
//!                unavailable has it checked before it is used again
//! channel        every RPC timed by code and made a client span, its outcome
//!                recorded on the endpoint
//! connection     the endpoint's own HTTP/2 connection (TLS when https), made
//!                again when it closes (tower::reconnect)
//! ```
//!
//! How each method is called comes from the contract ([`Calls`]), never
//! from the call site.
//!
//! Metrics per peer (calls by code, retries, hedges, sheds, breaker) and per
//! endpoint (calls, serving, ejections). [`translate`] turns a peer's error
//! into what is true for this service's caller.

mod backoff;
mod bearer;
mod breaker;
mod budget;
mod calls;
mod channel;
mod connection;
mod deadline;
mod endpoint;
mod endpoint_service;
mod endpoints;
mod gate;
mod hedge;
mod policy;
mod renewable;
mod resolve;
mod retry;
mod settle;
mod shared;
mod status;
mod target;
mod translate;

use std::{
    net::SocketAddr,
    sync::{Arc, Weak},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::Status;
use tower::{
    Layer, Service, ServiceExt, balance::p2c::Balance, limit::ConcurrencyLimit,
    load_shed::LoadShed, retry::Retry as RetryLayer, util::BoxCloneSyncService,
};

pub use backoff::Backoff;
pub use bearer::Credentials;
pub use calls::{CallPolicies, Calls, CallsError, Codes, Hedging, MethodCalls, Retrying};
pub use channel::CLIENT_CALL_DURATION;
use endpoint::ChannelSettings;
use endpoints::{BreakerPolicy, Discovered, EndpointSet};
pub use policy::PeerPolicy;
pub use renewable::Renewable;
pub use shop_kit_wire::Deadline;
use status::{BoxError, Response};
pub use status::{
    is_infrastructure_failure, lacked_credentials, was_not_sent, was_refused_unprocessed, was_shed,
};
pub use target::{BadTarget, PeerTarget};
pub use translate::{busy_message, shed_message, translate};

/// How often a peer's names are looked up again.
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// Why a peer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{target}: no address found within {waited:?} ({})", reasons.join("; "))]
    Unresolved {
        target: String,
        waited: Duration,
        reasons: Vec<String>,
    },
}

type Request = http::Request<tonic::body::Body>;
type Balanced = Balance<Discovered, http::Request<Bytes>>;
type SharedBalancer = shared::Shared<Balanced>;
type Bulkhead = LoadShed<ConcurrencyLimit<RetryLayer<retry::RetryPolicy, Settled>>>;
type Settled = settle::Settle<hedge::Hedge<SharedBalancer>>;
type Door = gate::Gate<Bulkhead>;

/// One peer service, as seen by this one: every endpoint of it, balanced,
/// behind the client stack. Clones share everything (endpoints, breakers,
/// bulkhead, retry budget).
#[derive(Clone)]
pub struct Peer {
    service: BoxCloneSyncService<Request, Response, BoxError>,
    door: Door,
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    policy: PeerPolicy,
    set: EndpointSet,
    /// Stops the endpoints' health watches and the re-resolution when the
    /// last handle goes.
    _stop: DropGuard,
    stop: CancellationToken,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.inner.name)
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// The peer `name` at `target`: resolves its addresses (waiting up to
    /// `policy.resolve_patience` for a name to resolve at all), watches
    /// each endpoint's health, and looks names up again every few seconds
    /// (keeping the last addresses found if a lookup fails).
    pub async fn connect(
        name: &str,
        target: &PeerTarget,
        policy: PeerPolicy,
    ) -> Result<Self, PeerError> {
        let started = Instant::now();
        let first = loop {
            let found = resolve::resolve(target).await;
            for failure in &found.failures {
                tracing::warn!(downstream = name, %target, %failure, "peer address not resolved");
            }
            if !found.addresses.is_empty() {
                break found;
            }
            if started.elapsed() >= policy.resolve_patience {
                return Err(PeerError::Unresolved {
                    target: target.to_string(),
                    waited: policy.resolve_patience,
                    reasons: found.failures,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        policy.calls.follow();
        let peer = Self::with_addresses(name, &first.addresses, policy, target.tls().cloned());
        if !target.is_static() {
            tokio::spawn(re_resolve(
                Arc::downgrade(&peer.inner),
                target.clone(),
                peer.inner.stop.clone(),
            ));
        }
        Ok(peer)
    }

    /// The peer at one address, over plain HTTP/2 (tests, tools).
    pub fn at(name: &str, addr: SocketAddr, policy: PeerPolicy) -> Self {
        let address = resolve::Address {
            addr,
            scheme: target::Scheme::Http,
            authority: addr.to_string(),
        };
        Self::with_addresses(name, &[address].into_iter().collect(), policy, None)
    }

    fn with_addresses(
        name: &str,
        addresses: &std::collections::BTreeSet<resolve::Address>,
        policy: PeerPolicy,
        tls: Option<shop_kit_tls::ClientTls>,
    ) -> Self {
        let stop = CancellationToken::new();
        let (set, discovered) = EndpointSet::new(
            name,
            ChannelSettings {
                connect_timeout: policy.connect_timeout,
                tls,
            },
            BreakerPolicy {
                threshold: policy.breaker_threshold,
                cooldown: policy.breaker_cooldown,
            },
            stop.clone(),
        );
        set.update(addresses);
        let balancer = shared::Shared::new(Balance::new(discovered));
        let budget = Arc::new(budget::RetryBudget::new(
            policy.retry_ratio,
            policy.min_retries_per_sec,
        ));
        let hedged = hedge::Hedge::new(balancer, budget.clone(), set.shared.clone());
        let retried = RetryLayer::new(
            retry::RetryPolicy::new(budget, set.shared.metrics.retries.clone()),
            settle::Settle::new(hedged),
        );
        let bulkhead = LoadShed::new(ConcurrencyLimit::new(retried, policy.max_in_flight.max(1)));
        let door = gate::Gate::new(bulkhead, set.shared.clone(), policy.max_request_bytes);
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            set,
            _stop: stop.clone().drop_guard(),
            stop,
            policy,
        });
        Self {
            service: stack(&inner, door.clone(), None),
            door,
            inner,
        }
    }

    /// The peer, called as this service: `credentials`' bearer token on
    /// every call that carries none.
    pub fn with_credentials(self, credentials: Arc<dyn Credentials>) -> Self {
        Self {
            service: stack(&self.inner, self.door.clone(), Some(credentials)),
            ..self
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn policy(&self) -> &PeerPolicy {
        &self.inner.policy
    }

    /// Each endpoint's address, health (`serving`, `probing`,
    /// `not_serving`, `down`) and calls in flight.
    pub fn endpoints(&self) -> Vec<(SocketAddr, &'static str, usize)> {
        self.inner.set.shared.describe()
    }

    /// Whether some endpoint of it says it serves now.
    pub fn is_serving(&self) -> bool {
        self.inner.set.shared.any_serving()
    }

    /// Whether every endpoint's breaker fails calls fast.
    pub fn is_open(&self) -> bool {
        self.inner.set.shared.all_failing()
    }

    /// A plain HTTP GET of `path` through the stack (e.g. a JWK set): the
    /// body of a 2xx answer; otherwise the status a gRPC client would see
    /// (`unavailable` for 502, 503, 504 and a broken connection).
    pub async fn get(&self, path: &str) -> Result<Bytes, Status> {
        let request = http::Request::get(format!("http://peer{path}"))
            .body(tonic::body::Body::default())
            .map_err(|e| Status::internal(e.to_string()))?;
        let response = self
            .clone()
            .oneshot(request)
            .await
            .map_err(Status::from_error)?;
        read_answer(response, path).await
    }
}

/// Whether each of `peers` has an endpoint that says it serves; else which
/// has none: what a service needs before it says it is ready
/// (`Readiness::after`), so that its first calls find somewhere to go.
pub fn each_serving(peers: &[Peer]) -> Result<(), String> {
    match peers.iter().find(|peer| !peer.is_serving()) {
        None => Ok(()),
        Some(peer) => Err(format!(
            "no {} endpoint serves yet ({})",
            peer.name(),
            describe(&peer.endpoints())
        )),
    }
}

/// Endpoints as `addr health` pairs, for a message.
fn describe(endpoints: &[(SocketAddr, &'static str, usize)]) -> String {
    if endpoints.is_empty() {
        return "none known".to_owned();
    }
    endpoints
        .iter()
        .map(|(addr, health, _)| format!("{addr} {health}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The body of a plain HTTP answer, or the status it stands for: the
/// stack's own (a call not sent), or what its HTTP status means.
async fn read_answer(response: Response, path: &str) -> Result<Bytes, Status> {
    use http_body_util::BodyExt;
    if let Some(status) = Status::from_header_map(response.headers())
        && status.code() != tonic::Code::Ok
    {
        return Err(status);
    }
    let code = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?
        .to_bytes();
    match code.as_u16() {
        200..=299 => Ok(body),
        404 => Err(Status::not_found(format!("{path}: HTTP 404"))),
        502..=504 => Err(Status::unavailable(format!("{path}: HTTP {code}"))),
        _ => Err(Status::internal(format!("{path}: HTTP {code}"))),
    }
}

/// The layers over the door: the deadline, then (if any) the credentials.
fn stack(
    inner: &Inner,
    door: Door,
    credentials: Option<Arc<dyn Credentials>>,
) -> BoxCloneSyncService<Request, Response, BoxError> {
    let deadline = deadline::DeadlineLayer {
        default: inner.policy.timeout,
        calls: inner.policy.calls.clone(),
        peer: inner.name.as_str().into(),
    };
    match credentials {
        None => BoxCloneSyncService::new(deadline.layer(door)),
        Some(credentials) => BoxCloneSyncService::new(
            deadline.layer(bearer::CredentialsLayer { credentials }.layer(door)),
        ),
    }
}

impl Service<Request> for Peer {
    type Response = Response;
    type Error = BoxError;
    type Future = <BoxCloneSyncService<Request, Response, BoxError> as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.service.call(request)
    }
}

/// What a call to a peer carries, said on its tonic request.
pub trait CallExt {
    /// Answered by `deadline` (the caller's), sent on as `grpc-timeout`;
    /// without one, the peer's budget.
    #[must_use]
    fn within(self, deadline: Option<Instant>) -> Self;
    /// With this bearer token (a caller's, passed on).
    #[must_use]
    fn bearer(self, token: &str) -> Self;
}

impl<T> CallExt for tonic::Request<T> {
    fn within(mut self, deadline: Option<Instant>) -> Self {
        if let Some(deadline) = deadline {
            self.set_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        if let Ok(value) = format!("Bearer {token}").parse() {
            self.metadata_mut().insert("authorization", value);
        }
        self
    }
}

/// Looks the target's names up again every [`RESOLVE_EVERY`] while the
/// peer lives; a failed lookup keeps the endpoints known.
async fn re_resolve(inner: Weak<Inner>, target: PeerTarget, stop: CancellationToken) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RESOLVE_EVERY) => {}
        }
        let found = resolve::resolve(&target).await;
        let Some(inner) = inner.upgrade() else { return };
        if found.addresses.is_empty() {
            if !std::mem::replace(&mut failing, true) {
                tracing::warn!(downstream = %inner.name, %target, failures = ?found.failures,
                    "peer addresses not resolved; keeping the last known");
            }
            continue;
        }
        if std::mem::take(&mut failing) {
            tracing::info!(downstream = %inner.name, %target, "peer addresses resolve again");
        }
        inner.set.update(&found.addresses);
    }
}

#[cfg(test)]
mod tests;
