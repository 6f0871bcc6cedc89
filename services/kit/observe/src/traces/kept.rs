//! Traces kept in the process, for a local dashboard to read without a
//! tracing backend: the last traces, in bounded memory. Errors and slow
//! traces are kept apart from the ordinary ones, so a flood of ordinary
//! calls does not push out the one that failed (a tail decision, made as
//! each span ends: a trace becomes notable when any of its spans is).
//!
//! Every bound is a count or bytes: traces, spans per trace, attributes
//! and events per span, the length of each text, and the bytes all kept
//! spans take (an estimate from what they hold). What does not fit is
//! counted and dropped, never queued.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use opentelemetry::{
    Context, Value,
    trace::{SpanKind, Status},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};
use serde::Serialize;

use super::export::SERVICE_STAMP;

/// How much is kept.
#[derive(Clone, Copy, Debug)]
pub struct KeptLimits {
    /// Ordinary traces kept, newest first out last.
    pub traces: usize,
    /// Traces with an error or a slow span, kept apart.
    pub notable_traces: usize,
    /// Spans kept per trace (the rest of a trace is counted, not kept).
    pub spans_per_trace: usize,
    /// Bytes all kept spans take at most (estimated from their texts).
    pub bytes: usize,
    /// A span at least this long makes its trace notable.
    pub slow: Duration,
}

impl Default for KeptLimits {
    fn default() -> Self {
        Self {
            traces: 2000,
            notable_traces: 300,
            spans_per_trace: 500,
            bytes: 24 << 20,
            slow: Duration::from_millis(500),
        }
    }
}

/// Attributes kept per span, events per span, and characters per text.
const ATTRIBUTES_PER_SPAN: usize = 24;
const EVENTS_PER_SPAN: usize = 8;
const TEXT_CHARS: usize = 240;
/// Caller-to-service pairs counted at most (a pair per caller service and
/// RPC service: few, but named by spans, so bounded).
const CALL_PAIRS: usize = 512;

/// One kept span.
#[derive(Clone, Debug, Serialize)]
pub struct KeptSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
    pub name: String,
    /// `server`, `client`, `producer`, `consumer` or `internal`.
    pub kind: &'static str,
    /// The shop service that made it, if known.
    pub service: String,
    /// Microseconds since the Unix epoch.
    pub start_us: u64,
    pub duration_us: u64,
    /// The error it ended with, if it failed.
    pub error: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub events: Vec<KeptEvent>,
    /// The traces it links to (a call from outside links the caller's).
    pub links: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeptEvent {
    pub name: String,
    pub at_us: u64,
    pub attributes: Vec<(String, String)>,
}

/// What a list of traces shows of each.
#[derive(Clone, Debug, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root's name (or the earliest span's, the root not yet ended).
    pub name: String,
    pub service: String,
    pub start_us: u64,
    pub duration_us: u64,
    pub spans: usize,
    pub services: Vec<String>,
    pub errors: usize,
    pub notable: bool,
}

/// Calls from one service to an RPC service, counted as their client
/// spans end.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CallCount {
    pub from: String,
    /// The RPC service called (`shop.catalog.v1.StockService`).
    pub to: String,
    pub calls: u64,
    pub errors: u64,
}

/// The process's kept traces: cheap to clone, shared.
#[derive(Clone, Debug)]
pub struct KeptTraces {
    ring: Arc<Mutex<Ring>>,
}

#[derive(Debug)]
struct Ring {
    limits: KeptLimits,
    traces: HashMap<String, KeptTrace>,
    /// Ordinary traces, oldest first (notable ones are skipped here).
    recent: VecDeque<String>,
    notable: VecDeque<String>,
    bytes: usize,
    dropped_spans: u64,
    calls: HashMap<(String, String), (u64, u64)>,
}

#[derive(Debug, Default)]
struct KeptTrace {
    spans: Vec<KeptSpan>,
    bytes: usize,
    notable: bool,
    /// Spans of it not kept (past `spans_per_trace`).
    dropped: usize,
}

impl Default for KeptTraces {
    fn default() -> Self {
        Self::new(KeptLimits::default())
    }
}

