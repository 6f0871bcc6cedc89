//! A call's deadline, as a layer: the caller's (`grpc-timeout`, which
//! `tonic::Request::set_timeout` sets, else what is left of the deadline of
//! the call being served or the work being done: `shop_kit_wire::context`)
//! or its method's timeout, whichever is sooner (gRPC's rule), else the
//! peer's default budget. A call with no time left is refused before it is
//! sent. It is put on
//! the request with how the method is called (every layer below reads
//! them; every attempt sends what is left on as its own `grpc-timeout`
//! when it goes out), and a call still unanswered at it is answered
//! `deadline_exceeded`.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use shop_kit_wire::{Deadline, GRPC_TIMEOUT, context::CallContext, parse_grpc_timeout};
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::{
    Calls,
    status::{BoxError, Response, answer, head_code, not_sent},
};

/// How close to the deadline a cut call counts as past it.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// Sets and keeps each call's deadline.
#[derive(Clone, Debug)]
pub(super) struct DeadlineLayer {
    pub(super) default: Duration,
    pub(super) calls: Calls,
    /// The peer's name, for the answer.
    pub(super) peer: Arc<str>,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadlined<S>;

    fn layer(&self, inner: S) -> Deadlined<S> {
        Deadlined {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Deadlined<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, B> Service<http::Request<B>> for Deadlined<S>
where
    S: Service<http::Request<B>, Response = Response, Error = BoxError>,
{
    type Response = Response;
    type Error = BoxError;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let calls = self.layer.calls.current().of(request.uri().path());
        let now = Instant::now();
        let asked = request
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .or_else(|| CallContext::deadline().map(|at| at.saturating_duration_since(now)));
        if asked == Some(Duration::ZERO) {
            // Its caller's time is up: a call sent now could only be late.
            return DeadlineFuture::Refused {
                peer: self.layer.peer.clone(),
            };
        }
        let budget = match (asked, calls.timeout) {
            (Some(asked), Some(most)) => asked.min(most),
            (asked, most) => asked.or(most).unwrap_or(self.layer.default),
        };
        let deadline = Deadline(now + budget);
        // Each attempt sends on what is left of it (see `channel`).
        request.extensions_mut().insert(deadline);
        request.extensions_mut().insert(calls);
        DeadlineFuture::Sent {
            inner: self.inner.call(request),
            expires: Box::pin(tokio::time::sleep_until(deadline.0)),
            peer: self.layer.peer.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call's answer, or `deadline_exceeded` at its deadline.
    #[project = Projected]
    pub(super) enum DeadlineFuture<F> {
        Sent {
            #[pin]
            inner: F,
            expires: Pin<Box<Sleep>>,
            peer: Arc<str>,
        },
        /// Not sent: no time was left.
        Refused { peer: Arc<str> },
    }
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, BoxError>>,
{
    type Output = Result<Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut inner, expires, peer) = match self.project() {
            Projected::Sent {
                inner,
                expires,
                peer,
            } => (inner, expires, peer),
            Projected::Refused { peer } => {
                return Poll::Ready(Ok(answer(not_sent(
                    Code::DeadlineExceeded,
                    format!("no time was left to call the {peer} service: not sent"),
                ))));
            }
        };
        let late = || {
            Poll::Ready(Ok(answer(Status::deadline_exceeded(format!(
                "the {peer} service did not answer in time"
            )))))
        };
        if expires.as_mut().poll(cx).is_ready() {
            return late();
        }
        match inner.as_mut().poll(cx) {
            // The peer, which keeps the same deadline, cut the call as the
            // deadline came (a reset stream, `cancelled`): too late all the
            // same, whichever timer fired first.
            Poll::Ready(Ok(response))
                if Instant::now() + DEADLINE_SLACK >= expires.deadline()
                    && matches!(
                        head_code(response.status(), response.headers()),
                        Some(Code::Unavailable | Code::Cancelled)
                    ) =>
            {
                late()
            }
            polled => polled,
        }
    }
}
