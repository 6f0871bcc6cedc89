//! Enforces gRPC and gRPC-Web deadlines (`grpc-timeout`), which tonic's
//! router does not: the response must start before the deadline, and a
//! stream still open at the deadline ends with DEADLINE_EXCEEDED trailers.
//! (Connect's `connect-timeout-ms` is enforced by connectrpc-axum.)

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep, Timeout};
use tower::{Layer, Service};

use super::{
    classify::Call,
    protocol::{GRPC_MESSAGE, GRPC_STATUS},
};

pub use super::timeout::{BadTimeout, CONNECT_TIMEOUT_MS, parse_connect_timeout};
pub use shop_kit_wire::{Deadline, grpc_timeout_value, parse_grpc_timeout};

fn grpc_deadline(headers: &HeaderMap) -> Option<Instant> {
    let value = headers.get(&super::protocol::GRPC_TIMEOUT)?.to_str().ok()?;
    parse_grpc_timeout(value).map(|timeout| Instant::now() + timeout)
}

const DEADLINE_MESSAGE: &str = "deadline exceeded";

/// The trailers-only answer to a call whose deadline passed before its
/// response started.
fn deadline_exceeded_response<B>() -> Response<DeadlineBody<B>> {
    let (parts, ()) = tonic::Status::deadline_exceeded(DEADLINE_MESSAGE)
        .into_http::<()>()
        .into_parts();
    Response::from_parts(parts, DeadlineBody::Ended)
}

/// Tower layer enforcing `grpc-timeout`; wraps the gRPC side of the server
/// inside the gRPC-Web translation, so both protocols get it.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcDeadlineLayer;

impl<S> Layer<S> for GrpcDeadlineLayer {
    type Service = GrpcDeadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcDeadline { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcDeadline<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcDeadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<DeadlineBody<ResBody>>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Read once, when the server classified the call (its cap applied);
        // a call that reached this stack another way, from its header.
        let deadline = match request.extensions().get::<Call>() {
            Some(call) => call.deadline,
            None => grpc_deadline(request.headers()),
        };
        let Some(deadline) = deadline else {
            return DeadlineFuture::Open {
                inner: self.inner.call(request),
            };
        };
        if deadline <= Instant::now() {
            return DeadlineFuture::Passed;
        }
        DeadlineFuture::Timed {
            inner: tokio::time::timeout_at(deadline, self.inner.call(request)),
            deadline,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of a call with no deadline, with one, or whose deadline
    /// had passed on arrival (not boxed: it is on every gRPC call's path).
    #[project = DeadlineFutureProj]
    pub enum DeadlineFuture<F> {
        Open { #[pin] inner: F },
        Timed { #[pin] inner: Timeout<F>, deadline: Instant },
        Passed,
    }
}

impl<F, B, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<DeadlineBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DeadlineFutureProj::Open { inner } => {
                let response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(
                    response.map(|inner| DeadlineBody::Answer { inner, sleep: None })
                ))
            }
            DeadlineFutureProj::Timed { inner, deadline } => match ready!(inner.poll(cx)) {
                Err(_elapsed) => Poll::Ready(Ok(deadline_exceeded_response())),
                Ok(response) => Poll::Ready(Ok(response?.map(|inner| DeadlineBody::Answer {
                    inner,
                    sleep: Some(Box::pin(tokio::time::sleep_until(*deadline))),
                }))),
            },
            DeadlineFutureProj::Passed => Poll::Ready(Ok(deadline_exceeded_response())),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends with DEADLINE_EXCEEDED trailers if it is
    /// still streaming when the deadline (if any) passes.
    #[project = DeadlineBodyProj]
    pub enum DeadlineBody<B> {
        /// The handler's answer.
        Answer { #[pin] inner: B, sleep: Option<Pin<Box<Sleep>>> },
        /// Nothing more: a trailers-only answer, or a stream cut at its
        /// deadline (the handler's stream dropped).
        Ended,
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.as_mut().project() {
            DeadlineBodyProj::Ended => return Poll::Ready(None),
            DeadlineBodyProj::Answer { inner, sleep } => {
                if let Poll::Ready(frame) = inner.poll_frame(cx) {
                    return Poll::Ready(frame);
                }
                let passed = sleep
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if !passed {
                    return Poll::Pending;
                }
            }
        }
        self.set(Self::Ended);
        let mut trailers = HeaderMap::new();
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("4"));
        trailers.insert(GRPC_MESSAGE, HeaderValue::from_static(DEADLINE_MESSAGE));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Answer { inner, .. } => inner.is_end_stream(),
            Self::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Answer { inner, .. } => inner.size_hint(),
            Self::Ended => SizeHint::with_exact(0),
        }
    }
}
