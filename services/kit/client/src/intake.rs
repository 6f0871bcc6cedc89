//! The intake of a peer's stack: a call with nowhere to go fails at once,
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
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;
use tonic::Code;
use tower::{Service, ServiceExt, load_shed::error::Overloaded};

use super::{
    Deadline,
    connection::transport_failure,
    endpoint::PROBE_TIMEOUT,
    endpoints::{Availability, Shared},
    status::{BoxError, Response, answer, not_sent},
};

#[derive(Clone)]
pub(super) struct Intake<S> {
    inner: S,
    shared: Arc<Shared>,
    max_request_bytes: usize,
}

impl<S> Intake<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>, max_request_bytes: usize) -> Self {
        Self {
            inner,
            shared,
            max_request_bytes,
        }
    }
}

impl<S> Service<http::Request<tonic::body::Body>> for Intake<S>
where
    S: Service<http::Request<Bytes>, Response = Response, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = BoxError;
    type Future = IntakeFuture<S::Future>;

    /// The bulkhead below is ready at once (it sheds what it cannot take).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let shared = self.shared.clone();
        let (head, body) = request.into_parts();
        let mut body = Limited::new(body, self.max_request_bytes).collect();
        // The usual case costs no task of its own: an endpoint takes calls
        // and the message is encoded already (a unary call's is).
        if shared.availability(Instant::now()) == Availability::Ready {
            match Pin::new(&mut body).poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(collected)) => {
                    let request = http::Request::from_parts(head, collected.to_bytes());
                    return IntakeFuture::Sent {
                        inner: self.inner.call(request),
                        shared,
                    };
                }
                Poll::Ready(Err(error)) => return IntakeFuture::answered(unreadable(&*error)),
                Poll::Pending => {}
            }
        }
        // Else wait for what is missing, with the stack made ready.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        IntakeFuture::Waiting {
            future: Box::pin(async move {
                let deadline = head.extensions.get::<Deadline>().copied();
                if let Err(refused) = admitted(&shared, deadline).await {
                    return Ok(refused);
                }
                let body = match body.await {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) => return Ok(unreadable(&*error)),
                };
                let sent = inner.oneshot(http::Request::from_parts(head, body)).await;
                Ok(answer_of(&shared, sent))
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call through the intake: sent (its answer, or the status a failure
    /// to send stands for), waiting to be, or answered at the intake.
    #[project = GateProjection]
    pub(super) enum IntakeFuture<F> {
        Sent { #[pin] inner: F, shared: Arc<Shared> },
        Waiting { future: BoxFuture<'static, Result<Response, BoxError>> },
        Answered { answer: Option<Response> },
    }
}

impl<F> IntakeFuture<F> {
    fn answered(answer: Response) -> Self {
        Self::Answered {
            answer: Some(answer),
        }
    }
}

impl<F> Future for IntakeFuture<F>
where
    F: Future<Output = Result<Response, BoxError>>,
{
    type Output = Result<Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProjection::Sent { inner, shared } => {
                inner.poll(cx).map(|sent| Ok(answer_of(shared, sent)))
            }
            GateProjection::Waiting { future } => future.as_mut().poll(cx),
            GateProjection::Answered { answer } => match answer.take() {
                Some(answer) => Poll::Ready(Ok(answer)),
                None => Poll::Pending,
            },
        }
    }
}

/// What the caller reads of a call sent into the stack: its answer, or a
/// failure to send as a status (shed: `resource_exhausted`, not sent).
fn answer_of(shared: &Shared, sent: Result<Response, BoxError>) -> Response {
    match sent {
        Ok(response) => response,
        Err(error) if error.is::<Overloaded>() => {
            shared.metrics.shed.increment(1);
            answer(not_sent(
                Code::ResourceExhausted,
                format!(
                    "too many calls to the {} service in flight",
                    shared.downstream
                ),
            ))
        }
        Err(error) => answer(transport_failure(&shared.downstream, &error)),
    }
}

fn unreadable(error: &(dyn std::error::Error + Send + Sync)) -> Response {
    answer(not_sent(
        Code::Internal,
        format!("the request could not be read to be sent: {error}"),
    ))
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
