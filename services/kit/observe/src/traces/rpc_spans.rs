//! The span of one RPC, server or client side, named and attributed by the
//! OpenTelemetry RPC conventions (v1.39): the span is named by `rpc.method`
//! (`package.Service/Method`, `_OTHER` for a method nobody registered),
//! `rpc.system.name` is `connectrpc` or `grpc`, `rpc.response.status_code`
//! the code as the protocol spells it, `error.type` set on failure. On a
//! server span only the codes that say the server failed are errors; on a
//! client span every code but ok.

use std::sync::Arc;

use opentelemetry::{
    Context, ContextGuard, KeyValue,
    trace::{Link, SpanKind, Status, TraceContextExt, Tracer as _},
};

use super::{TRACER, TraceTrust, enabled, propagate, sampling, service, trust};

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

/// The trace of one RPC, served or called: the context of its span, or,
/// in a trace nobody keeps, only that trace's context (no span: it is
/// passed on with its not-sampled flag).
///
/// The span is an OpenTelemetry span made directly, not a `tracing` span
/// bridged to one: an RPC span is made on every traced call, and the
/// bridge (the `tracing` registry, its builder, its field visitors) cost
/// more than the span itself. The work inside a call still uses `tracing`
/// spans; they find this one as the current OpenTelemetry context.
#[derive(Clone, Debug)]
pub struct RpcTrace {
    cx: Context,
}

impl RpcTrace {
    /// Makes the call's trace current until the guard drops.
    pub fn enter(&self) -> ContextGuard {
        self.cx.clone().attach()
    }

    /// The call's trace, to make current while a future runs
    /// (`opentelemetry::trace::FutureExt::with_context`).
    pub fn context(&self) -> Context {
        self.cx.clone()
    }

    /// Ends the span of a call this server served with its outcome:
    /// `code` is Connect's name of it (`not_found`). Only the codes that
    /// say the server failed make the span an error.
    pub fn end_served(&self, system: RpcSystem, code: &'static str) {
        let failed = matches!(
            code,
            "unknown"
                | "deadline_exceeded"
                | "unimplemented"
                | "internal"
                | "unavailable"
                | "data_loss"
        );
        self.end(system, code, failed);
    }

    /// Ends the span of a call this process made (every code but ok is
    /// an error).
    pub fn end_called(&self, code: &'static str) {
        self.end(RpcSystem::Grpc, code, code != "ok");
    }

    fn end(&self, system: RpcSystem, code: &'static str, failed: bool) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let spelled = match system {
            RpcSystem::ConnectRpc => code,
            RpcSystem::Grpc => grpc_name(code),
        };
        span.set_attribute(KeyValue::new("rpc.response.status_code", spelled));
        if failed {
            span.set_attribute(KeyValue::new("error.type", spelled));
            span.set_status(Status::error(spelled));
        }
        span.end();
    }
}

/// Attributes a span starts with, and room for the ones it gets later (the
/// code, the error, its service's stamp) without growing.
fn attributes<const N: usize>(first: [KeyValue; N]) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(N + 3);
    attributes.extend(first);
    attributes
}

/// How an RPC this server serves is traced (`None` when traces are off:
/// then the call makes no span object at all). It continues the caller's
/// trace when the caller is trusted ([`TraceTrust`]; `is_shop_service` is
/// asked only when it matters), following its sampling decision;
/// otherwise it starts a new trace (sampled as configured) with a link to
/// the caller's. A kept span records `client.address` (asked only then).
pub fn server_trace(
    full_name: Option<&'static str>,
    system: RpcSystem,
    protocol: &'static str,
    headers: &http::HeaderMap,
    is_shop_service: impl FnOnce() -> bool,
    client_address: impl FnOnce() -> std::net::IpAddr,
) -> Option<RpcTrace> {
    if !enabled() {
        return None;
    }
    let tracer = TRACER.get()?;
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
        // No span starts under a trace nobody keeps: no service to mark.
        return Some(RpcTrace { cx });
    }
    let method = full_name.unwrap_or("_OTHER");
    let mut builder = tracer
        .span_builder(method)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes([
            KeyValue::new("rpc.system.name", system.as_str()),
            KeyValue::new("rpc.method", method),
            KeyValue::new("shop.rpc.protocol", protocol),
            KeyValue::new(
                "client.address",
                opentelemetry::StringValue::from(ip_text(client_address())),
            ),
        ]));
    let parent = if trusted {
        caller
    } else {
        let callers_span = caller.span().span_context().clone();
        if callers_span.is_valid() {
            builder = builder.with_links(vec![Link::with_context(callers_span)]);
        }
        Context::new()
    };
    let parent = service::mark(parent);
    let span = builder.start_with_context(tracer, &parent);
    Some(RpcTrace {
        cx: parent.with_span(span),
    })
}