impl KeptTraces {
    pub fn new(limits: KeptLimits) -> Self {
        Self {
            ring: Arc::new(Mutex::new(Ring {
                limits,
                traces: HashMap::new(),
                recent: VecDeque::new(),
                notable: VecDeque::new(),
                bytes: 0,
                dropped_spans: 0,
                calls: HashMap::new(),
            })),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `span` (bounded, see the module's notes).
    pub fn keep(&self, span: KeptSpan) {
        self.ring().keep(span);
    }

    /// The newest traces first, at most `limit`, those `include` accepts.
    pub fn recent(
        &self,
        limit: usize,
        include: impl Fn(&TraceSummary) -> bool,
    ) -> Vec<TraceSummary> {
        let ring = self.ring();
        let mut all: Vec<TraceSummary> = ring
            .traces
            .iter()
            .map(|(id, trace)| trace.summary(id))
            .filter(|summary| include(summary))
            .collect();
        all.sort_unstable_by_key(|trace| std::cmp::Reverse(trace.start_us));
        all.truncate(limit);
        all
    }

    /// A trace's kept spans, earliest first.
    pub fn trace(&self, trace_id: &str) -> Option<Vec<KeptSpan>> {
        let ring = self.ring();
        let mut spans = ring.traces.get(trace_id)?.spans.clone();
        spans.sort_by_key(|span| span.start_us);
        Some(spans)
    }

    /// The traces with a span whose attribute `key` is `value`, or that
    /// link to the trace `value` when `key` is `"link"`.
    pub fn find(&self, key: &str, value: &str) -> Vec<String> {
        let ring = self.ring();
        let mut found: Vec<(u64, String)> = ring
            .traces
            .iter()
            .filter(|(_, trace)| {
                trace.spans.iter().any(|span| {
                    if key == "link" {
                        span.links.iter().any(|linked| linked == value)
                    } else {
                        span.attributes.iter().any(|(k, v)| k == key && v == value)
                    }
                })
            })
            .map(|(id, trace)| (trace.summary(id).start_us, id.clone()))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// The values the spans kept give attribute `key`, each with its
    /// trace and the start of its first span so named, newest first, at
    /// most `limit`.
    pub fn values(&self, key: &str, limit: usize) -> Vec<(String, String, u64)> {
        let ring = self.ring();
        let mut found: HashMap<(&str, &str), u64> = HashMap::new();
        for (id, trace) in &ring.traces {
            for span in &trace.spans {
                for (k, v) in &span.attributes {
                    if k == key {
                        let start = found
                            .entry((v.as_str(), id.as_str()))
                            .or_insert(span.start_us);
                        *start = (*start).min(span.start_us);
                    }
                }
            }
        }
        let mut found: Vec<(String, String, u64)> = found
            .into_iter()
            .map(|((value, id), start)| (value.to_owned(), id.to_owned(), start))
            .collect();
        found.sort_unstable_by_key(|found| std::cmp::Reverse(found.2));
        found.truncate(limit);
        found
    }

    /// Calls counted between services since the start.
    pub fn calls(&self) -> Vec<CallCount> {
        let ring = self.ring();
        let mut calls: Vec<CallCount> = ring
            .calls
            .iter()
            .map(|((from, to), (calls, errors))| CallCount {
                from: from.clone(),
                to: to.clone(),
                calls: *calls,
                errors: *errors,
            })
            .collect();
        calls.sort_unstable_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        calls
    }

    /// Traces kept, spans kept, the bytes they take, spans dropped.
    pub fn usage(&self) -> KeptUsage {
        let ring = self.ring();
        KeptUsage {
            traces: ring.traces.len(),
            spans: ring.traces.values().map(|trace| trace.spans.len()).sum(),
            bytes: ring.bytes,
            dropped_spans: ring.dropped_spans,
            limit_bytes: ring.limits.bytes,
        }
    }
}

/// How much the kept traces hold.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct KeptUsage {
    pub traces: usize,
    pub spans: usize,
    pub bytes: usize,
    pub dropped_spans: u64,
    pub limit_bytes: usize,
}

impl KeptTrace {
    fn summary(&self, id: &str) -> TraceSummary {
        let root = self
            .spans
            .iter()
            .find(|span| span.parent_span_id.is_empty())
            .or_else(|| self.spans.iter().min_by_key(|span| span.start_us));
        let start_us = self.spans.iter().map(|s| s.start_us).min().unwrap_or(0);
        let end_us = self
            .spans
            .iter()
            .map(|s| s.start_us + s.duration_us)
            .max()
            .unwrap_or(start_us);
        let mut services: Vec<String> = Vec::new();
        for span in &self.spans {
            if !span.service.is_empty() && !services.contains(&span.service) {
                services.push(span.service.clone());
            }
        }
        TraceSummary {
            trace_id: id.to_owned(),
            name: root.map(|s| s.name.clone()).unwrap_or_default(),
            service: root.map(|s| s.service.clone()).unwrap_or_default(),
            start_us,
            duration_us: end_us - start_us,
            spans: self.spans.len() + self.dropped,
            services,
            errors: self.spans.iter().filter(|s| s.error.is_some()).count(),
            notable: self.notable,
        }
    }
}

impl Ring {
    fn keep(&mut self, span: KeptSpan) {
        if span.kind == "client" {
            self.count_call(&span);
        }
        let size = span_bytes(&span);
        let notable =
            span.error.is_some() || span.duration_us >= self.limits.slow.as_micros() as u64;
        let trace_id = span.trace_id.clone();
        let limits = self.limits;
        let trace = match self.traces.get_mut(&trace_id) {
            Some(trace) => trace,
            None => {
                self.recent.push_back(trace_id.clone());
                self.traces.entry(trace_id.clone()).or_default()
            }
        };
        if trace.spans.len() >= limits.spans_per_trace {
            trace.dropped += 1;
            self.dropped_spans += 1;
            return;
        }
        trace.spans.push(span);
        trace.bytes += size;
        self.bytes += size;
        if notable && !trace.notable {
            trace.notable = true;
            self.notable.push_back(trace_id);
        }
        self.evict();
    }

    fn count_call(&mut self, span: &KeptSpan) {
        let Some(to) = span
            .attributes
            .iter()
            .find(|(key, _)| key == "rpc.method")
            .and_then(|(_, method)| method.split_once('/'))
            .map(|(service, _)| service.to_owned())
        else {
            return;
        };
        let key = (span.service.clone(), to);
        if !self.calls.contains_key(&key) && self.calls.len() >= CALL_PAIRS {
            return;
        }
        let counted = self.calls.entry(key).or_default();
        counted.0 += 1;
        counted.1 += u64::from(span.error.is_some());
    }

    /// Drops the oldest traces until every bound holds: ordinary ones
    /// first, notable ones past their own count (or, ordinary ones gone,
    /// past the bytes).
    fn evict(&mut self) {
        while self.recent.len() > self.limits.traces || self.bytes > self.limits.bytes {
            let Some(oldest) = self.recent.pop_front() else {
                break;
            };
            if self.traces.get(&oldest).is_some_and(|trace| !trace.notable) {
                self.forget(&oldest);
            }
        }
        while self.notable.len() > self.limits.notable_traces || self.bytes > self.limits.bytes {
            let Some(oldest) = self.notable.pop_front() else {
                break;
            };
            self.forget(&oldest);
        }
    }

    fn forget(&mut self, trace_id: &str) {
        if let Some(trace) = self.traces.remove(trace_id) {
            self.bytes -= trace.bytes;
        }
    }
}

/// What a span holds in memory, roughly: its allocations (capacities, not
/// lengths) and a fixed part.
fn span_bytes(span: &KeptSpan) -> usize {
    let pairs = |pairs: &Vec<(String, String)>| -> usize {
        pairs.capacity() * 48
            + pairs
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>()
    };
    256 + span.name.capacity()
        + span.service.capacity()
        + span.error.as_ref().map_or(0, String::capacity)
        + pairs(&span.attributes)
        + span.events.capacity() * 64
        + span
            .events
            .iter()
            .map(|event| event.name.capacity() + pairs(&event.attributes))
            .sum::<usize>()
        + span.links.capacity() * 56
}

fn text(value: impl std::fmt::Display) -> String {
    crate::cut(value.to_string(), TEXT_CHARS)
}

fn micros(at: SystemTime) -> u64 {
    crate::micros_since_epoch(at)
}

fn pairs<'a>(
    attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
) -> Vec<(String, String)> {
    attributes
        .filter(|kv| kv.key.as_str() != SERVICE_STAMP)
        .take(ATTRIBUTES_PER_SPAN)
        .map(|kv| (text(kv.key.as_str()), text(&kv.value)))
        .collect()
}

impl KeptSpan {
    fn of(span: &SpanData) -> Self {
        let service = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == SERVICE_STAMP)
            .map(|kv| match &kv.value {
                Value::String(name) => name.as_str().to_owned(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let start_us = micros(span.start_time);
        let parent = span.parent_span_id;
        Self {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: if parent == opentelemetry::trace::SpanId::INVALID {
                String::new()
            } else {
                parent.to_string()
            },
            name: text(&span.name),
            kind: match span.span_kind {
                SpanKind::Server => "server",
                SpanKind::Client => "client",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
                SpanKind::Internal => "internal",
            },
            service,
            start_us,
            duration_us: micros(span.end_time).saturating_sub(start_us),
            error: match &span.status {
                Status::Error { description } => Some(text(description)),
                _ => None,
            },
            attributes: pairs(span.attributes.iter()),
            events: span
                .events
                .iter()
                .take(EVENTS_PER_SPAN)
                .map(|event| KeptEvent {
                    name: text(&event.name),
                    at_us: micros(event.timestamp),
                    attributes: pairs(event.attributes.iter()),
                })
                .collect(),
            links: span
                .links
                .iter()
                .take(4)
                .map(|link| link.span_context.trace_id().to_string())
                .collect(),
        }
    }
}

/// The span processor that keeps every ended (sampled) span.
#[derive(Debug)]
pub(super) struct Keeping(pub KeptTraces);

impl SpanProcessor for Keeping {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.keep(KeptSpan::of(&span));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: usize, n: usize, error: bool, size: usize) -> KeptSpan {
        KeptSpan {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{n:016x}"),
            parent_span_id: if n == 0 {
                String::new()
            } else {
                format!("{:016x}", 0)
            },
            name: "shop.catalog.v1.CatalogService/GetProduct".to_owned(),
            kind: if n % 2 == 1 { "client" } else { "server" },
            service: "catalog".to_owned(),
            start_us: (trace * 1000 + n) as u64,
            duration_us: 100,
            error: error.then(|| "internal".to_owned()),
            attributes: vec![
                (
                    "rpc.method".to_owned(),
                    "shop.catalog.v1.StockService/ReserveStock".to_owned(),
                ),
                ("padding".to_owned(), "x".repeat(size)),
            ],
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn a_flood_of_spans_stays_within_every_bound_and_keeps_the_failed_trace() {
        let limits = KeptLimits {
            traces: 100,
            notable_traces: 10,
            spans_per_trace: 20,
            bytes: 1 << 20,
            slow: Duration::from_secs(1),
        };
        let kept = KeptTraces::new(limits);
        kept.keep(span(0, 0, true, 10));
        for trace in 1..20_000 {
            for n in 0..3 {
                kept.keep(span(trace, n, false, 200));
            }
        }
        // One trace of far too many spans, each as large as kept.
        for n in 0..10_000 {
            kept.keep(span(20_000, n, false, TEXT_CHARS));
        }
        let usage = kept.usage();
        assert!(usage.bytes <= limits.bytes, "{usage:?}");
        assert!(
            usage.traces <= limits.traces + limits.notable_traces,
            "{usage:?}"
        );
        assert!(
            kept.trace(&format!("{:032x}", 20_000))
                .is_some_and(|s| s.len() == 20)
        );
        assert!(usage.dropped_spans >= 9_980, "{usage:?}");
        assert!(
            kept.trace(&format!("{:032x}", 0)).is_some(),
            "the failed trace outlives 20,000 ordinary ones"
        );
        let newest = kept.recent(5, |_| true);
        assert_eq!(newest.len(), 5);
        assert_eq!(newest[0].trace_id, format!("{:032x}", 20_000));
        let calls = kept.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].to, "shop.catalog.v1.StockService");
    }

    #[test]
    fn spans_flooding_through_the_sdk_are_cut_and_bounded() {
        use opentelemetry::{
            KeyValue,
            trace::{Span as _, Tracer as _, TracerProvider as _},
        };
        let limits = KeptLimits {
            bytes: 2 << 20,
            ..KeptLimits::default()
        };
        let kept = KeptTraces::new(limits);
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(Keeping(kept.clone()))
            .build();
        let tracer = provider.tracer("flood");
        let huge = "x".repeat(10_000);
        for n in 0..2_000 {
            let mut span = tracer.start(format!("span {n} {huge}"));
            for a in 0..40 {
                span.set_attribute(KeyValue::new(format!("attribute.{a}"), huge.clone()));
            }
            for e in 0..20 {
                span.add_event(
                    format!("event {e}"),
                    vec![KeyValue::new("why", huge.clone())],
                );
            }
            if n % 100 == 0 {
                span.set_status(Status::error(huge.clone()));
            }
            span.end();
        }
        let usage = kept.usage();
        assert!(usage.bytes <= limits.bytes, "{usage:?}");
        let newest = kept.recent(1, |_| true);
        let spans = kept.trace(&newest[0].trace_id).unwrap_or_default();
        let span = &spans[0];
        assert!(span.name.len() <= TEXT_CHARS + 3);
        // What is held, not only what is read: each cut text's allocation.
        assert!(span.name.capacity() <= TEXT_CHARS + 3);
        assert!(
            span.attributes
                .iter()
                .chain(span.events.iter().flat_map(|event| &event.attributes))
                .all(|(_, value)| value.capacity() <= TEXT_CHARS + 3),
            "kept texts are copies, not truncated allocations"
        );
        assert_eq!(span.attributes.len(), ATTRIBUTES_PER_SPAN);
        assert_eq!(span.events.len(), EVENTS_PER_SPAN);
        assert!(
            kept.recent(usize::MAX, |trace| trace.errors > 0).len() >= 10,
            "failed traces are kept apart"
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_character() {
        let cut = text("é".repeat(TEXT_CHARS));
        assert!(cut.len() <= TEXT_CHARS + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
