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
    borrow::Cow,
    collections::{HashMap, VecDeque, hash_map::Entry},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use opentelemetry::{
    Context, Key, KeyValue, Value,
    trace::{SpanId, SpanKind, Status, TraceId},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};
use serde::Serialize;

use super::service::SERVICE_STAMP;

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

/// The spans kept, as the SDK made them (long texts cut, counts bounded):
/// turned into [`KeptSpan`]s only when read. Making the text as each span
/// ends (hex ids, every value formatted, a map by text) cost a traced
/// call more than the rest of its tracing did.
#[derive(Debug)]
struct Ring {
    limits: KeptLimits,
    /// By trace id: random, or a caller's choice (a keyed hash, faster
    /// than the standard one on its 16 bytes).
    traces: HashMap<TraceId, KeptTrace, foldhash::fast::RandomState>,
    /// Ordinary traces, oldest first (notable ones are skipped here).
    recent: VecDeque<TraceId>,
    notable: VecDeque<TraceId>,
    bytes: usize,
    dropped_spans: u64,
    /// Calls by calling service, then by RPC service called.
    calls: HashMap<String, HashMap<String, (u64, u64)>>,
    call_pairs: usize,
    /// What forgotten traces held, emptied, for the next ones: a ring
    /// that keeps taking traces and dropping old ones would otherwise free
    /// and allocate the same lists for every span (a fifth of its cost).
    spare: Spare,
}

/// Emptied lists of forgotten traces, at most [`SPARE_LISTS`] of each.
#[derive(Debug, Default)]
struct Spare {
    spans: Vec<Vec<HeldSpan>>,
    attributes: Vec<Vec<KeyValue>>,
}

/// How many emptied lists of each kind the ring keeps for reuse.
const SPARE_LISTS: usize = 64;
/// The most spans a trace's list kept for reuse has room for.
const SPARE_SPANS: usize = 8;

impl Spare {
    /// Keeps what `trace` held, emptied, as far as there is room.
    fn take_back(&mut self, mut trace: KeptTrace) {
        for span in trace.spans.drain(..) {
            let mut list = span.attributes.list;
            if self.attributes.len() < SPARE_LISTS {
                list.clear();
                self.attributes.push(list);
            }
        }
        // A long trace's list is left to go: the spare stay small.
        if self.spans.len() < SPARE_LISTS && trace.spans.capacity() <= SPARE_SPANS {
            self.spans.push(trace.spans);
        }
    }
}

#[derive(Debug, Default)]
struct KeptTrace {
    spans: Vec<HeldSpan>,
    bytes: usize,
    notable: bool,
    /// Spans of it not kept (past `spans_per_trace`).
    dropped: usize,
}

/// One span as kept: the SDK's own values, each text within
/// [`TEXT_CHARS`], at most [`ATTRIBUTES_PER_SPAN`] attributes and
/// [`EVENTS_PER_SPAN`] events.
#[derive(Debug)]
struct HeldSpan {
    span_id: SpanId,
    parent: SpanId,
    name: Cow<'static, str>,
    kind: SpanKind,
    service: Option<Value>,
    start: SystemTime,
    end: SystemTime,
    error: Option<Cow<'static, str>>,
    attributes: HeldAttributes,
    events: Vec<HeldEvent>,
    links: Vec<TraceId>,
}