/// The trace of a call this process makes to `path` (`/package.Service/
/// Method`) at `server`: a span, child of the current trace (or the root
/// of a new one, if sampling keeps it), its context in `headers`. `None`
/// when traces are off, or when the call is part of a trace nobody keeps:
/// then only that trace's context goes into `headers`.
pub fn client_trace(
    path: &str,
    server: std::net::SocketAddr,
    headers: &mut http::HeaderMap,
) -> Option<RpcTrace> {
    if !enabled() {
        return None;
    }
    let tracer = TRACER.get()?;
    let current = propagate::current_context();
    let parent = match sampling::of(&current) {
        Some(true) => current,
        Some(false) => {
            propagate::inject(&current, headers);
            return None;
        }
        None if !sampling::keep_new_trace() => {
            propagate::inject(&sampling::unsampled_trace(), headers);
            return None;
        }
        None => service::mark(Context::new()),
    };
    let method = path.strip_prefix('/').unwrap_or(path).to_owned();
    let span = tracer
        .span_builder(method.clone())
        .with_kind(SpanKind::Client)
        .with_attributes(attributes([
            KeyValue::new("rpc.system.name", RpcSystem::Grpc.as_str()),
            KeyValue::new("rpc.method", method),
            KeyValue::new(
                "server.address",
                opentelemetry::StringValue::from(ip_text(server.ip())),
            ),
            KeyValue::new("server.port", i64::from(server.port())),
        ]))
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(span);
    propagate::inject(&cx, headers);
    Some(RpcTrace { cx })
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

thread_local! {
    /// The address this thread last wrote as text: a connection's calls
    /// come from one client, so most calls find theirs here and share it
    /// (no text written, nothing allocated, nothing freed).
    static LAST_IP: std::cell::RefCell<Option<(std::net::IpAddr, Arc<str>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `ip` as shared text: the one this thread wrote last when it is the
/// same address, else written anew (see [`write_ip`]). Shared, not owned:
/// the dashboard's kept spans copy a span's attributes, and a shared text
/// is copied without an allocation.
fn ip_text(ip: std::net::IpAddr) -> Arc<str> {
    LAST_IP.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((known, text)) if *known == ip => text.clone(),
            _ => {
                let text = write_ip(ip);
                *last = Some((ip, text.clone()));
                text
            }
        }
    })
}

/// `ip` as text: an IPv4 address written digit by digit (`Ipv4Addr`'s
/// `Display` goes through the formatting machinery: 1.3k instructions, a
/// tenth of what a traced call's spans cost), IPv6 as `Display` writes it.
fn write_ip(ip: std::net::IpAddr) -> Arc<str> {
    let std::net::IpAddr::V4(v4) = ip else {
        return Arc::from(ip.to_string());
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    let mut push = |byte: u8| {
        text[len] = byte;
        len += 1;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            push(b'.');
        }
        if octet >= 100 {
            push(b'0' + octet / 100);
        }
        if octet >= 10 {
            push(b'0' + octet / 10 % 10);
        }
        push(b'0' + octet % 10);
    }
    // Digits and dots only.
    Arc::from(std::str::from_utf8(&text[..len]).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_is_written_as_display_writes_it() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.255",
            "255.255.255.255",
            "1.2.3.4",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = text.parse().expect("an address");
            assert_eq!(*super::ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn the_same_address_again_is_the_same_shared_text_and_another_its_own() {
        let (one, other): (std::net::IpAddr, std::net::IpAddr) = (
            "10.0.0.1".parse().expect("an address"),
            "10.0.0.2".parse().expect("an address"),
        );
        let first = super::ip_text(one);
        assert!(std::sync::Arc::ptr_eq(&first, &super::ip_text(one)));
        assert_eq!(*super::ip_text(other), *"10.0.0.2");
        assert_eq!(*super::ip_text(one), *"10.0.0.1");
    }

    use super::*;

    #[test]
    fn every_connect_code_has_its_grpc_name() {
        for number in 0..=16 {
            let connect = shop_kit_wire::code_name(number);
            let grpc = grpc_name(connect);
            assert_eq!(
                grpc.to_ascii_lowercase().replace("cancelled", "canceled"),
                connect
            );
        }
    }
}
