//! CORS for browsers that call the services directly with connect-web or
//! grpc-web: the protocols' request headers allowed, their status headers
//! exposed. Only requests from a browser (with an `Origin`) go through it:
//! curl, gRPC clients and the services themselves get no CORS headers. A
//! browser's request for an internal service (one only the shop's services
//! call) is refused: 403, no CORS headers, the handler never runs.

use std::{convert::Infallible, time::Duration};

use axum::body::Body;
use futures::future::{BoxFuture, FutureExt as _};

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-encoding",
    "accept-encoding",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "x-grpc-web",
    "x-user-agent",
    "x-request-id",
    "idempotency-key",
];

const EXPOSED_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "grpc-accept-encoding",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
    "x-request-id",
    "retry-after",
    // A refusal of a call no service worked on: the web app sends it again.
    "x-shop-not-processed",
];

fn names(list: &[&'static str]) -> Vec<HeaderName> {
    list.iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}

/// CORS for the given allowed origins (`*` allows any); the `internal`
/// services (full names) are refused to every browser.
pub fn browsers(origins: &[String], internal: &[String]) -> Browsers {
    Browsers {
        cors: cors(origins),
        internal: internal.iter().map(|name| format!("/{name}/")).collect(),
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(names(ALLOWED_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(Duration::from_secs(2 * 60 * 60))
}

/// CORS for requests with an `Origin`; the rest pass by it.
#[derive(Clone, Debug)]
pub struct Browsers {
    cors: CorsLayer,
    /// Path prefixes ("/<service>/") of the internal services.
    internal: Box<[String]>,
}

impl Browsers {
    /// A browser's `request` answered through CORS by `inner`; one for an
    /// internal service is refused (403, no CORS headers), `inner` never
    /// called.
    pub fn answer<S>(&self, inner: S, request: Request<Body>) -> BoxFuture<'static, Response<Body>>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        let path = request.uri().path();
        if self
            .internal
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            let mut refused = Response::new(Body::empty());
            *refused.status_mut() = StatusCode::FORBIDDEN;
            return Box::pin(std::future::ready(refused));
        }
        Box::pin(
            self.cors
                .layer(inner)
                .call(request)
                .map(|Ok(response)| response),
        )
    }
}
