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

use std::time::Duration;

use tokio::time::Instant;

use axum::{body::Body, response::Response};
use http::{HeaderMap, HeaderValue, Request};

use connectrpc_axum::prelude::{Code, ConnectError};

use super::{
    classify::{Call, Method},
    connect_errors::{error_response, retry_later},
    policy,
    protocol::{Framing, Protocol},
};
use gate::{Entry, Gate, Load, Refused};
pub(super) use gate::{Pass, Ticket};
pub use limit::LimitConfig;
use shop_kit_wire::NOT_PROCESSED;

/// When a refused caller is told to come back.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one overload warning per server this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The gate of one server, for [`super::RpcServer`]'s pipeline to put in
/// front of its methods; `None` (a limit of 0) lets every call in.
#[derive(Clone)]
pub struct Admission {
    gate: Option<Gate>,
    service: &'static str,
    last_warning: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Admission {
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

    /// The answer to a call refused for want of room.
    pub(super) fn refuse(&self, headers: &HeaderMap, why: Refused, load: Load) -> Response {
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

/// What the gate made of a call.
pub(super) enum Admitted {
    /// Not gated (health, metrics, pages, or admission off): no place taken.
    Through(Request<Body>),
    /// At work, holding `pass` until its answer's head.
    Now(Request<Body>, Pass),
    /// Waiting for a place a short while.
    Queued(Request<Body>, Ticket),
    /// Refused, with its answer.
    Refused(Response),
}

impl Admission {
    /// Admits `request`, classified as `call`: refuses a path that names
    /// no method, then (for a method of this server's) who may call it and
    /// how often, then whether there is room.
    pub(super) fn admit(&self, request: Request<Body>, call: &Call) -> Admitted {
        let Some(method) = call.method.filter(|method| method.direct) else {
            if call.no_such_method {
                return Admitted::Refused(no_such_method(&request));
            }
            return Admitted::Through(request);
        };
        // Who may call and how often, before the call takes a place. What
        // its protocol refuses anyway is left for its stack to answer as
        // such: no handler runs for it.
        let request = if method.ruled && could_reach_a_handler(&request, call, method) {
            match policy::admit(request, method) {
                policy::Admission::Admitted(request) => request,
                policy::Admission::Refused(refusal) => return Admitted::Refused(refusal),
            }
        } else {
            request
        };
        let Some(gate) = &self.gate else {
            return Admitted::Through(request);
        };
        match gate.enter(method.index) {
            Entry::Admitted(pass) => Admitted::Now(request, pass),
            Entry::Refused(why, load) => {
                Admitted::Refused(self.refuse(request.headers(), why, load))
            }
            Entry::Queued(ticket) => Admitted::Queued(request, ticket),
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
pub(super) fn answered_ok(response: &Response, grpc: bool) -> bool {
    response.status() == http::StatusCode::OK
        && !(grpc && response.headers().contains_key(shop_kit_wire::GRPC_STATUS))
}
