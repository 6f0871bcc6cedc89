//! The services orders calls, over gRPC, as itself: a service token from
//! the users service on every saga call, a timeout per call, each peer through the kit's client stack (every
//! replica of it, balanced by load). Their answers are translated at this
//! boundary into saga outcomes (or, for pricing, into orders errors); the
//! peers' own messages never reach a customer unfiltered.

mod catalog;
mod payments;
mod service_token;

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use shop_kit::client::{Channel, Downstream, DownstreamPolicy, PeerError, PeerTarget, Retry};

pub use catalog::Catalog;
pub use payments::Payments;
pub use service_token::ServiceToken;

use crate::domain::saga::Outcome;

/// Where the peers are (each one address or many), and how orders proves
/// it is orders.
#[derive(Clone, Debug)]
pub struct Peers {
    pub users: PeerTarget,
    pub catalog: PeerTarget,
    pub payments: PeerTarget,
    /// SHOP_SERVICE_SECRET, traded for service tokens. Never printed.
    pub service_secret: secrecy::SecretString,
}

/// The peers, connected: the catalog and payments as the saga and pricing
/// call them, each presenting orders' service token.
#[derive(Clone, Debug)]
pub struct Connected {
    pub catalog: Catalog,
    pub payments: Payments,
}

impl Peers {
    /// Resolves every peer (waiting a while for names that do not resolve
    /// yet) and starts watching their endpoints; every call is bounded by
    /// `timeout`.
    pub async fn connect(&self, timeout: Duration) -> Result<Connected, PeerError> {
        let (users, catalog, payments) = tokio::try_join!(
            downstream("users", &self.users, timeout),
            downstream("catalog", &self.catalog, timeout),
            downstream("payments", &self.payments, timeout),
        )?;
        let token = Arc::new(ServiceToken::new(users, self.service_secret.clone()));
        Ok(Connected {
            catalog: Catalog::new(catalog, token.clone()),
            payments: Payments::new(payments, token),
        })
    }
}

/// The client stack for one peer (its replicas balanced by load, deadlines,
/// retries when safe, a breaker per replica, bulkhead), each call bounded
/// by `timeout`.
async fn downstream(
    name: &str,
    target: &PeerTarget,
    timeout: Duration,
) -> Result<Downstream, PeerError> {
    Downstream::connect(
        name,
        target,
        DownstreamPolicy {
            timeout,
            ..DownstreamPolicy::default()
        },
    )
    .await
}

/// One saga step's call to a peer: as orders (a service token), through the peer's client stack, repeated when
/// it fails transiently (every step is keyed by the order, so a repeat is
/// harmless), all within ONE budget: the peer's call timeout, which bounds
/// getting a token and every attempt together. `Err` is the outcome when
/// no service token could be had.
async fn step_call<M, R, F, Fut>(
    token: &ServiceToken,
    downstream: &Downstream,
    message: M,
    send: F,
) -> Result<Result<tonic::Response<R>, tonic::Status>, Outcome>
where
    M: Clone,
    F: Fn(Channel, tonic::Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let deadline = Instant::now() + downstream.policy().timeout;
    call_as_orders(token, downstream, message, deadline, send)
        .await
        .map_err(|status| unavailable("users", &status))
}

/// A call to a peer as orders (a service token), through the peer's client stack (retried when safe), getting the token
/// and every attempt within `deadline`. `Err` is why no token could be had.
async fn call_as_orders<M, R, F, Fut>(
    token: &ServiceToken,
    downstream: &Downstream,
    message: M,
    deadline: Instant,
    send: F,
) -> Result<Result<tonic::Response<R>, tonic::Status>, tonic::Status>
where
    M: Clone,
    F: Fn(Channel, tonic::Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let bearer = token.bearer(Some(deadline)).await?;
    Ok(downstream
        .call(Retry::Safe, Some(deadline), |channel, budget| {
            send(channel, request(message.clone(), &bearer, budget))
        })
        .await)
}

/// A request carrying the service token and the attempt's time budget (as
/// `grpc-timeout`); the client stack adds the trace context.
fn request<T>(message: T, bearer: &str, budget: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(budget);
    let metadata = request.metadata_mut();
    if let Ok(value) = format!("Bearer {bearer}").parse() {
        metadata.insert("authorization", value);
    }
    request
}

/// An answer that says nothing for good: the peer (or the way to it) may
/// do better later. Logged here; the customer hears only which service. A
/// call the client stack did not even send (the peer's breaker open, too
/// many calls in flight) is no attempt.
fn unavailable(peer: &str, status: &tonic::Status) -> Outcome {
    if shop_kit::client::was_not_sent(status) {
        tracing::debug!(peer, message = status.message(), "peer call not sent");
        return Outcome::NotSent(format!("{peer} service"));
    }
    tracing::warn!(peer, code = ?status.code(), message = status.message(), "peer call failed");
    Outcome::Unavailable(format!("{peer} service"))
}
