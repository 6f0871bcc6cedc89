//! Admission: who may call a method and how often, as its contract says
//! (`policy::admit`), then whether there is room. A path under a served
//! service that names no method of it is refused here too, so nothing
//! behind this step sees a call its contract does not describe.
//!
//! Room: each server works on as many calls at once as its
//! adaptive limit allows (see [`limit`]), queues a few more for a short
//! while, and refuses the rest at once (see [`gate`]), on every protocol
//! alike: `resource_exhausted` with a `google.rpc.RetryInfo`, `Retry-After`,
//! and [`NOT_PROCESSED`] (the kit's clients send such a call again, to
//! another replica where there is one, whatever the method: it was never
//! worked on).
//!
//! Only the calls of the server's own methods pass the gate, REST ones
//! included; health checks, readiness, metrics and reflection never wait
//! and are never refused. A call's latency is counted from its admission
//! to its answer (a streaming call's: to its first response head), its
//! request already read whole (a slow sender holds no place).

mod gate;
mod limit;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Instant;

use axum::{body::Body, response::Response};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request};
use tower::{Layer, Service, ServiceExt};

use connectrpc_axum::prelude::{Code, ConnectError};

use super::{
    classify::{Call, Method},
    connect_errors::{error_response, retry_later},
    policy,
    protocol::{Framing, Protocol},
};
use gate::{Entry, Gate, Load, Pass, Refused};
pub use limit::LimitConfig;
use shop_kit_wire::NOT_PROCESSED;

/// When a refused caller is told to come back.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one overload warning per server this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The gate of one server, for [`super::RpcServer`] to put in front of
/// its methods; `None` (a limit of 0) lets every call in.
#[derive(Clone)]
pub struct AdmissionLayer {
    gate: Option<Gate>,
    service: &'static str,
    last_warning: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl AdmissionLayer {
    /// The gate of a server named `service` (for metrics and messages)
    /// with `methods` methods, its limit as `config` says (`None`: off).
    pub fn new(service: &'static str, config: Option<LimitConfig>, methods: usize) -> Self {
        let gate = config.map(|config| Gate::new(config, methods, service));
        if let Some(gate) = &gate {
            gate.show_meanwhile();
        }
        Self {
            gate,
            service,
            last_warning: Default::default(),
        }
    }

    fn refuse(&self, headers: &HeaderMap, why: Refused, load: Load) -> Response {
        self.warn_now_and_then(why, load);
        let error = retry_later(
            format!(
                "overloaded: {} calls at work and {} queued, as many as this server takes; try again shortly",
                load.in_flight, load.queued
            ),
            RETRY_AFTER,
        );
        let mut response = error_response(headers, error);
        let headers = response.headers_mut();
        headers.insert(NOT_PROCESSED, HeaderValue::from_static("overloaded"));
        // On gRPC the error's own metadata is not sent: said for every
        // protocol here.
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
        response
    }

    fn warn_now_and_then(&self, why: Refused, load: Load) {
        let now = Instant::now();
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            service = self.service,
            reason = why.as_str(),
            limit = load.limit,
            in_flight = load.in_flight,
            queued = load.queued,
            "overloaded: refusing calls (at most one such line every 10 s; shop_admission_refused_total counts them)"
        );
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

impl<S> Service<Request<Body>> for Admission<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Gated<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = Call::of(&request);
        let Some(method) = call.method.filter(|method| method.direct) else {
            if call.no_such_method {
                return Gated::Refused {
                    response: Some(no_such_method(&request)),
                };
            }
            return Gated::Through {
                future: self.inner.call(request),
            };
        };
        // Who may call and how often, before the call takes a place. What
        // its protocol refuses anyway is left for its stack to answer as
        // such: no handler runs for it.
        let request = if method.ruled && could_reach_a_handler(&request, &call, method) {
            match policy::admit(request, method) {
                policy::Admission::Admitted(request) => request,
                policy::Admission::Refused(refusal) => {
                    return Gated::Refused {
                        response: Some(refusal),
                    };
                }
            }
        } else {
            request
        };
        let Some(gate) = &self.layer.gate else {
            return Gated::Through {
                future: self.inner.call(request),
            };
        };
        let grpc = matches!(call.protocol, Protocol::Grpc | Protocol::GrpcWeb);
        match gate.enter(method.index) {
            Entry::Admitted(pass) => Gated::Admitted {
                future: self.inner.call(request),
                pass: Some(pass),
                grpc,
            },
            Entry::Refused(why, load) => Gated::Refused {
                response: Some(self.layer.refuse(request.headers(), why, load)),
            },
            Entry::Queued(ticket) => {
                // The clone polled ready is the one that takes the call.
                let inner = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, inner);
                let layer = self.layer.clone();
                Gated::Queued {
                    future: Box::pin(async move {
                        match ticket.wait().await {
                            Ok(pass) => {
                                let answer = inner.oneshot(request).await;
                                pass.finish(
                                    answer
                                        .as_ref()
                                        .is_ok_and(|answer| answered_ok(answer, grpc)),
                                );
                                answer
                            }
                            Err((why, load)) => Ok(layer.refuse(request.headers(), why, load)),
                        }
                    }),
                }
            }
        }
    }
}

