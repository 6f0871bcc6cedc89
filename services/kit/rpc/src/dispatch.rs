//! Where a classified request goes: a method the server registered itself
//! straight to its protocol's stack (gRPC and gRPC-Web to tonic's, Connect
//! to connectrpc-axum's), everything else (health and reflection bridged
//! for Connect, `/healthz`, `/metrics`, pages, unknown paths) to the plain
//! routes. One decision, read from the [`Call`], instead of a router whose
//! fallback switches on the content type again.

use std::convert::Infallible;

use axum::{body::Body, response::Response};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::Request;
use tower::{Service, ServiceExt};

use super::{
    classify::{Call, Method},
    connect_edge::ConnectEdge,
    grpc_edge::GrpcEdge,
    protocol::{Framing, Protocol},
    rest::Transcode,
};

/// A Connect request whose content type is for the other shape of method
/// (a unary one to a streaming method, or a streaming one to a unary
/// method): HTTP 415 with `Accept-Post` naming what the method takes, as
/// the Connect protocol says and connect-go answers, before any handler
/// runs. (The library answered a unary content type to a streaming method
/// with an HTTP 500 `unknown`.)
fn wrong_shape(method: &Method, framing: Framing) -> Option<Response> {
    let streaming = match framing {
        Framing::Unsaid => return None,
        framing => framing == Framing::ConnectStream,
    };
    if streaming == method.streaming {
        return None;
    }
    let accepted = if method.streaming {
        "application/connect+json, application/connect+proto"
    } else {
        "application/json, application/proto"
    };
    let mut refusal = Response::new(Body::empty());
    *refusal.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    refusal.headers_mut().insert(
        http::header::HeaderName::from_static("accept-post"),
        http::HeaderValue::from_static(accepted),
    );
    Some(refusal)
}

#[derive(Clone, Debug)]
pub struct Dispatch<G, R> {
    grpc_proto: GrpcEdge,
    grpc: G,
    /// REST calls, turned into Connect ones for the same stack.
    rest: Transcode<ConnectEdge>,
    connect: ConnectEdge,
    routes: R,
}

impl<G, R> Dispatch<G, R> {
    pub fn new(
        grpc_proto: GrpcEdge,
        grpc: G,
        connect: ConnectEdge,
        routes: R,
        max_request_bytes: usize,
    ) -> Self {
        Self {
            grpc_proto,
            grpc,
            rest: Transcode::new(connect.clone(), max_request_bytes),
            connect,
            routes,
        }
    }
}

/// Sends `request` through `service` (a clone: each call gets its own).
fn oneshot<S, B>(service: &S, request: Request<Body>) -> BoxFuture<'static, Response>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let service = service.clone();
    Box::pin(async move {
        let Ok(response) = service.oneshot(request).await;
        response.map(Body::new)
    })
}

/// Where a classified call goes, for the pipeline (whatever the stacks'
/// types).
pub trait Route: Send + Sync {
    /// Sends `request`, classified as `call`, where it goes.
    fn route(&self, request: Request<Body>, call: &Call) -> BoxFuture<'static, Response>;
}

impl<G, GB, R, RB> Route for Dispatch<G, R>
where
    G: Service<Request<Body>, Response = Response<GB>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    G::Future: Send + 'static,
    GB: http_body::Body<Data = Bytes> + Send + 'static,
    GB::Error: Into<axum::BoxError>,
    R: Service<Request<Body>, Response = Response<RB>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    R::Future: Send + 'static,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<axum::BoxError>,
{
    /// Each call through a clone of the stack it needs.
    fn route(&self, request: Request<Body>, call: &Call) -> BoxFuture<'static, Response> {
        match call.method.filter(|method| method.direct) {
            Some(_) if call.protocol == Protocol::Rest => oneshot(&self.rest, request),
            Some(method) if call.protocol == Protocol::Connect => {
                match wrong_shape(method, call.framing) {
                    Some(refusal) => Box::pin(std::future::ready(refusal)),
                    None => self.connect.serve(request, call),
                }
            }
            // What tonic takes as it is skips the translations (and their
            // refusals: another verb is refused there).
            Some(_)
                if call.framing == Framing::GrpcProto && request.method() == http::Method::POST =>
            {
                self.grpc_proto.serve(request, call)
            }
            Some(_) => oneshot(&self.grpc, request),
            None => oneshot(&self.routes, request),
        }
    }
}
