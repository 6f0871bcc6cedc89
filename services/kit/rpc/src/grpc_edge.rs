//! What the kit adds around tonic's routes, wrapped once around them, for
//! a gRPC call of proto (the other codecs and gRPC-Web are translated to
//! it first), which the dispatch calls with the call it classified:
//!
//! - the deadline (`grpc-timeout`, read when the call was classified),
//!   which tonic's router does not enforce: the answer must start before
//!   it, and a stream still open when it passes ends with
//!   DEADLINE_EXCEEDED trailers ([`deadline`]);
//! - the handler gets a [`ResponseMetadata`] and what it sets is written
//!   into the answer's headers and trailers;
//! - the statuses tonic words wrongly are corrected, in the headers of a
//!   trailers-only answer and in the trailers alike ([`grpc_limits`]);
//! - a quiet server stream gets its heartbeats ([`stream_heartbeats`]);
//! - the handler's request parts without a copy of the headers (below).
//!
//! One future and one body per call, instead of a layer, a future and a
//! body for each job. The call goes straight to its service's server,
//! found by the name the call was classified with: tonic's routes are an
//! axum router, which matched the path again and stored its parameters in
//! the request for nothing (2.8k instructions a call).
//!
//! The handler's request parts: connectrpc-axum's generated tonic services
//! build a handler's extractors from a `CapturedParts` extension, which its
//! own layer fills with a clone of the request's headers (and the generated
//! code clones again), while tonic keeps the headers themselves only to
//! drop them. Here the headers are set aside instead ([`SetAside`]), tonic
//! is left the two it decodes with, and the kit's one extractor
//! ([`crate::Prepared`]) puts them back before any other runs.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, response::Response};
use bytes::Bytes;
use connectrpc_axum::tonic::CapturedParts;
use futures::future::{BoxFuture, FutureExt as _, Map};
use http::{HeaderMap, Request, request::Parts};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::{
    classify::Call,
    deadline, grpc_limits,
    response_metadata::ResponseMetadata,
    service::{GrpcServers, Server},
    stream_heartbeats::{self, Stack},
};

/// tonic's servers with the kit's gRPC work around them. Every request it
/// is given is gRPC of proto: the dispatch and the translations send only
/// those.
#[derive(Clone, Debug)]
pub struct GrpcEdge {
    servers: Arc<GrpcServers>,
    /// How often a quiet server stream gets its heartbeat.
    heartbeat_every: Duration,
}

impl GrpcEdge {
    /// Around `servers`, every service's of the server.
    pub fn new(servers: GrpcServers, heartbeat_every: Duration) -> Self {
        Self {
            servers: Arc::new(servers),
            heartbeat_every,
        }
    }

    /// The server of the service `request` calls, classified as `call`.
    fn server_of(&self, request: &Request<Body>, call: &Call) -> Option<Server> {
        let service = match call.method {
            Some(method) => method.service,
            None => {
                let path = request.uri().path().strip_prefix('/')?;
                path.split_once('/')?.0
            }
        };
        self.servers.get(service).cloned()
    }

    /// The answer to `request`, classified as `call`.
    pub fn serve(&self, request: Request<Body>, call: &Call) -> BoxFuture<'static, Response> {
        let deadline = call.deadline;
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            return Box::pin(std::future::ready(deadline::exceeded()));
        }
        let Some(mut server) = self.server_of(&request, call) else {
            // As tonic's routes answer a service they do not serve.
            return Box::pin(std::future::ready(unimplemented()));
        };
        let beat = stream_heartbeats::beat_of(call, &request, Stack::Grpc, self.heartbeat_every);
        let request = handed_to_tonic(request).map(tonic::body::Body::new);
        // tonic's servers are always ready.
        let answer = ResponseMetadata::collected(server.call(request));
        Box::pin(async move {
            let (Ok(response), metadata) = match deadline {
                None => answer.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, answer).await {
                    Ok(answered) => answered,
                    Err(_elapsed) => return deadline::exceeded(),
                },
            };
            stream_heartbeats::with_beat(corrected(response, metadata, deadline), beat)
        })
    }
}

/// For what reaches tonic's servers translated (gRPC-Web, gRPC of JSON).
impl<B> Service<Request<B>> for GrpcEdge
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Map<BoxFuture<'static, Response>, fn(Response) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut call = Call::of(&request);
        // Classified with its deadline capped; else from its header.
        if call.deadline.is_none() {
            call.deadline = deadline::of_grpc(request.headers());
        }
        self.serve(request.map(Body::new), &call).map(Ok)
    }
}

/// The answer to a call of a service the server does not serve.
fn unimplemented() -> Response {
    let (parts, ()) = tonic::Status::unimplemented("")
        .into_http::<()>()
        .into_parts();
    Response::from_parts(parts, Body::empty())
}

/// A gRPC request's headers, kept for its handler's extractors while tonic
/// decodes it (cloned never: an extension must be `Clone`).
#[derive(Clone)]
struct SetAside(HeaderMap);

