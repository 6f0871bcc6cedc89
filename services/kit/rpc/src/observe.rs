//! Observes every RPC to its end, whatever its protocol: times it and
//! measures its request and response in Prometheus (labelled service,
//! method, protocol, code; named by the RPC conventions, `rpc.server.call.
//! duration` as `rpc_server_call_duration_seconds`), writes one structured
//! log line, and (traces on) makes its server span, current while the
//! handler runs and while its response streams. The code is read where
//! each protocol puts it: the gRPC `grpc-status` header or trailer, the
//! gRPC-Web trailer frame, the Connect end-of-stream message, or the
//! Connect unary error body.

use std::{
    net::IpAddr,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{body::Body, response::Response};
use bytes::{Bytes, BytesMut};
use connectrpc_axum::{message::error::code_from_status, prelude::Code};
use http::{HeaderMap, HeaderValue, Request};
use http_body::{Body as _, Frame, SizeHint};
use tracing::Level;

use shop_kit_observe::traces::{self, RpcSystem, RpcTrace};

use super::{
    arrival::InFlight,
    classify::{Call, Method},
    client_address::client_address,
    connect_errors::code_name,
    envelope,
    health::HEALTH_SERVICE,
    protocol::{Framing, GRPC_STATUS, Protocol, X_REQUEST_ID, content_type, is_rpc_method},
    series::{Series, series},
    sse,
};

/// Largest Connect unary error body read for its code.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// Largest end-of-stream message or trailers frame read for the code.
const STATUS_LIMIT: usize = 16 * 1024;

/// The label for a service or method nobody registered: only registered
/// names (see [`Call`]) become metric labels, so a caller inventing paths
/// cannot grow the series without end.
pub const UNKNOWN: &str = "unknown";

/// A call being observed, from its request's head to its response's end:
/// every RPC's, REST ones included; `None` for any other request (health
/// checks, metrics, pages, a path no RPC has).
pub(super) struct Observed {
    call: RpcCall,
}

impl Observed {
    /// Starts observing `request`, classified as `classified` (its
    /// `x-request-id`, read once, and its client, as its connection said,
    /// given): its span starts now (traces on), its clock runs.
    pub(super) fn begin(
        request: &Request<Body>,
        classified: &Call,
        request_id: Option<&HeaderValue>,
        client: Option<IpAddr>,
    ) -> Option<Self> {
        let observed = classified.protocol == Protocol::Rest
            || (is_rpc_method(request.method()) && classified.looks_like_rpc);
        if !observed {
            return None;
        }
        let service = classified.method.map_or(UNKNOWN, |method| method.service);
        let system = match classified.protocol {
            // A REST call is served by the RPC's Connect handler.
            Protocol::Connect | Protocol::Rest => RpcSystem::ConnectRpc,
            Protocol::Grpc | Protocol::GrpcWeb => RpcSystem::Grpc,
        };
        // Health checks, every few seconds from every peer, make no trace.
        let trace = if service == HEALTH_SERVICE {
            None
        } else {
            traces::server_trace(
                classified.method.map(|method| method.full_name),
                system,
                classified.protocol.as_str(),
                request.headers(),
                || shop_kit_auth::is_shop_service(request),
                || client.unwrap_or_else(|| client_address(request.extensions())),
            )
        };
        Some(Self {
            call: RpcCall {
                method: classified.method,
                protocol: classified.protocol,
                framing: classified.framing,
                system,
                // The body knows its length when the client said it
                // (content-length): no header lookup.
                request_bytes: request.body().size_hint().exact(),
                request_id: request_id.cloned(),
                client: client.unwrap_or_else(|| client_address(request.extensions())),
                started: Instant::now(),
                trace,
            },
        })
    }

    /// The call's trace, to make current while its work runs (`None`:
    /// traces off, or a call not traced).
    pub(super) fn trace_context(&self) -> Option<opentelemetry::Context> {
        self.call.trace.as_ref().map(RpcTrace::context)
    }

    /// The call's `response`, measured as it is sent: the call is
    /// finished (counted, logged, its span ended) when its body ends or
    /// is dropped. A failed call the client gave no id gets one, to quote.
    pub(super) fn answered(self, response: Response, in_flight: Option<InFlight>) -> Response {
        let mut call = self.call;
        let (mut parts, body) = response.into_parts();
        let sniffer = CodeSniffer::new(call.protocol, call.framing, parts.status, &parts.headers);
        if call.request_id.is_none() && sniffer.failed_already() {
            // The caller quotes this id to find the failure's log line.
            let id = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()).ok();
            if let Some(id) = &id {
                parts.headers.insert(X_REQUEST_ID, id.clone());
            }
            call.request_id = id;
        }
        let observed = ObservedBody {
            inner: body,
            sniffer,
            sent: 0,
            call: Some(call),
            _in_flight: in_flight,
        };
        Response::from_parts(parts, Body::new(observed))
    }
}

