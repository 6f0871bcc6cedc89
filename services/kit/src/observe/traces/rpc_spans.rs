//! The span of one RPC, server or client side, named and attributed by the
//! OpenTelemetry RPC conventions (v1.39): the span is named by `rpc.method`
//! (`package.Service/Method`, `_OTHER` for a method nobody registered),
//! `rpc.system.name` is `connectrpc` or `grpc`, `rpc.response.status_code`
//! the code as the protocol spells it, `error.type` set on failure. On a
//! server span only the codes that say the server failed are errors; on a
//! client span every code but ok.

use opentelemetry::trace::TraceContextExt;
use tracing::{Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{TARGET, TraceTrust, enabled, propagate, sampling, service, trust};

/// The RPC system of a call: Connect's name for Connect calls, gRPC's for
/// gRPC and gRPC-Web.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcSystem {
    ConnectRpc,
    Grpc,
}

impl RpcSystem {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConnectRpc => "connectrpc",
            Self::Grpc => "grpc",
        }
    }
}

/// How one RPC served here is traced.
#[derive(Clone, Debug)]
pub enum ServerTrace {
    /// Its span, kept and exported.
    Span(Span),
    /// Part of a trace nobody keeps (the caller's decision, or sampling's
    /// for a new one): no span, its context only passed on.
    Unsampled(opentelemetry::Context),
}

impl ServerTrace {
    /// Makes the call's trace current until the guard drops.
    pub fn enter(&self) -> Entered<'_> {
        match self {
            Self::Span(span) => Entered::Span(span.enter()),
            Self::Unsampled(cx) => Entered::Context(cx.clone().attach()),
        }
    }
}

/// While held, a call's trace is current.
pub enum Entered<'a> {
    Span(tracing::span::Entered<'a>),
    Context(opentelemetry::ContextGuard),
}

/// How an RPC this server serves is traced (`None` when traces are off:
/// then the call makes no span object at all). It continues the caller's
/// trace when the caller is trusted ([`TraceTrust`]; `is_shop_service` is
/// asked only when it matters), following its sampling decision;
/// otherwise it starts a new trace (sampled as configured) with a link to
/// the caller's.
pub fn server_trace(
    full_name: Option<&'static str>,
    system: RpcSystem,
    protocol: &'static str,
    headers: &http::HeaderMap,
    is_shop_service: impl FnOnce() -> bool,
) -> Option<ServerTrace> {
    if !enabled() {
        return None;
    }
    let caller = propagate::extract(headers);
    let trusted = sampling::of(&caller).is_some()
        && match trust() {
            TraceTrust::All => true,
            TraceTrust::None => false,
            TraceTrust::Services => is_shop_service(),
        };
    let kept = if trusted {
        sampling::of(&caller) == Some(true)
    } else {
        sampling::keep_new_trace()
    };
    if !kept {
        let cx = if trusted {
            caller
        } else {
            sampling::unsampled_trace()
        };
        return Some(ServerTrace::Unsampled(service::mark(cx)));
    }
    let method = full_name.unwrap_or("_OTHER");
    let span = tracing::info_span!(
        target: TARGET,
        "rpc.server",
        otel.name = method,
        otel.kind = "server",
        rpc.system.name = system.as_str(),
        rpc.method = method,
        shop.rpc.protocol = protocol,
        rpc.response.status_code = field::Empty,
        "error.type" = field::Empty,
        otel.status_code = field::Empty,
    );
    let callers_span = caller.span().span_context().clone();
    let parent = if trusted {
        caller
    } else {
        if callers_span.is_valid() {
            span.add_link(callers_span);
        }
        opentelemetry::Context::new()
    };
    let _ = span.set_parent(service::mark(parent));
    Some(ServerTrace::Span(span))
}

/// The span of a call this process makes to `path` (`/package.Service/
/// Method`) at `server`, a child of the current span (or the root of a new
/// trace, if sampling keeps it), its context in `headers`. `None` when
/// traces are off, or when the call is part of a trace nobody keeps: then
/// only that trace's context goes into `headers`.
pub fn client_span(
    path: &str,
    server: std::net::SocketAddr,
    headers: &mut http::HeaderMap,
) -> Option<Span> {
    if !enabled() {
        return None;
    }
    let current = propagate::current_context();
    match sampling::of(&current) {
        Some(true) => {}
        Some(false) => {
            propagate::inject(&current, headers);
            return None;
        }
        None if !sampling::keep_new_trace() => {
            propagate::inject(&sampling::unsampled_trace(), headers);
            return None;
        }
        None => {}
    }
    let method = path.strip_prefix('/').unwrap_or(path);
    let span = tracing::info_span!(
        target: TARGET,
        "rpc.client",
        otel.name = method,
        otel.kind = "client",
        rpc.system.name = RpcSystem::Grpc.as_str(),
        rpc.method = method,
        server.address = %server.ip(),
        server.port = server.port(),
        rpc.response.status_code = field::Empty,
        "error.type" = field::Empty,
        otel.status_code = field::Empty,
    );
    if sampling::of(&current).is_none() {
        let _ = span.set_parent(service::mark(opentelemetry::Context::new()));
    }
    propagate::inject(&span.context(), headers);
    Some(span)
}

/// Records the outcome of a server span: `code` is Connect's name of it
/// (`not_found`).
pub fn record_server_code(span: &Span, system: RpcSystem, code: &'static str) {
    let failed = matches!(
        code,
        "unknown"
            | "deadline_exceeded"
            | "unimplemented"
            | "internal"
            | "unavailable"
            | "data_loss"
    );
    record(span, system, code, failed);
}

/// Records the outcome of a client span (every code but ok is an error).
pub fn record_client_code(span: &Span, code: &'static str) {
    record(span, RpcSystem::Grpc, code, code != "ok");
}

fn record(span: &Span, system: RpcSystem, code: &'static str, failed: bool) {
    if span.is_none() {
        return;
    }
    let spelled = match system {
        RpcSystem::ConnectRpc => code,
        RpcSystem::Grpc => grpc_name(code),
    };
    span.record("rpc.response.status_code", spelled);
    if failed {
        span.record("error.type", spelled);
        span.record("otel.status_code", "ERROR");
    }
}

/// gRPC's name of a code given by Connect's name.
fn grpc_name(code: &str) -> &'static str {
    match code {
        "ok" => "OK",
        "canceled" => "CANCELLED",
        "invalid_argument" => "INVALID_ARGUMENT",
        "deadline_exceeded" => "DEADLINE_EXCEEDED",
        "not_found" => "NOT_FOUND",
        "already_exists" => "ALREADY_EXISTS",
        "permission_denied" => "PERMISSION_DENIED",
        "resource_exhausted" => "RESOURCE_EXHAUSTED",
        "failed_precondition" => "FAILED_PRECONDITION",
        "aborted" => "ABORTED",
        "out_of_range" => "OUT_OF_RANGE",
        "unimplemented" => "UNIMPLEMENTED",
        "internal" => "INTERNAL",
        "unavailable" => "UNAVAILABLE",
        "data_loss" => "DATA_LOSS",
        "unauthenticated" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connect_code_has_its_grpc_name() {
        for number in 0..=16 {
            let connect = crate::rpc::connect_errors::code_name(number);
            let grpc = grpc_name(connect);
            assert_eq!(
                grpc.to_ascii_lowercase().replace("cancelled", "canceled"),
                connect
            );
        }
    }
}