/// `request` as tonic gets it: its headers set aside for the handler, the
/// ones tonic reads left with it.
fn handed_to_tonic<B>(mut request: Request<B>) -> Request<B> {
    let headers = std::mem::take(request.headers_mut());
    // What tonic reads of them: how the message is compressed and how the
    // answer may be. One pass over the few names (most differ in length)
    // instead of a hashed lookup for each.
    for (name, value) in &headers {
        if matches!(name.as_str(), "grpc-encoding" | "grpc-accept-encoding") {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    let captured = CapturedParts {
        method: request.method().clone(),
        uri: request.uri().clone(),
        version: request.version(),
        headers: HeaderMap::new(),
    };
    let extensions = request.extensions_mut();
    extensions.insert(captured);
    extensions.insert(SetAside(headers));
    request
}

/// Gives the handler's `parts` the headers its request came with (a gRPC
/// call's, set aside while tonic decoded it; a Connect call's are there).
pub(crate) fn restore_headers(parts: &mut Parts) {
    if let Some(SetAside(headers)) = parts.extensions.remove() {
        parts.headers = headers;
    }
}

/// tonic's `response`, with the handler's `metadata` written in, its
/// statuses corrected and, for a stream, its `deadline` kept.
pub(super) fn corrected(
    mut response: Response,
    metadata: Option<ResponseMetadata>,
    deadline: Option<Instant>,
) -> Response<GrpcBody> {
    let headers = response.headers_mut();
    // The handler's trailers travel in the headers of a trailers-only
    // answer, else in the body's trailers.
    let metadata = metadata.filter(|metadata| metadata.write_grpc_headers(headers));
    grpc_limits::correct(headers);
    response.map(|inner| GrpcBody {
        inner,
        metadata,
        deadline: deadline.map(|deadline| Box::pin(tokio::time::sleep_until(deadline))),
        ended: false,
    })
}

pin_project_lite::pin_project! {
    /// tonic's answer: its trailers get the handler's and are corrected,
    /// and it ends with DEADLINE_EXCEEDED trailers if it is still
    /// streaming when the deadline (if any) passes.
    pub(super) struct GrpcBody {
        #[pin]
        inner: Body,
        // The handler's, its trailers still to write.
        metadata: Option<ResponseMetadata>,
        deadline: Option<Pin<Box<Sleep>>>,
        // Cut at its deadline (tonic's stream dropped with the body).
        ended: bool,
    }
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    if let Some(metadata) = this.metadata.take() {
                        metadata.append_trailers_to(&mut trailers);
                    }
                    grpc_limits::correct(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            Poll::Pending => {
                let passed = this
                    .deadline
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if !passed {
                    return Poll::Pending;
                }
                *this.ended = true;
                Poll::Ready(Some(Ok(Frame::trailers(deadline::exceeded_trailers()))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_gets_every_header_and_tonic_only_what_it_decodes_with() {
        let request = Request::builder()
            .uri("/shop.catalog.v1.CatalogService/GetProduct")
            .header("authorization", "Bearer token")
            .header("grpc-encoding", "gzip")
            .header("grpc-accept-encoding", "gzip")
            .header("x-request-id", "a1")
            .header("x-request-id", "a2")
            .body(())
            .expect("request");
        let given = handed_to_tonic(request);
        let read: Vec<_> = given
            .headers()
            .keys()
            .map(http::HeaderName::as_str)
            .collect();
        assert_eq!(read, ["grpc-encoding", "grpc-accept-encoding"]);
        let captured = given
            .extensions()
            .get::<CapturedParts>()
            .expect("the library's parts");
        assert_eq!(captured.uri, "/shop.catalog.v1.CatalogService/GetProduct");
        assert!(captured.headers.is_empty(), "not copied");

        let (mut parts, ()) = given.into_parts();
        restore_headers(&mut parts);
        assert_eq!(parts.headers["authorization"], "Bearer token");
        let ids: Vec<_> = parts.headers.get_all("x-request-id").iter().collect();
        assert_eq!(ids, ["a1", "a2"]);
        assert_eq!(parts.headers.len(), 5);
    }

    #[tokio::test]
    async fn a_call_goes_to_its_services_server_and_another_service_is_unimplemented() {
        use http_body_util::BodyExt as _;
        let (_reporter, health) = tonic_health::server::health_reporter();
        let mut servers = GrpcServers::default();
        servers.add(health);
        let mut edge = GrpcEdge::new(servers, Duration::from_secs(15));
        let check = |path: &str| {
            Request::builder()
                .method("POST")
                .uri(path)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Body::from(&[0u8, 0, 0, 0, 0][..]))
                .expect("request")
        };

        let Ok(served) = edge.call(check("/grpc.health.v1.Health/Check")).await;
        let trailers = served
            .into_body()
            .collect()
            .await
            .expect("body")
            .trailers()
            .cloned()
            .expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");

        let Ok(other) = edge.call(check("/shop.nothing.v1.Nothing/Check")).await;
        assert_eq!(other.headers()["grpc-status"], "12", "unimplemented");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_open_at_its_deadline_ends_with_deadline_exceeded() {
        use http_body::Body as _;
        use http_body_util::BodyExt as _;
        let quiet = Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>());
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut body = corrected(Response::new(quiet), None, Some(deadline)).into_body();
        let frame = body.frame().await.expect("a frame").expect("no error");
        let trailers = frame.into_trailers().expect("trailers");
        assert_eq!(trailers["grpc-status"], "4");
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }
}