struct RpcCall {
    /// The registered method called (`None`: [`UNKNOWN`]): its names, its
    /// series of successful calls, whether it streams (a streaming
    /// method's handler runs while its response streams; a unary one's has
    /// finished before its body is polled).
    method: Option<&'static Method>,
    protocol: Protocol,
    framing: Framing,
    system: RpcSystem,
    /// The request's `content-length`, when it had one.
    request_bytes: Option<u64>,
    request_id: Option<HeaderValue>,
    /// Who called: the peer, or whom a trusted proxy forwarded the call for.
    client: IpAddr,
    started: Instant,
    /// How the call is traced (`None`: traces off); its span ends when
    /// the call is finished.
    trace: Option<RpcTrace>,
}

/// A call slower than this is logged whatever its outcome.
const SLOW_CALL: Duration = Duration::from_secs(1);

/// One log line for a call, at the level given, in the call's trace (made
/// current only when the line is written: most calls' line is filtered out).
macro_rules! rpc_line {
    ($level:expr, $call:expr, $code:expr, $elapsed:expr) => {
        if tracing::enabled!(target: "rpc", $level) {
            let _in_trace = $call.trace.as_ref().map(RpcTrace::enter);
            tracing::event!(
                target: "rpc",
                $level,
                service = $call.service(),
                method = $call.method_name(),
                protocol = $call.protocol.as_str(),
                code = $code,
                // To the microsecond: 5.765, not 5.764657000000001.
                duration_ms = ($elapsed.as_secs_f64() * 1e6).round() / 1000.0,
                request_id = $call
                    .request_id
                    .as_ref()
                    .and_then(|id| id.to_str().ok())
                    .unwrap_or_default(),
                client_address = %$call.client,
                "rpc finished"
            )
        }
    };
}

impl RpcCall {
    fn service(&self) -> &'static str {
        self.method.map_or(UNKNOWN, |method| method.service)
    }

    fn method_name(&self) -> &'static str {
        self.method.map_or(UNKNOWN, |method| method.name)
    }

    fn streaming(&self) -> bool {
        self.method.is_some_and(|method| method.streaming)
    }

    /// Counts and times the call; logs it at warn when the server failed,
    /// at info when the caller's request failed or a unary call was slow, and
    /// at debug otherwise (`--log-rpcs` shows those), as it does a call the
    /// caller cancelled or one refused for want of room.
    fn finish(self, code: &'static str, sent: u64) {
        let elapsed = self.started.elapsed();
        let key = Series {
            service: self.service(),
            method: self.method_name(),
            protocol: self.protocol,
            code,
        };
        let looked_up;
        let (duration, request_size, response_size) = match self.method {
            Some(method) if code == "ok" => method.ok_series.of(key),
            _ => {
                looked_up = series(key);
                &looked_up
            }
        };
        duration.record(elapsed.as_secs_f64());
        if let Some(bytes) = self.request_bytes {
            request_size.record(bytes as f64);
        }
        response_size.record(sent as f64);
        match code {
            "internal" | "unknown" | "data_loss" | "unavailable" => {
                rpc_line!(Level::WARN, self, code, elapsed);
            }
            // A call the caller cancelled (a health watch that ends, a
            // client gone), or refused for want of room: under overload
            // thousands a second, counted in metrics, and said at most
            // every 10 s by the admission step that refused them.
            "canceled" | "resource_exhausted" => rpc_line!(Level::DEBUG, self, code, elapsed),
            // A stream lasts as long as it is watched: never slow.
            "ok" if self.streaming() || elapsed < SLOW_CALL => {
                rpc_line!(Level::DEBUG, self, code, elapsed);
            }
            _ => rpc_line!(Level::INFO, self, code, elapsed),
        }
        if let Some(trace) = &self.trace {
            trace.end_served(self.system, code);
        }
    }
}

