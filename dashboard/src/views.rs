//! What the kept traces and log lines show: the traces (filtered), one
//! trace with its log lines and orders, an order's saga read from the
//! spans of its steps, the log's tail.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use shop_kit::observe::{kept_logs::KeptLine, traces::KeptSpan};

type Shared = State<Arc<crate::State>>;

/// Lines, traces and orders answered at most at once.
const MOST: usize = 500;

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceQuery {
    /// Only traces this service took part in.
    service: Option<String>,
    /// Only traces with an error.
    errors: bool,
    /// Only traces whose root's name holds this.
    q: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/traces`: the newest kept traces first.
pub async fn traces(State(state): Shared, Query(query): Query<TraceQuery>) -> Json<Value> {
    let limit = query.limit.unwrap_or(100).min(MOST);
    let found = state.sources.traces.recent(limit, |trace| {
        query
            .service
            .as_deref()
            .is_none_or(|s| s.is_empty() || trace.services.iter().any(|t| t == s))
            && (!query.errors || trace.errors > 0)
            && query
                .q
                .as_deref()
                .is_none_or(|q| trace.name.to_lowercase().contains(&q.to_lowercase()))
    });
    Json(json!({ "traces": found, "kept": state.sources.traces.usage() }))
}

/// `GET /api/traces/{trace_id}`: its spans, its log lines, its orders.
pub async fn trace(State(state): Shared, Path(trace_id): Path<String>) -> Response {
    let Some(spans) = state.sources.traces.trace(&trace_id) else {
        return not_found(format!(
            "trace {trace_id} is not kept (never made, or pushed out by newer ones)"
        ));
    };
    let mut orders: Vec<&str> = Vec::new();
    for span in &spans {
        if let Some(order) = attribute(span, ORDER_ID)
            && !orders.contains(&order)
        {
            orders.push(order);
        }
    }
    let logs = state
        .sources
        .logs
        .tail(MOST, |line| line.trace_id == trace_id);
    Json(json!({ "traceId": trace_id, "spans": spans, "logs": logs, "orders": orders }))
        .into_response()
}

fn attribute<'a>(span: &'a KeptSpan, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `GET /api/orders`: the orders whose sagas the kept traces show, newest
/// first. Each kept trace is read once, however many orders it carries.
pub async fn orders(State(state): Shared) -> Json<Value> {
    let kept = &state.sources.traces;
    // Each order with its traces, the newest order first.
    let mut listed: Vec<(String, Vec<String>, u64)> = Vec::new();
    for (order, trace_id, start_us) in kept.values(ORDER_ID, usize::MAX) {
        match listed.iter().position(|(known, ..)| *known == order) {
            Some(at) => listed[at].1.push(trace_id),
            None if listed.len() < MOST => listed.push((order, vec![trace_id], start_us)),
            None => {}
        }
    }
    let mut spans_of: HashMap<&str, Vec<KeptSpan>> = HashMap::new();
    for (_, traces, _) in &listed {
        for trace_id in traces {
            spans_of
                .entry(trace_id.as_str())
                .or_insert_with(|| kept.trace(trace_id).unwrap_or_default());
        }
    }
    let orders: Vec<Value> = listed
        .iter()
        .map(|(order, traces, start_us)| {
            let mut steps: Vec<&KeptSpan> = traces
                .iter()
                .filter_map(|trace_id| spans_of.get(trace_id.as_str()))
                .flat_map(|spans| steps_of(spans, order))
                .collect();
            steps.sort_by_key(|step| step.start_us);
            json!({
                "orderId": order,
                "traceId": traces[0],
                "startUs": start_us,
                "ended": ended(steps.iter().copied()),
                "steps": steps.len(),
            })
        })
        .collect();
    Json(json!({ "orders": orders }))
}

/// The attribute naming a saga step's order.
const ORDER_ID: &str = "shop.order.id";

/// The spans among `spans` that are steps of `order`'s saga.
fn steps_of<'a>(
    spans: &'a [KeptSpan],
    order: &'a str,
) -> impl DoubleEndedIterator<Item = &'a KeptSpan> {
    spans
        .iter()
        .filter(move |span| attribute(span, ORDER_ID) == Some(order))
}

/// How a saga whose steps are `steps` (earliest first) ended, if it has.
fn ended<'a>(steps: impl DoubleEndedIterator<Item = &'a KeptSpan>) -> Option<String> {
    steps
        .filter_map(|step| attribute(step, "saga.next"))
        .rfind(|next| next.starts_with("finish"))
        .map(|next| next.trim_start_matches("finish: ").to_owned())
}

/// `GET /api/orders/{order_id}`: its saga as a timeline.
pub async fn saga(State(state): Shared, Path(order_id): Path<String>) -> Response {
    let saga = saga_of(&state, &order_id);
    if saga["steps"].as_array().is_none_or(Vec::is_empty) {
        return not_found(format!(
            "no saga step of order {order_id} is kept (no such order, traces were off, or newer traces pushed its out)"
        ));
    }
    Json(saga).into_response()
}

/// An order's saga from the spans of its steps: each step with its
/// attempt, outcome and the calls it made; the events its trace carried
/// (consumers); how it ended, and the log lines that say why.
fn saga_of(state: &crate::State, order_id: &str) -> Value {
    let traces = state.sources.traces.find(ORDER_ID, order_id);
    let mut spans: Vec<KeptSpan> = traces
        .iter()
        .filter_map(|id| state.sources.traces.trace(id))
        .flatten()
        .collect();
    spans.sort_by_key(|span| span.start_us);
    let children = |parent: &KeptSpan| -> Vec<Value> {
        spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
            .map(|call| {
                json!({
                    "name": call.name,
                    "kind": call.kind,
                    "service": call.service,
                    "durationUs": call.duration_us,
                    "code": attribute(call, "rpc.response.status_code"),
                    "error": call.error,
                })
            })
            .collect()
    };
    let steps: Vec<Value> = steps_of(&spans, order_id)
        .map(|step| {
            json!({
                "step": attribute(step, "saga.step"),
                "attempt": attribute(step, "saga.attempt"),
                "outcome": attribute(step, "saga.outcome"),
                "next": attribute(step, "saga.next"),
                "service": step.service,
                "startUs": step.start_us,
                "durationUs": step.duration_us,
                "error": step.error,
                "traceId": step.trace_id,
                "spanId": step.span_id,
                "calls": children(step),
            })
        })
        .collect();
    let placed = spans
        .iter()
        .find(|span| span.kind == "server" && span.name.ends_with("/CreateOrder"))
        .map(|span| {
            json!({
                "name": span.name, "service": span.service, "startUs": span.start_us,
                "durationUs": span.duration_us, "traceId": span.trace_id,
            })
        });
    let events: Vec<Value> = spans
        .iter()
        .filter(|span| span.kind == "consumer")
        .map(|span| json!({ "name": span.name, "service": span.service, "startUs": span.start_us, "durationUs": span.duration_us, "error": span.error }))
        .collect();
    let ended = ended(steps_of(&spans, order_id));
    let logs: Vec<KeptLine> = state.sources.logs.tail(MOST, |line| {
        traces.contains(&line.trace_id)
            || line
                .fields
                .iter()
                .any(|(k, v)| k == "order" && v == order_id)
    });
    json!({
        "orderId": order_id,
        "traces": traces,
        "placed": placed,
        "steps": steps,
        "events": events,
        "ended": ended,
        "logs": logs,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogQuery {
    service: Option<String>,
    /// The least severe level shown: error, warn, info, debug, trace.
    level: Option<String>,
    trace: Option<String>,
    /// Only lines whose message or fields hold this.
    q: Option<String>,
    /// Only lines after this sequence number (to follow the tail).
    after: Option<u64>,
    limit: Option<usize>,
}

fn severity(level: &str) -> u8 {
    match level.to_ascii_uppercase().as_str() {
        "ERROR" => 5,
        "WARN" => 4,
        "INFO" => 3,
        "DEBUG" => 2,
        _ => 1,
    }
}

/// `GET /api/logs`: the tail of the log, filtered.
pub async fn logs(State(state): Shared, Query(query): Query<LogQuery>) -> Json<Value> {
    let least = query
        .level
        .as_deref()
        .filter(|l| !l.is_empty())
        .map_or(0, severity);
    let q = query.q.as_deref().unwrap_or_default().to_lowercase();
    let lines = state
        .sources
        .logs
        .tail(query.limit.unwrap_or(200).min(MOST), |line| {
            query
                .service
                .as_deref()
                .is_none_or(|s| s.is_empty() || line.service == s)
                && severity(line.level) >= least
                && query
                    .trace
                    .as_deref()
                    .is_none_or(|t| t.is_empty() || line.trace_id == t)
                && query.after.is_none_or(|after| line.seq > after)
                && (q.is_empty()
                    || line.message.to_lowercase().contains(&q)
                    || line
                        .fields
                        .iter()
                        .any(|(_, v)| v.to_lowercase().contains(&q)))
        });
    Json(json!({ "lines": lines }))
}

/// `GET /api/usage`: what the kept traces and lines hold.
pub async fn usage(State(state): Shared) -> Json<Value> {
    let (lines, bytes) = state.sources.logs.usage();
    Json(json!({
        "traces": state.sources.traces.usage(),
        "logs": { "lines": lines, "bytes": bytes },
    }))
}
