//! The services live: once a second the process's metrics (its own
//! handle, as `/metrics` renders them), the kept traces' call counts and
//! each service's readiness are read into one snapshot, sent to every
//! open page over SSE. Rates come from the last ten seconds, latencies
//! from the last minute (the differences of the histograms' buckets);
//! a minute of samples is kept, no more.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::State,
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use serde_json::{Value as Json, json};
use shop_kit::{Shutdown, observe::traces::CallCount};
use tokio::sync::watch;

use crate::{
    Sources,
    contract::Contract,
    prometheus_text::{Sample, quantile, samples},
};

const EVERY: Duration = Duration::from_secs(1);
/// Samples kept: a minute's.
const KEPT: usize = 61;
/// The window of rates, in samples.
const RATE_WINDOW: usize = 10;

const CALL_DURATION: &str = "rpc_server_call_duration_seconds";

/// The latest snapshot, as JSON text.
#[derive(Clone)]
pub struct Live {
    latest: watch::Receiver<Arc<String>>,
    shutdown: Shutdown,
}

/// One RPC's counts at one moment: calls by code, and the duration
/// histogram's cumulative buckets summed over protocols and codes.
#[derive(Clone, Debug, Default)]
struct RpcCounts {
    by_code: BTreeMap<String, f64>,
    buckets: BTreeMap<u64, f64>,
}

impl RpcCounts {
    fn calls(&self) -> f64 {
        self.by_code.values().sum()
    }
}

/// What one sample read.
struct Taken {
    at: Instant,
    /// `package.Service/Method` to its counts.
    rpcs: HashMap<String, RpcCounts>,
    calls: Vec<CallCount>,
}

impl Live {
    pub fn start(sources: &Sources, contract: &Contract, shutdown: &Shutdown) -> Self {
        let (send, latest) = watch::channel(Arc::new(String::from("{}")));
        let sampler = Sampler {
            sources: sources.clone(),
            owner: contract.owner.clone(),
            declared: contract.declared.clone(),
            history: VecDeque::new(),
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut sampler = sampler;
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = stop.requested() => break,
                    _ = tick.tick() => {}
                }
                let snapshot = sampler.take().await;
                if send.send(Arc::new(snapshot.to_string())).is_err() {
                    break;
                }
            }
        });
        Self {
            latest,
            shutdown: shutdown.clone(),
        }
    }
}

struct Sampler {
    sources: Sources,
    owner: BTreeMap<String, &'static str>,
    declared: Vec<(String, &'static str)>,
    history: VecDeque<Taken>,
}

impl Sampler {
    async fn take(&mut self) -> Json {
        let read = samples(&self.sources.metrics.render());
        let taken = Taken {
            at: Instant::now(),
            rpcs: rpc_counts(&read),
            calls: self.sources.traces.calls(),
        };
        self.history.push_back(taken);
        while self.history.len() > KEPT {
            self.history.pop_front();
        }
        let mut services = Vec::new();
        for shown in &self.sources.services {
            let ready = shown.readiness.check().await;
            services.push(self.service(shown, &read, ready));
        }
        let methods = self.methods();
        let flow = self.flow(&services);
        let (lines, log_bytes) = self.sources.logs.usage();
        json!({
            "at": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            "services": services,
            "methods": methods,
            "flow": flow,
            "kept": {
                "traces": self.sources.traces.usage(),
                "logLines": lines,
                "logBytes": log_bytes,
            },
        })
    }

    fn newest(&self) -> Option<&Taken> {
        self.history.back()
    }

    /// The sample `n` samples before the newest (or the oldest kept).
    fn before(&self, n: usize) -> Option<&Taken> {
        let len = self.history.len();
        self.history.get(len.saturating_sub(n + 1))
    }

    /// Per RPC: calls, calls per second, p50/p99 over the kept minute.
    fn methods(&self) -> BTreeMap<String, Json> {
        let (Some(now), Some(then), Some(first)) = (
            self.newest(),
            self.before(RATE_WINDOW),
            self.history.front(),
        ) else {
            return BTreeMap::new();
        };
        now.rpcs
            .iter()
            .map(|(rpc, counts)| {
                let (p50, p99) = latency(counts, first.rpcs.get(rpc), now.at == first.at);
                let errors: BTreeMap<&String, f64> = counts
                    .by_code
                    .iter()
                    .filter(|(code, n)| *code != "ok" && **n > 0.0)
                    .map(|(code, n)| (code, *n))
                    .collect();
                (
                    rpc.clone(),
                    json!({
                        "calls": counts.calls(),
                        "rps": rate(counts.calls(), then.rpcs.get(rpc).map_or(0.0, RpcCounts::calls), now.at - then.at),
                        "p50Ms": p50,
                        "p99Ms": p99,
                        "errors": errors,
                    }),
                )
            })
            .collect()
    }

