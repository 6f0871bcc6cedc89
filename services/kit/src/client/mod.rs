//! Calling another service, resiliently: the one client-side stack every
//! service and the gateway put around their calls (tonic gRPC clients, or
//! any call over an HTTP/2 channel returning a `tonic::Status`).
//!
//! - a peer is one address or many ([`PeerTarget`]: a list of URLs, a name
//!   with several addresses, `dns:///host:port`), resolved again every few
//!   seconds; each address is an endpoint with its own connection;
//! - each call goes to the less busy of two endpoints picked at random
//!   among those that serve (calls in flight as the load); an endpoint's
//!   `grpc.health.v1` Watch takes it out of rotation the moment it says
//!   NOT_SERVING (draining) or its connection breaks, and a call that fails
//!   to connect or is answered `unavailable` has it checked before it is
//!   used again;
//! - the caller's remaining deadline bounds each attempt (else a default
//!   per-call timeout), and the attempt is told its budget so it can send it
//!   on (`grpc-timeout`);
//! - retries with exponential backoff and jitter, on another endpoint when
//!   there is one: on `unavailable` or `resource_exhausted` when the call is
//!   safe to repeat (an idempotent method, or a call carrying an
//!   idempotency key), and always when the request never left (no
//!   connection could be made);
//! - a circuit breaker per endpoint that counts infrastructure failures
//!   only (unavailable, deadline_exceeded, internal, unknown, data_loss),
//!   never business errors: open, that endpoint fails fast; after the
//!   cool-down one probe call is let through, and its outcome closes or
//!   reopens it. One dead replica never opens its healthy sibling's;
//! - a bulkhead per peer: at most so many calls in flight, the rest shed
//!   with `resource_exhausted`;
//! - metrics per peer (calls by code, retries, sheds, breaker) and per
//!   endpoint (calls, serving, ejections).
//!
//! [`translate`] turns a downstream's error into what is true for this
//! service's caller.

mod backoff;
mod balance;
mod breaker;
mod channel;
mod endpoint;
mod resolve;
mod target;
mod translate;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use tokio::{sync::Semaphore, time::Instant};
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::{Code, Status};

pub use backoff::Backoff;
use balance::{Balancer, BreakerPolicy, Pick};
pub use channel::Channel;
use endpoint::{ChannelSettings, PROBE_TIMEOUT};
pub use target::{BadTarget, PeerTarget};
pub use translate::translate;

/// How often a peer's names are looked up again.
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// How one downstream is called.
#[derive(Clone, Debug)]
pub struct DownstreamPolicy {
    /// A call's time budget, all attempts together, when the caller set
    /// no deadline.
    pub timeout: Duration,
    /// Attempts of a call safe to repeat, the first included.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Consecutive infrastructure failures that open an endpoint's breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker fails fast before letting a probe through.
    pub breaker_cooldown: Duration,
    /// Calls in flight at most, all endpoints together; more are shed.
    pub max_in_flight: usize,
    /// How long making a connection to an endpoint may take.
    pub connect_timeout: Duration,
    /// How long starting up waits for the peer's names to resolve.
    pub resolve_patience: Duration,
}

impl Default for DownstreamPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            max_attempts: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            breaker_threshold: 5,
            // A blip is over within a second or so: probe that soon.
            breaker_cooldown: Duration::from_secs(1),
            max_in_flight: 64,
            connect_timeout: Duration::from_secs(1),
            resolve_patience: Duration::from_secs(30),
        }
    }
}

/// Whether a call may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// An idempotent method, or a call carrying an idempotency key.
    Safe,
    /// Anything else: sent again only if it never left.
    Never,
}

/// Codes that say the downstream (or the way to it) is in trouble, not
/// that the request was wrong.
pub fn is_infrastructure_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss
    )
}

fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// Whether the request never left this process: no connection could be
/// made to the endpoint (refused, unreachable, timed out connecting).
fn never_left(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Whether the call failed in the connection rather than with an answer:
/// no gRPC status came back, the transport broke (reset, broken pipe).
/// tonic calls that `unknown`; for this stack, as for gRPC's spec, the
/// endpoint is unavailable (the call may or may not have run).
fn connection_broke(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::transport::Error>()
            || error.is::<hyper::Error>()
            || error.is::<std::io::Error>()
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// Marks the answer to a call that was never sent.
const NOT_SENT: &str = "x-shop-not-sent";

/// A failure without a call: every endpoint out of rotation, or the
/// bulkhead full.
fn not_sent(code: Code, message: String) -> Status {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(NOT_SENT, tonic::metadata::MetadataValue::from_static("1"));
    Status::with_metadata(code, message, metadata)
}

/// Whether a call failed without being sent to the downstream (no endpoint
/// serving or every breaker open, too many calls in flight): a caller that
/// counts attempts (or gives up after some) should not count it.
pub fn was_not_sent(status: &Status) -> bool {
    status.metadata().contains_key(NOT_SENT)
}

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

/// One downstream service, as seen by this one.
#[derive(Clone, Debug)]
pub struct Downstream {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    policy: DownstreamPolicy,
    backoff: Backoff,
    in_flight: Arc<Semaphore>,
    metrics: Metrics,
    balancer: Balancer,
    stop: CancellationToken,
    /// Stops the endpoints' health watches and the re-resolution when the
    /// last handle goes.
    _stop: DropGuard,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("name", &self.name)
            .field("endpoints", &self.balancer.describe())
            .finish_non_exhaustive()
    }
}

/// One downstream's metric handles, looked up once: calls by code (the 17
/// gRPC codes, then "circuit_open"), sheds, retries.
#[derive(Debug)]
struct Metrics {
    calls: Vec<metrics::Counter>,
    shed: metrics::Counter,
    retries: metrics::Counter,
}

/// The label of calls failed fast with no endpoint to take them.
const CIRCUIT_OPEN: usize = 17;

impl Metrics {
    fn new(downstream: &str) -> Self {
        crate::observe::telemetry::prometheus();
        let calls = (0..=16)
            .map(crate::rpc::connect_errors::code_name)
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
        }
    }

    fn call(&self, code: Code) {
        if let Some(counter) = self.calls.get(code as usize) {
            counter.increment(1);
        }
    }
}

impl Downstream {
    /// The peer `name` at `target`: resolves its addresses (waiting up to
    /// `policy.resolve_patience` for a name to resolve at all), watches
    /// each endpoint's health, and looks names up again every few seconds
    /// (keeping the last addresses found if a lookup fails).
    pub async fn connect(
        name: &str,
        target: &PeerTarget,
        policy: DownstreamPolicy,
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
        let downstream =
            Self::with_addresses(name, &first.addresses, policy, target.tls().cloned());
        if !target.is_static() {
            tokio::spawn(re_resolve(
                Arc::downgrade(&downstream.inner),
                target.clone(),
                downstream.inner.stop.clone(),
            ));
        }
        Ok(downstream)
    }

