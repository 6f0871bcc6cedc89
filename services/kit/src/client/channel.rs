//! The channel each attempt of a call gets: the endpoint's connection, with
//! every RPC sent through it made a client span (traces on) whose context
//! goes out in the request's headers. Being the only way the stack hands
//! out a connection, no call can forget either.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use tower::Service;
use tracing::{Instrument, Span};

use crate::observe::traces;

/// A connection to one endpoint of a peer; any tonic client takes it
/// (`FooClient::new(channel)`).
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
    addr: SocketAddr,
}

impl Channel {
    pub(super) fn new(inner: tonic::transport::Channel, addr: SocketAddr) -> Self {
        Self { inner, addr }
    }
}

type Request = http::Request<tonic::body::Body>;
type Response = http::Response<tonic::body::Body>;

impl Service<Request> for Channel {
    type Response = Response;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // RPCs are POSTs; a plain GET through the channel (a JWK set) is no RPC.
        if !traces::enabled() || request.method() != http::Method::POST {
            return Box::pin(self.inner.call(request));
        }
        let path = request.uri().path().to_owned();
        let span = traces::client_span(&path, self.addr, request.headers_mut());
        let sent = span.in_scope(|| self.inner.call(request));
        let call = span.clone();
        Box::pin(
            async move {
                let response = match sent.await {
                    Ok(response) => response,
                    Err(error) => {
                        traces::record_client_code(&call, "unavailable");
                        return Err(error);
                    }
                };
                let (parts, body) = response.into_parts();
                // A failure with no message has its status in the headers.
                if let Some(code) = crate::rpc::grpc_status(&parts.headers) {
                    traces::record_client_code(&call, code);
                    return Ok(Response::from_parts(parts, body));
                }
                let body = TracedBody {
                    inner: body,
                    span: Some(call),
                };
                Ok(Response::from_parts(parts, tonic::body::Body::new(body)))
            }
            .instrument(span),
        )
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its call's span with the code of its
    /// trailers (or `canceled` if dropped before them).
    struct TracedBody {
        #[pin]
        inner: tonic::body::Body,
        span: Option<Span>,
    }

    impl PinnedDrop for TracedBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some(span) = this.project().span.take() {
                traces::record_client_code(&span, "canceled");
            }
        }
    }
}

impl http_body::Body for TracedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| crate::rpc::grpc_status(trailers).unwrap_or("unknown")),
            // Ended without trailers: the stream was cut short.
            Poll::Ready(None) => Some("unknown"),
            Poll::Ready(Some(Err(_))) => Some("unavailable"),
            Poll::Pending => None,
        };
        // The span is taken only once the code is known.
        if let Some(code) = code
            && let Some(span) = this.span.take()
        {
            traces::record_client_code(&span, code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