    fn service(
        &self,
        shown: &crate::ShownService,
        read: &[Sample],
        ready: Result<(), String>,
    ) -> Json {
        let mut calls = 0.0;
        let mut calls_then = 0.0;
        let mut window = RpcCounts::default();
        let mut window_start = RpcCounts::default();
        let mut errors: BTreeMap<String, f64> = BTreeMap::new();
        let (now, then, first) = (
            self.newest(),
            self.before(RATE_WINDOW),
            self.history.front(),
        );
        for (rpc, counts) in now.map(|t| &t.rpcs).into_iter().flatten() {
            if !owned_by(rpc, shown) {
                continue;
            }
            calls += counts.calls();
            calls_then += then
                .and_then(|t| t.rpcs.get(rpc))
                .map_or(0.0, RpcCounts::calls);
            add(&mut window, counts);
            if let Some(start) = first.and_then(|t| t.rpcs.get(rpc)) {
                add(&mut window_start, start);
            }
            for (code, n) in &counts.by_code {
                if code != "ok" && *n > 0.0 {
                    *errors.entry(code.clone()).or_default() += n;
                }
            }
        }
        let same = matches!((now, first), (Some(a), Some(b)) if a.at == b.at);
        let (p50, p99) = latency(&window, Some(&window_start), same);
        let elapsed = match (now, then) {
            (Some(now), Some(then)) => now.at - then.at,
            _ => Duration::ZERO,
        };
        let admission: Vec<Json> = shown
            .rpc_services
            .iter()
            .filter_map(|rpc| {
                let limit = gauge(read, "shop_admission_limit", "service", rpc)?;
                Some(json!({
                    "rpcService": rpc,
                    "limit": limit,
                    "inFlight": gauge(read, "shop_admission_in_flight", "service", rpc),
                    "queued": gauge(read, "shop_admission_queued", "service", rpc),
                    "refused": sum(read, "shop_admission_refused_total", "service", rpc),
                }))
            })
            .collect();
        // How its callers see it: the kit's clients, per downstream named
        // for it (`users`, `users-keys`).
        let downstreams: Vec<String> = read
            .iter()
            .filter(|s| s.name == "shop_downstream_endpoints")
            .filter_map(|s| s.label("downstream"))
            .filter(|d| *d == shown.name || d.starts_with(&format!("{}-", shown.name)))
            .map(str::to_owned)
            .collect();
        let peers: Vec<Json> = downstreams
            .iter()
            .map(|downstream| {
                json!({
                    "downstream": downstream,
                    "endpoints": gauge(read, "shop_downstream_endpoints", "downstream", downstream),
                    "serving": sum(read, "shop_downstream_endpoint_serving", "downstream", downstream),
                    "breakerOpen": gauge(read, "shop_downstream_breaker_open", "downstream", downstream).unwrap_or(0.0) > 0.0,
                    "retries": sum(read, "shop_downstream_retries_total", "downstream", downstream),
                    "hedges": sum(read, "shop_downstream_hedges_total", "downstream", downstream),
                    "shed": sum(read, "shop_downstream_shed_total", "downstream", downstream),
                })
            })
            .collect();
        json!({
            "name": shown.name,
            "url": shown.url,
            "ready": ready.is_ok(),
            "why": ready.err(),
            "rpcServices": shown.rpc_services,
            "calls": calls,
            "rps": rate(calls, calls_then, elapsed),
            "p50Ms": p50,
            "p99Ms": p99,
            "errors": errors,
            "admission": admission,
            "peers": peers,
        })
    }