    /// The peer at one address, over plain HTTP/2 (tests, tools).
    pub fn at(name: &str, addr: SocketAddr, policy: DownstreamPolicy) -> Self {
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
        policy: DownstreamPolicy,
        tls: Option<crate::tls::ClientTls>,
    ) -> Self {
        let stop = CancellationToken::new();
        let balancer = Balancer::new(
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
        balancer.update(addresses);
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                backoff: Backoff::new(policy.first_backoff, policy.max_backoff),
                in_flight: Arc::new(Semaphore::new(policy.max_in_flight)),
                policy,
                metrics: Metrics::new(name),
                balancer,
                stop: stop.clone(),
                _stop: stop.drop_guard(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn policy(&self) -> &DownstreamPolicy {
        &self.inner.policy
    }

    /// Each endpoint's address, health (`serving`, `probing`,
    /// `not_serving`, `down`) and calls in flight.
    pub fn endpoints(&self) -> Vec<(SocketAddr, &'static str, usize)> {
        self.inner.balancer.describe()
    }

    /// Whether every endpoint's breaker is open (calls fail fast).
    pub fn is_open(&self) -> bool {
        self.inner.balancer.all_open()
    }

    /// Calls the downstream through the stack. `attempt` makes one attempt
    /// on the channel of the endpoint picked for it, within the time
    /// budget it is given (and should send it on, e.g. with
    /// `tonic::Request::set_timeout`); `deadline` is the caller's, if any.
    pub async fn call<T, F, Fut>(
        &self,
        retry: Retry,
        deadline: Option<Instant>,
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let name = &self.inner.name;
        let policy = &self.inner.policy;
        let counted = &self.inner.metrics;
        let Ok(_permit) = self.inner.in_flight.clone().try_acquire_owned() else {
            counted.shed.increment(1);
            return Err(not_sent(
                Code::ResourceExhausted,
                format!("too many calls to the {name} service in flight"),
            ));
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + policy.timeout);
        let mut attempts = 0;
        let mut failed_on = None;
        loop {
            attempts += 1;
            let call = match self.endpoint(failed_on, deadline).await {
                Ok(call) => call,
                Err(refused) => {
                    counted.calls[CIRCUIT_OPEN].increment(1);
                    return Err(refused);
                }
            };
            let endpoint = call.endpoint().clone();
            endpoint.calls.increment(1);
            let budget = deadline.saturating_duration_since(Instant::now());
            let result = if budget.is_zero() {
                Err(Status::deadline_exceeded(format!(
                    "no time left to call the {name} service"
                )))
            } else {
                let started = Instant::now();
                let late = || {
                    Status::deadline_exceeded(format!("the {name} service did not answer in time"))
                };
                let channel = Channel::new(endpoint.channel(), endpoint.addr());
                match tokio::time::timeout(budget, attempt(channel, budget)).await {
                    Err(_elapsed) => Err(late()),
                    // tonic's own client timeout (from `set_timeout`) says
                    // `cancelled`; it is this deadline all the same.
                    Ok(Err(status))
                        if status.code() == Code::Cancelled
                            && started.elapsed() + Duration::from_millis(5) >= budget =>
                    {
                        Err(late())
                    }
                    Ok(answer) => answer,
                }
            };
            drop(call);
            let result = result.map_err(|status| {
                if matches!(status.code(), Code::Unknown | Code::Internal)
                    && connection_broke(&status)
                {
                    Status::unavailable(format!(
                        "the connection to the {name} service broke: {}",
                        status.message()
                    ))
                } else {
                    status
                }
            });
            let code = result.as_ref().err().map_or(Code::Ok, Status::code);
            counted.call(code);
            endpoint.record(result.as_ref().map(|_| ()));
            match result {
                Err(status)
                    if attempts < policy.max_attempts
                        && ((retry == Retry::Safe && is_retryable(status.code()))
                            || never_left(&status)) =>
                {
                    failed_on = Some(endpoint.addr());
                    let pause = self.inner.backoff.jittered(attempts);
                    if Instant::now() + pause >= deadline {
                        return Err(status);
                    }
                    counted.retries.increment(1);
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// The endpoint for the next attempt, not `failed_on` if another
    /// serves; waits (within the deadline) while one is being checked.
    async fn endpoint(
        &self,
        failed_on: Option<SocketAddr>,
        deadline: Instant,
    ) -> Result<endpoint::InFlight, Status> {
        let name = &self.inner.name;
        let balancer = &self.inner.balancer;
        loop {
            let changed = balancer.changed();
            match balancer.pick(failed_on) {
                Pick::Ready(call) => return Ok(call),
                Pick::None { open: true, .. } => {
                    return Err(not_sent(
                        Code::Unavailable,
                        format!("the {name} service is failing; not called (circuit open)"),
                    ));
                }
                Pick::None { known, .. } => {
                    return Err(not_sent(
                        Code::Unavailable,
                        format!("no {name} endpoint is serving ({known} known); not called"),
                    ));
                }
                Pick::Wait => {
                    let patience = deadline.min(Instant::now() + PROBE_TIMEOUT);
                    if tokio::time::timeout_at(patience, changed).await.is_err() {
                        return Err(not_sent(
                            Code::Unavailable,
                            format!("no {name} endpoint answered its health check in time"),
                        ));
                    }
                }
            }
        }
    }
}

/// A plain HTTP GET of `path` on an endpoint's channel (e.g. a JWK set):
/// the body of a 2xx answer; otherwise the status a gRPC client would see
/// (`unavailable` for 502, 503, 504 and a broken connection).
pub async fn get(channel: Channel, path: &str) -> Result<bytes::Bytes, Status> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = http::Request::get(format!("http://peer{path}"))
        .body(tonic::body::Body::empty())
        .map_err(|e| Status::internal(e.to_string()))?;
    let response = channel
        .oneshot(request)
        .await
        .map_err(|e| Status::from_error(Box::new(e)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?
        .to_bytes();
    match status.as_u16() {
        200..=299 => Ok(body),
        404 => Err(Status::not_found(format!("{path}: HTTP 404"))),
        502..=504 => Err(Status::unavailable(format!("{path}: HTTP {status}"))),
        _ => Err(Status::internal(format!("{path}: HTTP {status}"))),
    }
}

/// Looks the target's names up again every [`RESOLVE_EVERY`] while the
/// downstream lives; a failed lookup keeps the endpoints known.
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
        inner.balancer.update(&found.addresses);
    }
}

#[cfg(test)]
mod tests;
