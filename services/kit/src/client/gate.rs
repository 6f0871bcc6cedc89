//! The door of a peer's stack: a call with nowhere to go fails at once,
//! marked not sent (every endpoint down, draining or failing fast: no
//! call waits for its deadline in a queue), waits a moment while an
//! endpoint is being asked whether it serves, and otherwise goes in, its
//! request body read whole first (within the peer's size limit) so that a
//! retry can send it again: an RPC's request is one message, and the
//! shop's peers take no request streams. What comes back as an error
//! becomes the status the caller reads: a call shed by the bulkhead is
//! `resource_exhausted` (not sent), a broken way to the peer
//! `unavailable`.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;
use tonic::Code;
use tower::{Service, ServiceExt, load_shed::error::Overloaded};

use super::{
    deadline::Deadline,
    endpoint::PROBE_TIMEOUT,
    endpoints::{Availability, Shared},
    status::{BoxError, Response, answer, not_sent, transport_failure},
};

#[derive(Clone)]
pub(super) struct Gate<S> {
    inner: S,
    shared: Arc<Shared>,
    max_request_bytes: usize,
}

impl<S> Gate<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>, max_request_bytes: usize) -> Self {
        Self {
            inner,
            shared,
            max_request_bytes,
        }
    }
}

impl<S> Service<http::Request<tonic::body::Body>> for Gate<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        let max_bytes = self.max_request_bytes;
        Box::pin(async move {
            let deadline = request.extensions().get::<Deadline>().copied();
            if let Err(refused) = admitted(&shared, deadline).await {
                return Ok(refused);
            }
            let (head, body) = request.into_parts();
            let body = match Limited::new(body, max_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    return Ok(answer(not_sent(
                        Code::Internal,
                        format!("the request could not be read to be sent: {error}"),
                    )));
                }
            };
            match inner.oneshot(http::Request::from_parts(head, body)).await {
                Ok(response) => Ok(response),
                Err(error) if error.is::<Overloaded>() => {
                    shared.metrics.shed.increment(1);
                    Ok(answer(not_sent(
                        Code::ResourceExhausted,
                        format!(
                            "too many calls to the {} service in flight",
                            shared.downstream
                        ),
                    )))
                }
                Err(error) => Ok(answer(transport_failure(&shared.downstream, &error))),
            }
        })
    }
}

/// Whether a call may go in: at once if an endpoint may take it; after a
/// moment (within `deadline`) if one is being asked; else the refusal.
async fn admitted(shared: &Shared, deadline: Option<Deadline>) -> Result<(), Response> {
    let name = &shared.downstream;
    let most = Instant::now() + PROBE_TIMEOUT;
    let patience = deadline.map_or(most, |deadline| deadline.0.min(most));
    loop {
        let changed = shared.changed();
        match shared.availability(Instant::now()) {
            Availability::Ready => return Ok(()),
            Availability::Open => {
                shared.metrics.circuit_open();
                return Err(answer(not_sent(
                    Code::Unavailable,
                    format!("the {name} service is failing; not called (circuit open)"),
                )));
            }
            Availability::None { known } => {
                shared.metrics.circuit_open();
                return Err(answer(not_sent(
                    Code::Unavailable,
                    format!("no {name} endpoint is serving ({known} known); not called"),
                )));
            }
            Availability::Probing => {
                if tokio::time::timeout_at(patience, changed).await.is_err() {
                    shared.metrics.circuit_open();
                    return Err(answer(not_sent(
                        Code::Unavailable,
                        format!("no {name} endpoint answered its health check in time"),
                    )));
                }
            }
        }
    }
}