#[derive(Debug)]
struct HeldEvent {
    name: Cow<'static, str>,
    at: SystemTime,
    attributes: HeldAttributes,
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
                // Room for twice the traces kept: a full map that keeps
                // taking new traces and dropping old ones is rehashed
                // whenever its removed entries fill the room left.
                traces: HashMap::with_capacity_and_hasher(
                    2 * (limits.traces + limits.notable_traces),
                    foldhash::fast::RandomState::default(),
                ),
                recent: VecDeque::with_capacity(limits.traces + 1),
                notable: VecDeque::with_capacity(limits.notable_traces + 1),
                bytes: 0,
                dropped_spans: 0,
                calls: HashMap::new(),
                call_pairs: 0,
                spare: Spare::default(),
            })),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `span` (bounded, see the module's notes).
    pub fn keep(&self, span: &SpanData) {
        let trace_id = span.span_context.trace_id();
        let mut ring = self.ring();
        let held = HeldSpan::of(span, ring.spare.attributes.pop());
        ring.keep(trace_id, held);
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
            .map(|(id, trace)| trace.summary(*id))
            .filter(|summary| include(summary))
            .collect();
        all.sort_unstable_by_key(|trace| std::cmp::Reverse(trace.start_us));
        all.truncate(limit);
        all
    }

    /// A trace's kept spans, earliest first.
    pub fn trace(&self, trace_id: &str) -> Option<Vec<KeptSpan>> {
        let id = TraceId::from_hex(trace_id).ok()?;
        let ring = self.ring();
        let mut spans: Vec<KeptSpan> = ring
            .traces
            .get(&id)?
            .spans
            .iter()
            .map(|span| span.read(id))
            .collect();
        spans.sort_by_key(|span| span.start_us);
        Some(spans)
    }

    /// The traces with a span whose attribute `key` is `value`, or that
    /// link to the trace `value` when `key` is `"link"`.
    pub fn find(&self, key: &str, value: &str) -> Vec<String> {
        let linked = (key == "link").then(|| TraceId::from_hex(value).ok());
        let ring = self.ring();
        let mut found: Vec<(SystemTime, String)> = ring
            .traces
            .iter()
            .filter(|(_, trace)| {
                trace.spans.iter().any(|span| match linked {
                    Some(linked) => linked.is_some_and(|linked| span.links.contains(&linked)),
                    None => span
                        .attributes
                        .iter()
                        .any(|kv| kv.key.as_str() == key && value_text(&kv.value) == value),
                })
            })
            .map(|(id, trace)| (trace.start(), id.to_string()))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// The values the spans kept give attribute `key`, each with its
    /// trace and the start of its first span so named, newest first, at
    /// most `limit`.
    pub fn values(&self, key: &str, limit: usize) -> Vec<(String, String, u64)> {
        let ring = self.ring();
        let mut found: HashMap<(Cow<'_, str>, TraceId), SystemTime> = HashMap::new();
        for (id, trace) in &ring.traces {
            for span in &trace.spans {
                for kv in span.attributes.iter() {
                    if kv.key.as_str() == key {
                        let start = found
                            .entry((value_text(&kv.value), *id))
                            .or_insert(span.start);
                        *start = (*start).min(span.start);
                    }
                }
            }
        }
        let mut found: Vec<(String, String, u64)> = found
            .into_iter()
            .map(|((value, id), start)| (value.into_owned(), id.to_string(), micros(start)))
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
            .flat_map(|(from, to)| {
                to.iter().map(|(to, (calls, errors))| CallCount {
                    from: from.clone(),
                    to: to.clone(),
                    calls: *calls,
                    errors: *errors,
                })
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
    fn start(&self) -> SystemTime {
        self.spans
            .iter()
            .map(|span| span.start)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn summary(&self, id: TraceId) -> TraceSummary {
        let root = self
            .spans
            .iter()
            .find(|span| span.parent == SpanId::INVALID)
            .or_else(|| self.spans.iter().min_by_key(|span| span.start));
        let start = self.start();
        let end = self
            .spans
            .iter()
            .map(|span| span.end)
            .max()
            .unwrap_or(start);
        let mut services: Vec<String> = Vec::new();
        for span in &self.spans {
            let service = span.service();
            if !service.is_empty() && !services.iter().any(|known| *known == service) {
                services.push(service.into_owned());
            }
        }
        let start_us = micros(start);
        TraceSummary {
            trace_id: id.to_string(),
            name: root.map(|span| span.name.to_string()).unwrap_or_default(),
            service: root
                .map(|span| span.service().into_owned())
                .unwrap_or_default(),
            start_us,
            duration_us: micros(end).saturating_sub(start_us),
            spans: self.spans.len() + self.dropped,
            services,
            errors: self.spans.iter().filter(|s| s.error.is_some()).count(),
            notable: self.notable,
        }
    }
}

impl Ring {
    fn keep(&mut self, trace_id: TraceId, span: HeldSpan) {
        if span.kind == SpanKind::Client {
            self.count_call(&span);
        }
        let size = span.bytes();
        let notable = span.error.is_some()
            || span.end.duration_since(span.start).unwrap_or_default() >= self.limits.slow;
        let limits = self.limits;
        let trace = match self.traces.entry(trace_id) {
            Entry::Occupied(trace) => trace.into_mut(),
            Entry::Vacant(room) => {
                self.recent.push_back(trace_id);
                room.insert(KeptTrace {
                    // Most traces have a span or two in a process.
                    spans: self
                        .spare
                        .spans
                        .pop()
                        .unwrap_or_else(|| Vec::with_capacity(2)),
                    ..KeptTrace::default()
                })
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

    fn count_call(&mut self, span: &HeldSpan) {
        let Some(to) = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.method")
            .and_then(|kv| match &kv.value {
                Value::String(method) => method.as_str().split_once('/'),
                _ => None,
            })
            .map(|(service, _)| service)
        else {
            return;
        };
        let from = span.service();
        let counted = match self
            .calls
            .get_mut(from.as_ref())
            .and_then(|called| called.get_mut(to))
        {
            Some(counted) => counted,
            None if self.call_pairs >= CALL_PAIRS => return,
            None => {
                self.call_pairs += 1;
                self.calls
                    .entry(from.into_owned())
                    .or_default()
                    .entry(to.to_owned())
                    .or_default()
            }
        };
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
                self.forget(oldest);
            }
        }
        while self.notable.len() > self.limits.notable_traces || self.bytes > self.limits.bytes {
            let Some(oldest) = self.notable.pop_front() else {
                break;
            };
            self.forget(oldest);
        }
    }

    fn forget(&mut self, trace_id: TraceId) {
        if let Some(trace) = self.traces.remove(&trace_id) {
            self.bytes -= trace.bytes;
            self.spare.take_back(trace);
        }
    }
}

/// A value's text as the dashboard shows it (a string as it is).
fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

/// `text` within [`TEXT_CHARS`]: as it is (no copy) when it fits.
#[expect(
    clippy::ptr_arg,
    reason = "a borrowed static text is kept as it is, with no copy"
)]
fn cut_text(text: &Cow<'static, str>) -> Cow<'static, str> {
    if text.len() <= TEXT_CHARS {
        text.clone()
    } else {
        Cow::Owned(crate::cut(text.to_string(), TEXT_CHARS))
    }
}

/// A span's or an event's attributes as kept: at most
/// [`ATTRIBUTES_PER_SPAN`], without the service's stamp, each text cut.
#[derive(Debug)]
struct HeldAttributes {
    list: Vec<KeyValue>,
    /// The bytes of their texts (a static text's too: an estimate).
    text_bytes: usize,
}

impl HeldAttributes {
    /// A copy as the SDK makes it (the shop's keys and most of its values
    /// are static texts: copied for nothing), cut only where a text is
    /// long, measured in the same pass.
    fn of(attributes: &[KeyValue], stamp: Option<usize>, spare: Option<Vec<KeyValue>>) -> Self {
        let mut list = spare.unwrap_or_default();
        list.extend_from_slice(&attributes[..attributes.len().min(ATTRIBUTES_PER_SPAN + 1)]);
        if let Some(stamp) = stamp.filter(|stamp| *stamp < list.len()) {
            list.remove(stamp);
        }
        list.truncate(ATTRIBUTES_PER_SPAN);
        let mut text_bytes = 0;
        for kv in &mut list {
            let key = kv.key.as_str();
            if key.len() > TEXT_CHARS {
                kv.key = Key::from(crate::cut(key.to_owned(), TEXT_CHARS));
            }
            if !fits(&kv.value) {
                kv.value = cut_long(&kv.value);
            }
            text_bytes += kv.key.as_str().len()
                + match &kv.value {
                    Value::String(text) => text.as_str().len(),
                    _ => 0,
                };
        }
        Self { list, text_bytes }
    }

    /// What they hold in memory, roughly.
    fn bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<KeyValue>() + self.text_bytes
    }

    fn iter(&self) -> std::slice::Iter<'_, KeyValue> {
        self.list.iter()
    }
}

/// Whether `value` is kept as it is: a text within [`TEXT_CHARS`], or a
/// number or a flag.
fn fits(value: &Value) -> bool {
    match value {
        Value::String(text) => text.as_str().len() <= TEXT_CHARS,
        Value::Bool(_) | Value::I64(_) | Value::F64(_) => true,
        _ => false,
    }
}

/// A value that does not [`fits`], as its text, cut.
fn cut_long(value: &Value) -> Value {
    Value::String(crate::cut(value.to_string(), TEXT_CHARS).into())
}

/// A value within [`TEXT_CHARS`]: as it is when it fits (a static or
/// shared text is not copied), else its text, cut.
fn cut_value(value: &Value) -> Value {
    if fits(value) {
        value.clone()
    } else {
        cut_long(value)
    }
}

fn pairs(attributes: &HeldAttributes) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            (
                kv.key.as_str().to_owned(),
                value_text(&kv.value).into_owned(),
            )
        })
        .collect()
}

fn micros(at: SystemTime) -> u64 {
    crate::micros_since_epoch(at)
}

impl HeldSpan {
    /// `span` as kept, its attributes in `spare` when there is one (an
    /// emptied list of a forgotten span).
    fn of(span: &SpanData, spare: Option<Vec<KeyValue>>) -> Self {
        let stamp = span
            .attributes
            .iter()
            .position(|kv| kv.key.as_str() == SERVICE_STAMP);
        Self {
            span_id: span.span_context.span_id(),
            parent: span.parent_span_id,
            name: cut_text(&span.name),
            kind: span.span_kind.clone(),
            service: stamp.map(|at| cut_value(&span.attributes[at].value)),
            start: span.start_time,
            end: span.end_time,
            error: match &span.status {
                Status::Error { description } => Some(cut_text(description)),
                _ => None,
            },
            attributes: HeldAttributes::of(&span.attributes, stamp, spare),
            // Most spans have neither events nor links: no iterator made.
            events: if span.events.is_empty() {
                Vec::new()
            } else {
                span.events
                    .iter()
                    .take(EVENTS_PER_SPAN)
                    .map(|event| HeldEvent {
                        name: cut_text(&event.name),
                        at: event.timestamp,
                        attributes: HeldAttributes::of(&event.attributes, None, None),
                    })
                    .collect()
            },
            links: if span.links.is_empty() {
                Vec::new()
            } else {
                span.links
                    .iter()
                    .take(4)
                    .map(|link| link.span_context.trace_id())
                    .collect()
            },
        }
    }

    /// The shop service that made it, or nothing.
    fn service(&self) -> Cow<'_, str> {
        self.service.as_ref().map_or(Cow::Borrowed(""), value_text)
    }

    /// What it holds in memory, roughly: its allocations and a fixed part.
    fn bytes(&self) -> usize {
        let owned = |text: &Cow<'static, str>| match text {
            Cow::Owned(text) => text.capacity(),
            Cow::Borrowed(_) => 0,
        };
        std::mem::size_of::<Self>()
            + 64
            + owned(&self.name)
            + self.error.as_ref().map_or(0, owned)
            + self.attributes.bytes()
            + self.events.capacity() * std::mem::size_of::<HeldEvent>()
            + self
                .events
                .iter()
                .map(|event| owned(&event.name) + event.attributes.bytes())
                .sum::<usize>()
            + self.links.capacity() * std::mem::size_of::<TraceId>()
    }

    /// The span as the dashboard reads it.
    fn read(&self, trace_id: TraceId) -> KeptSpan {
        let start_us = micros(self.start);
        KeptSpan {
            trace_id: trace_id.to_string(),
            span_id: self.span_id.to_string(),
            parent_span_id: if self.parent == SpanId::INVALID {
                String::new()
            } else {
                self.parent.to_string()
            },
            name: self.name.to_string(),
            kind: match self.kind {
                SpanKind::Server => "server",
                SpanKind::Client => "client",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
                SpanKind::Internal => "internal",
            },
            service: self.service().into_owned(),
            start_us,
            duration_us: micros(self.end).saturating_sub(start_us),
            error: self.error.as_ref().map(ToString::to_string),
            attributes: pairs(&self.attributes),
            events: self
                .events
                .iter()
                .map(|event| KeptEvent {
                    name: event.name.to_string(),
                    at_us: micros(event.at),
                    attributes: pairs(&event.attributes),
                })
                .collect(),
            links: self.links.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The span processor that keeps every ended (sampled) span.
#[derive(Debug)]
pub(super) struct Keeping(pub KeptTraces);

impl Keeping {
    /// Keeps `span` if it was sampled (the exporter gets the span itself).
    pub(super) fn keep(&self, span: &SpanData) {
        if span.span_context.is_sampled() {
            self.0.keep(span);
        }
    }
}

impl SpanProcessor for Keeping {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.keep(&span);
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

    fn span(trace: usize, n: usize, error: bool, size: usize) -> SpanData {
        let started = SystemTime::UNIX_EPOCH + Duration::from_micros((trace * 1000 + n) as u64);
        SpanData {
            span_context: opentelemetry::trace::SpanContext::new(
                TraceId::from(trace as u128 + 1),
                SpanId::from(n as u64 + 1),
                opentelemetry::trace::TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent_span_id: if n == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(1)
            },
            parent_span_is_remote: false,
            span_kind: if n % 2 == 1 {
                SpanKind::Client
            } else {
                SpanKind::Server
            },
            name: "shop.catalog.v1.CatalogService/GetProduct".into(),
            start_time: started,
            end_time: started + Duration::from_micros(100),
            attributes: vec![
                KeyValue::new(SERVICE_STAMP, "catalog"),
                KeyValue::new("rpc.method", "shop.catalog.v1.StockService/ReserveStock"),
                KeyValue::new("padding", "x".repeat(size)),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: if error {
                Status::error("internal")
            } else {
                Status::Unset
            },
            instrumentation_scope: Default::default(),
        }
    }

    fn trace_id(trace: usize) -> String {
        TraceId::from(trace as u128 + 1).to_string()
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
        kept.keep(&span(0, 0, true, 10));
        for trace in 1..20_000 {
            for n in 0..3 {
                kept.keep(&span(trace, n, false, 200));
            }
        }
        // One trace of far too many spans, each as large as kept.
        for n in 0..10_000 {
            kept.keep(&span(20_000, n, false, TEXT_CHARS));
        }
        let usage = kept.usage();
        assert!(usage.bytes <= limits.bytes, "{usage:?}");
        assert!(
            usage.traces <= limits.traces + limits.notable_traces,
            "{usage:?}"
        );
        assert!(kept.trace(&trace_id(20_000)).is_some_and(|s| s.len() == 20));
        assert!(usage.dropped_spans >= 9_980, "{usage:?}");
        assert!(
            kept.trace(&trace_id(0)).is_some(),
            "the failed trace outlives 20,000 ordinary ones"
        );
        let newest = kept.recent(5, |_| true);
        assert_eq!(newest.len(), 5);
        assert_eq!(newest[0].trace_id, trace_id(20_000));
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
    fn spans_are_read_back_as_they_were_kept() {
        let kept = KeptTraces::default();
        let mut linking = span(7, 0, false, 3);
        linking
            .attributes
            .push(KeyValue::new("shop.order_id", "o-1"));
        linking
            .links
            .links
            .push(opentelemetry::trace::Link::with_context(
                span(3, 0, false, 0).span_context,
            ));
        kept.keep(&linking);
        kept.keep(&span(7, 1, true, 3));
        let spans = kept.trace(&trace_id(7)).unwrap_or_default();
        assert_eq!(spans.len(), 2);
        let root = &spans[0];
        assert_eq!(root.parent_span_id, "");
        assert_eq!(root.span_id, SpanId::from(1).to_string());
        assert_eq!(root.kind, "server");
        assert_eq!(root.service, "catalog");
        assert_eq!(root.duration_us, 100);
        assert_eq!(root.links, vec![trace_id(3)]);
        assert!(
            root.attributes.iter().all(|(key, _)| key != SERVICE_STAMP),
            "the service's stamp is the span's service, not an attribute"
        );
        assert_eq!(spans[1].error.as_deref(), Some("internal"));
        assert_eq!(kept.find("shop.order_id", "o-1"), vec![trace_id(7)]);
        assert_eq!(kept.find("link", &trace_id(3)), vec![trace_id(7)]);
        assert!(kept.find("link", "not a trace id").is_empty());
        assert_eq!(
            kept.values("shop.order_id", 10),
            vec![("o-1".to_owned(), trace_id(7), root.start_us)]
        );
        assert!(kept.trace("not a trace id").is_none());
        let summary = &kept.recent(1, |_| true)[0];
        assert_eq!((summary.spans, summary.errors), (2, 1));
        assert!(summary.notable, "a failed span makes its trace notable");
        assert_eq!(kept.calls()[0].errors, 1);
    }

    #[test]
    fn long_texts_are_cut_on_a_character() {
        let cut = cut_text(&Cow::Owned("é".repeat(TEXT_CHARS)));
        assert!(cut.len() <= TEXT_CHARS + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
