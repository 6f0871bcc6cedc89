//! Calling another service, resiliently. A peer ([`Peer`]) is a
//! `tower::Service` over HTTP that tonic's generated clients take as they
//! are (`CatalogServiceClient::new(peer.clone())`), built of tower's parts,
//! outermost first: the deadline (the call's context or the method's), the
//! credentials, the intake (nowhere to go: refused at once), the bulkhead,
//! retries within a budget, the answer read whole, hedging, the balancer
//! (p2c by calls in flight over every replica, looked up again), each
//! endpoint with its health watch and breaker, its connection. How each
//! method is called comes from the contract ([`Calls`]), never from the
//! call site; [`translate`] turns a peer's error into what is true for this
//! service's caller. Each layer, its metrics and its cost: docs/calling.md.

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
mod hedge;
mod intake;
mod one_answer;
mod peers;
mod policy;
mod read_whole;
mod renewable;
mod resolve;
mod retry;
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
use endpoint::EndpointSettings;
use endpoints::{BreakerPolicy, Discovered, EndpointSet};
pub use peers::{Peers, PeersError};
pub use policy::PeerPolicy;
pub use renewable::Renewable;
pub use shop_kit_wire::Deadline;
/// What a served call gives the calls it makes (its deadline, its
/// caller): read by every call through a `Peer`.
pub use shop_kit_wire::context::CallContext;
use status::{BoxError, Response};
pub use status::{
    is_infrastructure_failure, lacked_credentials, was_not_sent, was_refused_unprocessed, was_shed,
};
pub use target::{BadTarget, PeerTarget};
pub use translate::{PeerFailure, busy_message, shed_message, translate};

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
type Bulkhead = LoadShed<ConcurrencyLimit<RetryLayer<retry::Retries, ReadWholly>>>;
type ReadWholly = read_whole::ReadWhole<hedge::Hedge<SharedBalancer>>;
type Intake = intake::Intake<Bulkhead>;

/// One peer service, as seen by this one: every endpoint of it, balanced,
/// behind the client stack. Clones share everything (endpoints, breakers,
/// bulkhead, retry budget).
#[derive(Clone)]
pub struct Peer {
    service: BoxCloneSyncService<Request, Response, BoxError>,
    intake: Intake,
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
            EndpointSettings {
                connect_timeout: policy.connect_timeout,
                tls,
                health_checks: policy.health_checks,
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
            retry::Retries::new(budget, set.shared.metrics.retries.clone()),
            read_whole::ReadWhole::new(hedged),
        );
        let bulkhead = LoadShed::new(ConcurrencyLimit::new(retried, policy.max_in_flight.max(1)));
        let intake = intake::Intake::new(bulkhead, set.shared.clone(), policy.max_request_bytes);
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            set,
            _stop: stop.clone().drop_guard(),
            stop,
            policy,
        });
        Self {
            service: stack(&inner, intake.clone(), Calling::Anonymously),
            intake,
            inner,
        }
    }

    /// The peer, called as this service: `credentials`' bearer token on
    /// every call that carries none.
    pub fn with_credentials(self, credentials: Arc<dyn Credentials>) -> Self {
        Self {
            service: stack(
                &self.inner,
                self.intake.clone(),
                Calling::AsItself(credentials),
            ),
            ..self
        }
    }

    /// The peer, called as the caller of the call being served: its
    /// `authorization` on every call that carries none (anonymous when the
    /// caller was). For a service that mints no identity of its own (the
    /// gateway).
    pub fn as_the_caller(self) -> Self {
        Self {
            service: stack(&self.inner, self.intake.clone(), Calling::AsTheCaller),
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

/// The layers over the intake: the deadline, then (if any) the credentials.
/// Whose token a peer's calls carry (when the call itself carries none).
enum Calling {
    /// None.
    Anonymously,
    /// The calling service's own.
    AsItself(Arc<dyn Credentials>),
    /// The caller's of the call being served (its context).
    AsTheCaller,
}

fn stack(
    inner: &Inner,
    intake: Intake,
    calling: Calling,
) -> BoxCloneSyncService<Request, Response, BoxError> {
    let deadline = deadline::DeadlineLayer {
        default: inner.policy.timeout,
        calls: inner.policy.calls.clone(),
        peer: inner.name.as_str().into(),
    };
    match calling {
        Calling::Anonymously => BoxCloneSyncService::new(deadline.layer(intake)),
        Calling::AsItself(credentials) => BoxCloneSyncService::new(
            deadline.layer(bearer::CredentialsLayer { credentials }.layer(intake)),
        ),
        Calling::AsTheCaller => BoxCloneSyncService::new(
            deadline.layer(bearer::CallersAuthorizationLayer.layer(intake)),
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

/// What a call to a peer carries, said on its tonic request (a client
/// that serves no call: a served call's deadline and caller ride in its
/// context, `shop_kit_wire::context`).
pub trait CallExt {
    /// With this bearer token.
    #[must_use]
    fn bearer(self, token: &str) -> Self;
}

impl<T> CallExt for tonic::Request<T> {
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
