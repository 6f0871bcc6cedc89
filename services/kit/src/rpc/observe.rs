//! Observes every RPC to its end, whatever its protocol: counts it and times
//! it in Prometheus (labelled service, method, protocol, code) and writes one
//! structured log line. The code is read where each protocol puts it: the
//! gRPC `grpc-status` header or trailer, the gRPC-Web trailer frame, the
//! Connect end-of-stream message, or the Connect unary error body.

use std::{
    collections::{HashMap, HashSet},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{body::Body, response::Response};
use bytes::{Bytes, BytesMut};
use connectrpc_axum::{message::error::code_from_status, prelude::Code};
use futures::future::BoxFuture;
use http::{HeaderMap, Request};
use http_body::{Body as _, Frame, SizeHint};
use prost_reflect::DescriptorPool;
use tower::{Layer, Service};

use super::{
    connect_errors::code_name,
    envelope,
    protocol::{Protocol, RpcName, content_type, is_rpc_method},
};

pub const REQUESTS_TOTAL: &str = "rpc_server_requests_total";
pub const DURATION_SECONDS: &str = "rpc_server_request_duration_seconds";

/// Largest Connect unary error body read for its code.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// The RPCs a server registered: only these names become metric labels,
/// so a caller inventing paths cannot grow the series without end.
#[derive(Clone, Debug, Default)]
pub struct KnownRpcs {
    /// Methods by service.
    methods: HashMap<String, HashSet<String>>,
}

/// The label for a service or method nobody registered.
pub const UNKNOWN: &str = "unknown";

impl KnownRpcs {
    /// Every method of `services` found in `pool`, plus `extra` (service,
    /// method) pairs served without a descriptor here.
    pub fn new<'a>(
        pool: &DescriptorPool,
        services: impl IntoIterator<Item = &'a str>,
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut methods: HashMap<String, HashSet<String>> = HashMap::new();
        let described = services
            .into_iter()
            .filter_map(|name| pool.get_service_by_name(name))
            .flat_map(|service| {
                service
                    .methods()
                    .map(|m| (service.full_name().to_owned(), m.name().to_owned()))
                    .collect::<Vec<_>>()
            });
        let given = extra.into_iter().map(|(s, m)| (s.to_owned(), m.to_owned()));
        for (service, method) in described.chain(given) {
            methods.entry(service).or_default().insert(method);
        }
        Self { methods }
    }

    /// The RPC's labels: its own names if registered, else "unknown".
    fn labels(&self, rpc: RpcName) -> RpcName {
        if self
            .methods
            .get(&rpc.service)
            .is_some_and(|methods| methods.contains(&rpc.method))
        {
            rpc
        } else {
            RpcName {
                service: UNKNOWN.to_owned(),
                method: UNKNOWN.to_owned(),
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ObserveLayer {
    known: Arc<KnownRpcs>,
}

impl ObserveLayer {
    pub fn new(known: KnownRpcs) -> Self {
        Self {
            known: Arc::new(known),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            known: self.known.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    known: Arc<KnownRpcs>,
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let rpc = is_rpc_method(request.method())
            .then(|| RpcName::from_path(request.uri().path()))
            .flatten();
        let Some(rpc) = rpc else {
            let future = self.inner.call(request);
            return Box::pin(future);
        };
        let call = RpcCall {
            rpc: self.known.labels(rpc),
            protocol: Protocol::of(request.headers()),
            request_id: request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            started: Instant::now(),
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let (parts, body) = response.into_parts();
            let sniffer = CodeSniffer::new(call.protocol, parts.status, &parts.headers);
            let observed = ObservedBody {
                inner: body,
                sniffer,
                call: Some(call),
            };
            Ok(Response::from_parts(parts, Body::new(observed)))
        })
    }
}

struct RpcCall {
    rpc: RpcName,
    protocol: Protocol,
    request_id: String,
    started: Instant,
}

impl RpcCall {
    fn finish(self, code: &str) {
        let elapsed = self.started.elapsed();
        let labels = [
            ("service", self.rpc.service.clone()),
            ("method", self.rpc.method.clone()),
            ("protocol", self.protocol.as_str().to_owned()),
            ("code", code.to_owned()),
        ];
        metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
        metrics::histogram!(DURATION_SECONDS, &labels).record(elapsed.as_secs_f64());
        tracing::info!(
            target: "rpc",
            service = %self.rpc.service,
            method = %self.rpc.method,
            protocol = self.protocol.as_str(),
            code,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = %self.request_id,
            "rpc finished"
        );
    }
}

/// Finds the RPC's status code in the response as it streams by.
enum CodeSniffer {
    Known(&'static str),
    GrpcTrailers,
    GrpcWebTrailerFrame,
    ConnectEndStream,
    ConnectUnaryError {
        status: http::StatusCode,
        body: BytesMut,
    },
}

impl CodeSniffer {
    fn new(protocol: Protocol, status: http::StatusCode, headers: &HeaderMap) -> Self {
        if let Some(code) = grpc_status(headers) {
            return Self::Known(code);
        }
        match protocol {
            Protocol::Grpc => Self::GrpcTrailers,
            Protocol::GrpcWeb => Self::GrpcWebTrailerFrame,
            Protocol::Connect if status != http::StatusCode::OK => Self::ConnectUnaryError {
                status,
                body: BytesMut::new(),
            },
            Protocol::Connect
                if content_type(headers)
                    .is_some_and(|ct| ct.starts_with("application/connect+")) =>
            {
                Self::ConnectEndStream
            }
            Protocol::Connect => Self::Known("ok"),
        }
    }

    fn on_data(&mut self, data: &Bytes) {
        match self {
            Self::GrpcWebTrailerFrame
                if data
                    .first()
                    .is_some_and(|flags| flags & envelope::TRAILERS != 0) =>
            {
                let text =
                    String::from_utf8_lossy(data.get(envelope::HEADER_LEN..).unwrap_or_default());
                let code = text
                    .split("\r\n")
                    .filter_map(|line| line.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("grpc-status"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .map_or("unknown", code_name);
                *self = Self::Known(code);
            }
            Self::ConnectEndStream
                if data
                    .first()
                    .is_some_and(|flags| flags & envelope::END_STREAM != 0) =>
            {
                let code = serde_json::from_slice::<serde_json::Value>(
                    data.get(envelope::HEADER_LEN..).unwrap_or_default(),
                )
                .ok()
                .and_then(|end| end.get("error").cloned())
                .map_or("ok".to_owned(), |error| {
                    error
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or("unknown")
                        .to_owned()
                });
                *self = Self::Known(intern_code(&code));
            }
            Self::ConnectUnaryError { body, .. } if body.len() < ERROR_BODY_LIMIT => {
                body.extend_from_slice(data);
            }
            _ => {}
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
            Self::ConnectUnaryError { status, body } => {
                serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|error| error.get("code").and_then(|c| c.as_str()).map(intern_code))
                    .unwrap_or_else(|| code_from_status(*status).as_str())
            }
            // A stream that ended without its status frame was cut short.
            Self::GrpcTrailers | Self::GrpcWebTrailerFrame | Self::ConnectEndStream => "unknown",
        }
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(code_name)
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
        call: Option<RpcCall>,
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
                call.finish(code);
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
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sniffer.on_data(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.sniffer.on_trailers(trailers);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(this.sniffer.at_end());
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish("internal");
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
