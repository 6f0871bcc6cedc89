//! Corrects gRPC statuses on their way out, in headers (trailers-only) and
//! trailers alike (so gRPC-Web's trailer frame too):
//!
//! - an oversize request is RESOURCE_EXHAUSTED, as the gRPC spec and
//!   connect-go say; tonic enforces `max_decoding_message_size` but answers
//!   OUT_OF_RANGE;
//! - `grpc-message` is cut to a few hundred bytes, so no error echoes a
//!   caller's megabyte back.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::{
    connect_errors::{bound_message, grpc_message},
    protocol::{GRPC_MESSAGE, GRPC_STATUS},
};

/// The start of tonic's message for a request over the size limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
const OK: &str = "0";
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

fn rewrite(headers: &mut HeaderMap) {
    // Only a failure's status needs correcting: the headers of a call that
    // goes on to stream carry none, and a success's trailers carry OK; both
    // checks end at one lookup.
    let Some(status) = headers.get(GRPC_STATUS).filter(|status| *status != OK) else {
        return;
    };
    let message = grpc_message(headers);
    if status == OUT_OF_RANGE
        && message
            .as_deref()
            .is_some_and(|m| m.starts_with(TONIC_TOO_LARGE))
    {
        headers.insert(GRPC_STATUS, HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    if let Some(short) = message.as_deref().and_then(bound_message) {
        let encoded =
            percent_encoding::utf8_percent_encode(&short, GRPC_MESSAGE_ESCAPED).to_string();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert(GRPC_MESSAGE, value);
        }
    }
}

/// What gRPC percent-encodes in `grpc-message`: all but printable ASCII,
/// and '%' itself.
const GRPC_MESSAGE_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcLimitStatusLayer;

impl<S> Layer<S> for GrpcLimitStatusLayer {
    type Service = GrpcLimitStatus<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcLimitStatus { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcLimitStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcLimitStatus<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<LimitStatusBody<ResBody>>;
    type Error = S::Error;
    type Future = LimitStatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        LimitStatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer's headers corrected as they arrive (not boxed: it is on
    /// every gRPC call's path).
    pub struct LimitStatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for LimitStatusFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<LimitStatusBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        rewrite(response.headers_mut());
        Poll::Ready(Ok(response.map(|inner| LimitStatusBody { inner })))
    }
}

pin_project_lite::pin_project! {
    /// A response body whose trailers get the same correction.
    pub struct LimitStatusBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for LimitStatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        rewrite(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect_errors::MAX_ERROR_MESSAGE_BYTES;

    #[test]
    fn only_tonics_size_refusal_is_rewritten() {
        let too_large = tonic::Status::out_of_range(format!(
            "{TONIC_TOO_LARGE}: found 5242885 bytes, the limit is: 4194304 bytes"
        ))
        .into_http::<()>();
        let mut headers = too_large.headers().clone();
        rewrite(&mut headers);
        assert_eq!(headers["grpc-status"], RESOURCE_EXHAUSTED);

        let a_handlers_own = tonic::Status::out_of_range("page 9 of 3").into_http::<()>();
        let mut headers = a_handlers_own.headers().clone();
        rewrite(&mut headers);
        assert_eq!(headers["grpc-status"], OUT_OF_RANGE);
    }

    #[test]
    fn long_messages_are_cut() {
        let echo = tonic::Status::invalid_argument(format!("bad: {}", "é".repeat(100_000)))
            .into_http::<()>();
        let mut headers = echo.headers().clone();
        rewrite(&mut headers);
        let message = grpc_message(&headers).expect("message");
        assert!(
            message.len() <= MAX_ERROR_MESSAGE_BYTES + 3,
            "{}",
            message.len()
        );
        assert!(message.starts_with("bad: é"));
    }
}
