//! CORS for browsers that call the services directly with connect-web or
//! grpc-web: the protocols' request headers allowed, their status headers
//! exposed. Only requests from a browser (with an `Origin`) go through it:
//! curl, gRPC clients and the services themselves get no CORS headers. A
//! browser's request for an internal service (one only the shop's services
//! call) is refused: 403, no CORS headers, the handler never runs.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::future::Either;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header::ORIGIN};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

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

/// The CORS layer for the given allowed origins (`*` allows any); the
/// `internal` services (full names) are refused to every browser.
pub fn layer(origins: &[String], internal: &[String]) -> BrowsersOnlyLayer {
    BrowsersOnlyLayer {
        cors: Arc::new(cors(origins)),
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
pub struct BrowsersOnlyLayer {
    cors: Arc<CorsLayer>,
    /// Path prefixes ("/<service>/") of the internal services.
    internal: Arc<[String]>,
}

impl<S> Layer<S> for BrowsersOnlyLayer {
    type Service = BrowsersOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowsersOnly {
            inner,
            cors: self.cors.clone(),
            internal: self.internal.clone(),
        }
    }
}

/// One copy of the inner service (the whole stack below, cloned with this
/// on every call), reached directly or, for a browser's request, through
/// CORS (whose settings are shared, not cloned with every call).
#[derive(Clone, Debug)]
pub struct BrowsersOnly<S> {
    inner: S,
    cors: Arc<CorsLayer>,
    internal: Arc<[String]>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BrowsersOnly<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<
        Either<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>,
        std::future::Ready<Result<Self::Response, Self::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !request.headers().contains_key(ORIGIN) {
            return Either::Left(Either::Right(self.inner.call(request)));
        }
        let path = request.uri().path();
        if self
            .internal
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            let mut refused = Response::new(ResBody::default());
            *refused.status_mut() = StatusCode::FORBIDDEN;
            return Either::Right(std::future::ready(Ok(refused)));
        }
        // The copy polled ready goes into CORS; a fresh clone stays.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        Either::Left(Either::Left(self.cors.layer(ready).call(request)))
    }
}