/// Finds the RPC's status code in the response as it streams by.
enum CodeSniffer {
    Known(&'static str),
    GrpcTrailers,
    GrpcWebTrailerFrame(envelope::Watch),
    ConnectEndStream(envelope::Watch),
    ConnectUnaryError {
        status: http::StatusCode,
        body: BytesMut,
    },
    /// A REST server stream's events: one frame each, an error one says
    /// its code.
    SseEvents,
}

impl CodeSniffer {
    /// `framing` is the request's: a Connect stream is answered with one
    /// (no need to read the answer's content type again).
    fn new(
        protocol: Protocol,
        framing: Framing,
        status: http::StatusCode,
        headers: &HeaderMap,
    ) -> Self {
        // A trailers-only gRPC answer says its code in the headers (only
        // gRPC's: a Connect or REST answer never carries grpc-status).
        let grpc = matches!(protocol, Protocol::Grpc | Protocol::GrpcWeb);
        if let Some(code) = grpc.then(|| grpc_status(headers)).flatten() {
            return Self::Known(code);
        }
        match protocol {
            Protocol::Grpc => Self::GrpcTrailers,
            Protocol::GrpcWeb => {
                Self::GrpcWebTrailerFrame(envelope::Watch::new(envelope::TRAILERS, STATUS_LIMIT))
            }
            Protocol::Connect | Protocol::Rest if status != http::StatusCode::OK => {
                Self::ConnectUnaryError {
                    status,
                    body: BytesMut::new(),
                }
            }
            Protocol::Rest if content_type(headers).is_some_and(|ct| ct == "text/event-stream") => {
                Self::SseEvents
            }
            Protocol::Rest => Self::Known("ok"),
            Protocol::Connect if framing == Framing::ConnectStream => {
                Self::ConnectEndStream(envelope::Watch::new(envelope::END_STREAM, STATUS_LIMIT))
            }
            Protocol::Connect => Self::Known("ok"),
        }
    }

    fn on_data(&mut self, data: &Bytes) {
        match self {
            Self::GrpcWebTrailerFrame(watch) => {
                if let Some((_, trailers)) = watch.feed(data) {
                    let text = String::from_utf8_lossy(&trailers);
                    let code = text
                        .split("\r\n")
                        .filter_map(|line| line.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("grpc-status"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .map_or("unknown", code_name);
                    *self = Self::Known(code);
                }
            }
            Self::ConnectEndStream(watch) => {
                if let Some((_, end)) = watch.feed(data) {
                    let code = serde_json::from_slice::<serde_json::Value>(&end)
                        .ok()
                        .and_then(|end| end.get("error").cloned())
                        .map_or("ok", |error| error_code(&error).unwrap_or("unknown"));
                    *self = Self::Known(code);
                }
            }
            Self::SseEvents => {
                if let Some(event) = data.strip_prefix(sse::ERROR_EVENT) {
                    let code = event
                        .strip_prefix(b"data: ")
                        .and_then(|json| serde_json::from_slice(json).ok())
                        .and_then(|error| error_code(&error))
                        .unwrap_or("unknown");
                    *self = Self::Known(code);
                }
            }
            Self::ConnectUnaryError { body, .. } if body.len() < ERROR_BODY_LIMIT => {
                body.extend_from_slice(data);
            }
            _ => {}
        }
    }

    /// Whether the response's head already says the call failed.
    fn failed_already(&self) -> bool {
        match self {
            Self::Known(code) => *code != "ok",
            Self::ConnectUnaryError { .. } => true,
            _ => false,
        }
    }

    fn on_trailers(&mut self, trailers: &HeaderMap) {
        if let Some(code) = grpc_status(trailers) {
            *self = Self::Known(code);
        }
    }

    /// The code once the body ended normally.
    fn at_end(&self) -> &'static str {
        match self {
            Self::Known(code) => code,
            Self::ConnectUnaryError { status, body } => serde_json::from_slice(body)
                .ok()
                .and_then(|error| error_code(&error))
                .unwrap_or_else(|| code_from_status(*status).as_str()),
            // Events that ended without an error one.
            Self::SseEvents => "ok",
            // A stream that ended without its status frame was cut short.
            Self::GrpcTrailers | Self::GrpcWebTrailerFrame(_) | Self::ConnectEndStream(_) => {
                "unknown"
            }
        }
    }
}

/// The code a `grpc-status` header or trailer says, by Connect's name.
pub(super) fn grpc_status(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get(GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(code_name)
}

/// The code of a Connect error (`{"code": ...}`), by its static name.
fn error_code(error: &serde_json::Value) -> Option<&'static str> {
    error.get("code")?.as_str().map(intern_code)
}

/// Maps a Connect code string onto the static names, so labels stay bounded.
fn intern_code(code: &str) -> &'static str {
    code.parse::<Code>().map_or("unknown", |code| code.as_str())
}

pin_project_lite::pin_project! {
    struct ObservedBody {
        #[pin]
        inner: Body,
        sniffer: CodeSniffer,
        // Bytes of the body sent so far.
        sent: u64,
        call: Option<RpcCall>,
        // Held until the body is gone (the listener's count of requests).
        _in_flight: Option<InFlight>,
    }

    impl PinnedDrop for ObservedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(call) = this.call.take() {
                // A body dropped before its end means the client went away;
                // hyper also drops sized bodies once it has sent them whole.
                let code = match this.sniffer {
                    CodeSniffer::Known(code) => code,
                    sniffer if this.inner.is_end_stream() => sniffer.at_end(),
                    _ => "canceled",
                };
                call.finish(code, *this.sent);
            }
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        // A stream's handler runs in these polls, in the call's trace.
        let in_trace = this
            .call
            .as_ref()
            .filter(|call| call.streaming())
            .and_then(|call| call.trace.as_ref())
            .map(RpcTrace::enter);
        let polled = this.inner.poll_frame(cx);
        drop(in_trace);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                    this.sniffer.on_data(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.sniffer.on_trailers(trailers);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(this.sniffer.at_end(), *this.sent);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish("internal", *this.sent);
                }
            }
            Poll::Pending => {}
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

#[cfg(test)]
mod tests {
    use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};

