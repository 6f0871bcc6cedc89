//! Trace context across boundaries, by the OpenTelemetry propagators (W3C
//! `traceparent`/`tracestate` and `baggage`): HTTP headers in and out, and
//! the `traceparent` stored with what outlives a request (an outbox event,
//! an order's saga), so the work it causes later joins the same trace.

use std::{collections::HashMap, sync::OnceLock};

use opentelemetry::{
    Context,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{enabled, sampling, service};

const TRACEPARENT: &str = "traceparent";

fn propagator() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(|| {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    })
}

/// The trace context a request carries (empty when it carries none).
pub(super) fn extract(headers: &http::HeaderMap) -> Context {
    // Most callers from outside carry none: one pass over the request's
    // few names (a comparison of lengths, mostly) instead of two hashed
    // lookups, or the propagators' three by text. Their answer would be
    // the current context, as here (tracestate means nothing alone).
    let carries = headers
        .keys()
        .any(|name| matches!(name.as_str(), TRACEPARENT | "baggage"));
    if !carries {
        return Context::current();
    }
    propagator().extract(&HeaderExtractor(headers))
}

/// Writes `cx` into outgoing headers.
pub(super) fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    propagator().inject_context(cx, &mut HeaderInjector(headers));
}

/// The trace the current work is part of (empty if none): an RPC's
/// context attached while its work runs, or the context of the `tracing`
/// span entered in it (the bridge attaches each span's context on entry).
pub(crate) fn current_context() -> Context {
    Context::current()
}

/// The current trace's `traceparent`, to store with work that outlives the
/// request; empty when traces are off or no trace is current.
pub fn current_traceparent() -> String {
    if !enabled() {
        return String::new();
    }
    let cx = current_context();
    if !cx.span().span_context().is_valid() {
        return String::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT).unwrap_or_default()
}

/// The context a stored `traceparent` names (empty if it names none),
/// marked with the current task's service.
fn context_from_traceparent(traceparent: &str) -> Context {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    service::mark(TraceContextPropagator::new().extract(&carrier))
}

/// A span for background work that continues the trace `traceparent`
/// names (a saga step, resumed by whichever process holds the saga), or
/// starts one for the current service when it names none (if sampling
/// keeps it); `Span::none()` when traces are off. In a trace nobody keeps
/// the span records nothing and only passes the context on.
pub fn continuing_span(name: impl std::fmt::Display, traceparent: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let parent = context_from_traceparent(traceparent);
    if sampling::of(&parent).is_none() && !sampling::keep_new_trace() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(target: super::TARGET, "work", otel.name = %name);
    let _ = span.set_parent(parent);
    span
}

/// Adds an attribute to a work span (a saga step's order, its attempt, what
/// it came to), made by `value` only when the span records anything.
pub fn annotate<D: std::fmt::Display>(
    span: &tracing::Span,
    key: &'static str,
    value: impl FnOnce() -> D,
) {
    if !span.is_none() {
        span.set_attribute(key, value().to_string());
    }
}

/// Links a consumer's span keeps at most (one per event of its batch).
const LINKS_KEPT: usize = 128;

/// The span of a consumer processing a batch of events whose trace
/// contexts are `traceparents`: linked to each, and a child of their trace
/// when they all belong to one; `Span::none()` when traces are off.
pub fn consumer_span<'a>(
    consumer: &str,
    traceparents: impl IntoIterator<Item = &'a str>,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let mut one_trace = None;
    let mut several = false;
    let mut links = Vec::new();
    for traceparent in traceparents.into_iter().take(LINKS_KEPT) {
        let cx = context_from_traceparent(traceparent);
        let linked = cx.span().span_context().clone();
        if !linked.is_valid() {
            continue;
        }
        match &one_trace {
            None => one_trace = Some(cx),
            Some(first) if first.span().span_context().trace_id() != linked.trace_id() => {
                several = true;
            }
            Some(_) => {}
        }
        links.push(linked);
    }
    // Decided before the span is built: a new trace sampling drops makes
    // none.
    let parent = match one_trace {
        Some(cx) if !several => cx,
        _ if !sampling::keep_new_trace() => return tracing::Span::none(),
        _ => service::mark(Context::new()),
    };
    let span = tracing::info_span!(
        target: super::TARGET,
        "process",
        otel.name = %format_args!("process {consumer}"),
        otel.kind = "consumer",
        messaging.operation.type = "process",
        messaging.consumer.group.name = consumer,
    );
    for linked in links {
        span.add_link(linked);
    }
    let _ = span.set_parent(parent);
    span
}

/// A span for a piece of work inside the current one (password hashing),
/// for code that leaves the task (a blocking thread enters it there);
/// `Span::none()` when traces are off or the current trace is not kept.
pub fn work_span(name: &'static str) -> tracing::Span {
    if !enabled() || sampling::of(&current_context()) != Some(true) {
        return tracing::Span::none();
    }
    tracing::info_span!(target: super::TARGET, "work", otel.name = name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_with_its_ids() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = context_from_traceparent(value);
        let span = cx.span();
        let read = span.span_context();
        assert!(read.is_valid() && read.is_remote() && read.is_sampled());
        assert_eq!(
            read.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(read.span_id().to_string(), "00f067aa0ba902b7");
        let mut headers = http::HeaderMap::new();
        inject(&cx, &mut headers);
        assert_eq!(
            headers.get(TRACEPARENT).map(|v| v.as_bytes()),
            Some(value.as_bytes())
        );
    }

    #[test]
    fn malformed_traceparents_name_no_trace() {
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "not a traceparent",
        ] {
            let cx = context_from_traceparent(bad);
            assert!(!cx.span().span_context().is_valid(), "{bad}");
        }
    }
}