/// Whether a call of `method` could reach its handler as it stands. What
/// its protocol refuses anyway (a verb it does not take, a Connect GET of
/// a method not marked NO_SIDE_EFFECTS, a content type it does not take
/// or one for the other shape of method, a protocol version it does not
/// speak, a malformed timeout) is answered as the protocol says (405, 415,
/// 400) before any rule of the contract is read: those refusals say
/// nothing of the caller, and no handler runs.
fn could_reach_a_handler(request: &Request<Body>, call: &Call, method: &Method) -> bool {
    if call.malformed_timeout {
        return false;
    }
    let verb = request.method();
    match call.protocol {
        Protocol::Rest => true,
        Protocol::Grpc | Protocol::GrpcWeb => verb == http::Method::POST,
        Protocol::Connect if verb == http::Method::POST => {
            // The content type, as the request was classified: one the
            // library may take for this shape of method.
            let takes = match call.framing {
                Framing::PlainJson | Framing::PlainProto => !method.streaming,
                Framing::ConnectStream => method.streaming,
                _ => false,
            };
            takes
                && request
                    .headers()
                    .get(&CONNECT_PROTOCOL_VERSION)
                    .is_none_or(|version| version == "1")
        }
        Protocol::Connect => verb == http::Method::GET && method.get && !method.streaming,
    }
}

/// The header a Connect client names the protocol's version in.
const CONNECT_PROTOCOL_VERSION: http::HeaderName =
    http::HeaderName::from_static("connect-protocol-version");

/// A path under a served service naming no method of its contract:
/// `unimplemented` in the caller's protocol, before any stack behind the
/// server sees it; on Connect with HTTP 404, as connect-go answers a
/// procedure it does not serve (Connect clients read 404 as
/// `unimplemented`).
fn no_such_method(request: &Request<Body>) -> Response {
    let mut refusal = error_response(
        request.headers(),
        ConnectError::new(
            Code::Unimplemented,
            format!("{} is not a method of this service", request.uri().path()),
        ),
    );
    if refusal.status() == http::StatusCode::NOT_IMPLEMENTED {
        *refusal.status_mut() = http::StatusCode::NOT_FOUND;
    }
    refusal
}

/// Whether a response is, by its head, a call that did its work: HTTP 200
/// and, on gRPC (`grpc`), no `grpc-status` there (its failures come
/// trailers-only).
fn answered_ok(response: &Response, grpc: bool) -> bool {
    response.status() == http::StatusCode::OK
        && !(grpc && response.headers().contains_key(shop_kit_wire::GRPC_STATUS))
}

pin_project_lite::pin_project! {
    /// A call as the gate let it through.
    #[project = GatedProjection]
    pub enum Gated<F> {
        /// Not gated (health, metrics, pages, or admission off).
        Through { #[pin] future: F },
        Admitted { #[pin] future: F, pass: Option<Pass>, grpc: bool },
        Queued { future: BoxFuture<'static, Result<Response, Infallible>> },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for Gated<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GatedProjection::Through { future } => future.poll(cx),
            GatedProjection::Admitted { future, pass, grpc } => {
                let answer = std::task::ready!(future.poll(cx));
                if let Some(pass) = pass.take() {
                    pass.finish(
                        answer
                            .as_ref()
                            .is_ok_and(|answer| answered_ok(answer, *grpc)),
                    );
                }
                Poll::Ready(answer)
            }
            GatedProjection::Queued { future } => future.as_mut().poll(cx),
            GatedProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}
