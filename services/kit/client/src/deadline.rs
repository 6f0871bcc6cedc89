//! A call's deadline, as a layer: the caller's (`grpc-timeout`, which
//! `tonic::Request::set_timeout` sets, else what is left of the deadline of
//! the call being served or the work being done: `shop_kit_wire::context`)
//! or its method's timeout, whichever is sooner (gRPC's rule), else the
//! peer's default budget (kept here, but not sent: see [`Unsent`]). A call
//! with no time left is refused before it is sent. It is put on the
//! request with how the method is called (every layer below reads them;
//! every attempt sends what is left on as its own `grpc-timeout` when it
//! goes out), and a call still unanswered at it is answered
//! `deadline_exceeded`, as is an answer still coming (its body ends so).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use shop_kit_wire::{Deadline, GRPC_TIMEOUT, context::CallContext, parse_grpc_timeout};
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::{
    Calls,
    status::{BoxError, Response, answer, head_code, not_sent, trailers, trailers_code},
};

/// How close to the deadline a cut call counts as past it.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// On a call whose deadline is only the peer's default budget: kept here,
/// not sent as `grpc-timeout`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unsent;

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
        let (budget, chosen) = match (asked, calls.timeout) {
            (Some(asked), Some(most)) => (asked.min(most), true),
            (None, None) => (self.layer.default, false),
            (asked, most) => (asked.or(most).unwrap_or(self.layer.default), true),
        };
        let deadline = Deadline(now + budget);
        // Each attempt sends on what is left of it (see `channel`), if the
        // caller or the method chose it: the peer's default is this
        // client's own limit on waiting, and a call with no deadline sends
        // none (gRPC's rule).
        request.extensions_mut().insert(deadline);
        if !chosen {
            request.extensions_mut().insert(Unsent);
        }
        request.extensions_mut().insert(calls);
        DeadlineFuture::Sent {
            inner: self.inner.call(request),
            expires: Some(Box::pin(tokio::time::sleep_until(deadline.0))),
            peer: self.layer.peer.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call's answer, or `deadline_exceeded` at its deadline; its body
    /// held to the same deadline.
    #[project = Projected]
    pub(super) enum DeadlineFuture<F> {
        Sent {
            #[pin]
            inner: F,
            expires: Option<Pin<Box<Sleep>>>,
            peer: Arc<str>,
        },
        /// Not sent: no time was left.
        Refused { peer: Arc<str> },
    }
}

/// Whether an answer that ended with `code` at `now` came too late: the
/// peer, which keeps the same deadline, cut the call as it came (a reset
/// stream, `cancelled`), whichever timer fired first.
fn cut_at_deadline(code: Option<Code>, now: Instant, deadline: Instant) -> bool {
    now + DEADLINE_SLACK >= deadline && matches!(code, Some(Code::Unavailable | Code::Cancelled))
}

fn late(peer: &str) -> Status {
    Status::deadline_exceeded(format!("the {peer} service did not answer in time"))
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
        let Some(timer) = expires.as_mut() else {
            return Poll::Pending;
        };
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(answer(late(peer))));
        }
        let response = match inner.as_mut().poll(cx) {
            Poll::Ready(Ok(response)) => response,
            polled => return polled,
        };
        let code = head_code(response.status(), response.headers());
        if cut_at_deadline(code, Instant::now(), timer.deadline()) {
            return Poll::Ready(Ok(answer(late(peer))));
        }
        if code.is_some() {
            // Trailers-only: whole already.
            return Poll::Ready(Ok(response));
        }
        let Some(expires) = expires.take() else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(response.map(|body| {
            tonic::body::Body::new(DeadlineBody {
                inner: Some(body),
                expires,
                peer: peer.clone(),
            })
        })))
    }
}

/// An answer's body, ended with `deadline_exceeded` at the call's deadline
/// (the stream then reset): a stream that stalls, or a message that comes
/// late, is not waited for past it.
struct DeadlineBody {
    /// `None` once ended at the deadline.
    inner: Option<tonic::body::Body>,
    expires: Pin<Box<Sleep>>,
    peer: Arc<str>,
}

impl DeadlineBody {
    fn late(&mut self) -> Frame<Bytes> {
        self.inner = None;
        Frame::trailers(trailers(&late(&self.peer)))
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Ok(this.late())));
        }
        let polled = Pin::new(inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(trailers_code),
            _ => None,
        };
        // A stream broken (or cut with `cancelled`) at the deadline.
        let broken = matches!(polled, Poll::Ready(Some(Err(_))));
        if (broken || code.is_some())
            && cut_at_deadline(
                if broken { Some(Code::Cancelled) } else { code },
                Instant::now(),
                this.expires.deadline(),
            )
        {
            return Poll::Ready(Some(Ok(this.late())));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}