    use super::*;

    fn streaming(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn a_chunk_holding_a_message_and_the_end_of_stream_is_counted_by_its_end() {
        for (end, code) in [
            (&b"{}"[..], "ok"),
            (
                &br#"{"error":{"code":"permission_denied","message":"no"}}"#[..],
                "permission_denied",
            ),
        ] {
            let mut chunk = Vec::new();
            envelope::frame(0, br#"{"product":{}}"#, &mut chunk);
            envelope::frame(envelope::END_STREAM, end, &mut chunk);
            let mut sniffer = CodeSniffer::new(
                Protocol::Connect,
                Framing::ConnectStream,
                StatusCode::OK,
                &streaming("application/connect+json"),
            );
            sniffer.on_data(&Bytes::from(chunk));
            assert_eq!(sniffer.at_end(), code);
        }
    }

    #[test]
    fn a_grpc_web_trailers_frame_after_a_message_in_one_chunk_is_read() {
        let mut chunk = Vec::new();
        envelope::frame(0, b"\x0a\x02hi", &mut chunk);
        envelope::frame(
            envelope::TRAILERS,
            b"grpc-status: 5\r\ngrpc-message: gone\r\n",
            &mut chunk,
        );
        let mut sniffer = CodeSniffer::new(
            Protocol::GrpcWeb,
            Framing::GrpcEnvelopes,
            StatusCode::OK,
            &streaming("application/grpc-web+proto"),
        );
        sniffer.on_data(&Bytes::from(chunk));
        assert_eq!(sniffer.at_end(), "not_found");
    }

    #[test]
    fn rest_events_are_ok_until_an_error_event_names_its_code() {
        let events = || {
            let mut sniffer = CodeSniffer::new(
                Protocol::Rest,
                Framing::Unsaid,
                StatusCode::OK,
                &streaming("text/event-stream"),
            );
            sniffer.on_data(&Bytes::from_static(b"data: {\"n\":1}\n\n"));
            sniffer
        };
        assert_eq!(events().at_end(), "ok");
        let mut failed = events();
        failed.on_data(&Bytes::from_static(
            b"event: error\ndata: {\"code\":\"unavailable\",\"message\":\"gone\"}\n\n",
        ));
        assert_eq!(failed.at_end(), "unavailable");
    }
}