    /// The services as nodes, and the calls between them as edges: those
    /// the kept traces counted (with their rates) and those the contract
    /// declares (a caller rule naming a service), traffic or not.
    fn flow(&self, services: &[Json]) -> Json {
        let (now, then) = (self.newest(), self.before(RATE_WINDOW));
        let elapsed = match (now, then) {
            (Some(now), Some(then)) => now.at - then.at,
            _ => Duration::ZERO,
        };
        let mut edges: BTreeMap<(String, String), (f64, f64, f64, bool)> = BTreeMap::new();
        for call in now.map(|t| t.calls.as_slice()).unwrap_or_default() {
            let Some(&to) = self.owner.get(&call.to) else {
                continue;
            };
            let before = then
                .and_then(|t| {
                    t.calls
                        .iter()
                        .find(|c| c.from == call.from && c.to == call.to)
                })
                .map_or(0.0, |c| c.calls as f64);
            let edge = edges.entry((call.from.clone(), to.to_owned())).or_default();
            edge.0 += call.calls as f64;
            edge.1 += call.errors as f64;
            edge.2 += rate(call.calls as f64, before, elapsed);
        }
        for (from, to) in &self.declared {
            edges.entry((from.clone(), (*to).to_owned())).or_default().3 = true;
        }
        // What no service of the shop called came from outside.
        for service in services {
            let name = service["name"].as_str().unwrap_or_default().to_owned();
            let inside: f64 = edges
                .iter()
                .filter(|((from, to), _)| *to == name && *from != "clients")
                .map(|(_, e)| e.2)
                .sum();
            let outside =
                ((service["rps"].as_f64().unwrap_or(0.0) - inside).max(0.0) * 10.0).round() / 10.0;
            edges.insert(("clients".to_owned(), name), (0.0, 0.0, outside, false));
        }
        let mut nodes = vec!["clients".to_owned()];
        nodes.extend(self.sources.services.iter().map(|s| s.name.to_owned()));
        json!({
            "nodes": nodes,
            "edges": edges.into_iter().map(|((from, to), (calls, errors, rps, declared))| json!({
                "from": from, "to": to, "calls": calls, "errors": errors,
                "rps": (rps * 10.0).round() / 10.0, "declared": declared,
            })).collect::<Vec<_>>(),
        })
    }
}

fn owned_by(rpc: &str, shown: &crate::ShownService) -> bool {
    rpc.split_once('/')
        .is_some_and(|(service, _)| shown.rpc_services.iter().any(|s| s == service))
}

fn add(into: &mut RpcCounts, counts: &RpcCounts) {
    for (code, n) in &counts.by_code {
        *into.by_code.entry(code.clone()).or_default() += n;
    }
    for (le, n) in &counts.buckets {
        *into.buckets.entry(*le).or_default() += n;
    }
}

/// p50 and p99 in milliseconds of what `now` counted since `start` (all of
/// it when they are the same sample).
fn latency(now: &RpcCounts, start: Option<&RpcCounts>, same: bool) -> (Option<f64>, Option<f64>) {
    let buckets: Vec<(f64, f64)> = now
        .buckets
        .iter()
        .map(|(le, n)| {
            let before = if same {
                0.0
            } else {
                start
                    .and_then(|s| s.buckets.get(le))
                    .copied()
                    .unwrap_or(0.0)
            };
            (f64::from_bits(*le), n - before)
        })
        .collect();
    let ms = |q| quantile(q, &buckets).map(|s| (s * 1000.0 * 100.0).round() / 100.0);
    (ms(0.5), ms(0.99))
}

fn rate(now: f64, then: f64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    (((now - then).max(0.0) / elapsed.as_secs_f64()) * 10.0).round() / 10.0
}

/// Each RPC's counts in `read` (health and reflection included; the
/// views keep what they show).
fn rpc_counts(read: &[Sample]) -> HashMap<String, RpcCounts> {
    let mut rpcs: HashMap<String, RpcCounts> = HashMap::new();
    let bucket = format!("{CALL_DURATION}_bucket");
    let count = format!("{CALL_DURATION}_count");
    for sample in read {
        let (Some(service), Some(method)) = (sample.label("service"), sample.label("method"))
        else {
            continue;
        };
        let key = format!("{service}/{method}");
        if sample.name == bucket {
            let Some(le) = sample.label("le").and_then(|le| match le {
                "+Inf" => Some(f64::INFINITY),
                number => number.parse::<f64>().ok(),
            }) else {
                continue;
            };
            // Ordered by bound: the bits of a positive float sort as it does.
            *rpcs
                .entry(key)
                .or_default()
                .buckets
                .entry(le.to_bits())
                .or_default() += sample.value;
        } else if sample.name == count {
            let code = sample.label("code").unwrap_or("unknown").to_owned();
            *rpcs
                .entry(key)
                .or_default()
                .by_code
                .entry(code)
                .or_default() += sample.value;
        }
    }
    rpcs
}

fn gauge(read: &[Sample], name: &str, key: &str, value: &str) -> Option<f64> {
    read.iter()
        .find(|s| s.name == name && s.label(key) == Some(value))
        .map(|s| s.value)
}

fn sum(read: &[Sample], name: &str, key: &str, value: &str) -> f64 {
    read.iter()
        .filter(|s| s.name == name && s.label(key) == Some(value))
        .map(|s| s.value)
        .sum()
}

/// `GET /api/overview`: the latest snapshot.
pub async fn overview(State(state): State<Arc<crate::State>>) -> impl IntoResponse {
    let latest = state.live.latest.borrow().clone();
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        latest.as_str().to_owned(),
    )
}

/// `GET /api/live`: each snapshot as an SSE event, until the shop stops.
pub async fn stream(
    State(state): State<Arc<crate::State>>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let shutdown = state.live.shutdown.clone();
    let snapshots = tokio_stream::wrappers::WatchStream::new(state.live.latest.clone())
        .map(|snapshot| Ok(Event::default().event("live").data(snapshot.as_str())))
        .take_until(async move { shutdown.requested().await });
    Sse::new(snapshots).keep_alive(KeepAlive::default())
}
