//! Traces over OTLP: a span per RPC (server and client, every protocol),
//! the work a call causes as its children, context carried across calls,
//! the outbox and the saga by the OpenTelemetry propagators.
//!
//! Off unless an OTLP endpoint is configured, by the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_TRACES_SAMPLER(_ARG)`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
//! `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `OTEL_EXPORTER_OTLP_(TRACES_)
//! TIMEOUT`, `OTEL_SDK_DISABLED`) or their flags. Off, the serving and
//! client stacks make no span at all. Spans are written to OTLP by the
//! kit itself (`otlp`: far cheaper per span than `opentelemetry-otlp`).
//!
//! An RPC's span (server and client) is an OpenTelemetry span, made with
//! the SDK's tracer directly: one is made on every traced call, and going
//! through `tracing` cost more than the span. The work inside a call
//! (saga steps, password hashing, a consumer's batch) uses `tracing` spans
//! of the target [`TARGET`], made into OpenTelemetry spans by
//! `tracing-opentelemetry`, which finds the RPC's span as the current
//! OpenTelemetry context; database statements are SDK spans made after the
//! fact. The log lines never show spans (they name their trace by id
//! instead, see `telemetry`).

mod export;
mod kept;
pub use kept::{CallCount, KeptEvent, KeptLimits, KeptSpan, KeptTraces, KeptUsage, TraceSummary};
mod otlp;
pub use otlp::SendError;
mod propagate;
mod rpc_spans;
mod sampling;
mod service;
mod statements;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use crate::metrics::Metrics;

pub(crate) use propagate::current_context;
pub use propagate::{annotate, consumer_span, continuing_span, current_traceparent, work_span};
pub use rpc_spans::{RpcSystem, RpcTrace, client_trace, server_trace};
pub use service::{carried, carried_blocking, in_service, serving_as, with_current_service};
pub use statements::record_statement;

/// The target of every span made for traces (never logged).
pub const TARGET: &str = "shop::trace";

/// The variable that names the traces endpoint alone (used as it is).
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRUST: std::sync::OnceLock<TraceTrust> = std::sync::OnceLock::new();
/// The tracer, for the spans made without `tracing` (RPCs, SQL statements).
static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::Tracer> = std::sync::OnceLock::new();

/// Whether traces are being made (an exporter is installed).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The service the current work belongs to, if known (for log lines).
pub(crate) fn current_service() -> Option<&'static str> {
    service::of(&current_context())
}

/// Whose trace an incoming call may continue.
fn trust() -> TraceTrust {
    TRUST.get().copied().unwrap_or_default()
}

/// How traces are exported and sampled.
#[derive(Clone, Debug, Default)]
pub struct TraceConfig {
    /// Send traces to this OTLP endpoint, e.g. http://127.0.0.1:4317
    /// (grpc) or http://127.0.0.1:4318 (http/protobuf, `/v1/traces` is
    /// appended). Traces are off unless this or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
    pub endpoint: Option<String>,

    /// The OTLP transport.
    pub protocol: OtlpProtocol,

    /// Sample this share of new traces, 0 to 1 (a caller's decision is
    /// followed); instead of OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG,
    /// whose default is every trace.
    pub sample_ratio: Option<f64>,

    /// Whose incoming trace context a call continues: `services` (a caller
    /// with a shop service's client certificate or service token), `all`,
    /// or `none`. Other callers start a new trace linked to theirs.
    pub trust: TraceTrust,

    /// Keep the last traces in the process too (a local dashboard reads
    /// them): traces are then made even with no endpoint.
    pub keep: Option<KeptTraces>,
}

/// OTLP transports (`OTEL_EXPORTER_OTLP_PROTOCOL`'s values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    #[default]
    Grpc,
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Every transport with its name (the variable's values).
    pub const NAMED: [(&'static str, Self); 2] =
        [("grpc", Self::Grpc), ("http/protobuf", Self::HttpProtobuf)];
}

impl TraceTrust {
    /// Every choice with its name.
    pub const NAMED: [(&'static str, Self); 3] = [
        ("services", Self::Services),
        ("all", Self::All),
        ("none", Self::None),
    ];
}

/// A named choice read from text (a flag or a variable).
fn named<T: Copy>(named: &[(&'static str, T)], text: &str, what: &str) -> Result<T, String> {
    named
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<_> = named.iter().map(|(name, _)| *name).collect();
            format!("{text}: not {what} ({})", names.join(", "))
        })
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        named(&Self::NAMED, text, "an OTLP protocol")
    }
}

impl std::str::FromStr for TraceTrust {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        named(&Self::NAMED, text, "a trace trust")
    }
}

/// Whose trace context is continued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceTrust {
    /// The shop's own services (client certificate or service token).
    #[default]
    Services,
    /// Every caller.
    All,
    /// Nobody: every call starts a trace (linked to the caller's).
    None,
}

/// A sampling share from text: 0 to 1.
pub fn sample_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("{text}: a share from 0 to 1, e.g. 0.01")),
    }
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("the OTLP exporter: {0}")]
    Exporter(#[from] otlp::SendError),
    #[error("traces are exported on the async runtime: install them inside it")]
    NoRuntime,
}

impl TraceConfig {
    /// What the standard variables alone say (for programs without flags,
    /// e.g. the benchmark's servers); a value that is none of the choices
    /// is an error, named with its variable.
    pub fn from_env() -> Result<Self, String> {
        fn var<T: std::str::FromStr<Err = String>>(name: &str) -> Result<Option<T>, String> {
            match std::env::var(name) {
                Ok(text) if !text.trim().is_empty() => {
                    text.parse().map(Some).map_err(|e| format!("{name}: {e}"))
                }
                _ => Ok(None),
            }
        }
        Ok(Self {
            endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            protocol: var("OTEL_EXPORTER_OTLP_PROTOCOL")?.unwrap_or_default(),
            sample_ratio: None,
            trust: var("SHOP_TRACE_TRUST")?.unwrap_or_default(),
            keep: None,
        })
    }

    /// Where spans go, or `None` when traces are off.
    fn endpoint(&self) -> Option<String> {
        let disabled = |name: &str, off: &str| {
            std::env::var(name).is_ok_and(|value| value.trim().eq_ignore_ascii_case(off))
        };
        if disabled("OTEL_SDK_DISABLED", "true") || disabled("OTEL_TRACES_EXPORTER", "none") {
            return None;
        }
        if let Some(traces) = std::env::var(TRACES_ENDPOINT)
            .ok()
            .filter(|v| !v.is_empty())
        {
            return Some(traces);
        }
        let base = self.endpoint.as_deref().filter(|v| !v.is_empty())?;
        Some(match self.protocol {
            OtlpProtocol::Grpc => base.to_owned(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }
}

/// Keeps the exporter running; spans still queued are sent when it is
/// dropped (within a few seconds), so hold it until the program ends.
#[must_use = "traces stop being exported when the guard is dropped"]
pub struct TraceGuard {
    provider: SdkTracerProvider,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown() {
            eprintln!("traces: the last spans were not all exported: {error}");
        }
    }
}

/// The tracer for `tracing-opentelemetry`, and the guard that keeps its
/// exporter running; `None` when traces are off (no endpoint, nothing kept). Call inside the Tokio
/// runtime: export runs on it. `metrics` is the process's, installed: the
/// exporter counts the spans it drops there (a counter taken before a
/// recorder is installed would count nowhere).
pub fn install(
    config: &TraceConfig,
    metrics: &Metrics,
) -> Result<Option<(opentelemetry_sdk::trace::Tracer, TraceGuard)>, TraceError> {
    let endpoint = config.endpoint();
    if endpoint.is_none() && config.keep.is_none() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TraceError::NoRuntime)?;
    let exporter = match endpoint {
        // Made now, so a bad endpoint fails at start-up, not later.
        Some(endpoint) => Some(export::ServiceRouting::new(
            otlp::Sender::new(&endpoint, config.protocol)?,
            runtime,
            metrics,
        )),
        None => None,
    };
    let provider = SdkTracerProvider::builder().with_span_processor(export::Stamped {
        exporter,
        kept: config.keep.clone().map(kept::Keeping),
    });
    // New traces are sampled before any span is built (see `sampling`):
    // the SDK keeps what it is given and follows parents.
    sampling::configure(config.sample_ratio);
    let provider = provider
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_resource(opentelemetry_sdk::Resource::builder().build())
        .build();
    // The instrumentation scope is the library that makes the spans.
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    let _ = TRUST.set(config.trust);
    let _ = TRACER.set(tracer.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((tracer, TraceGuard { provider })))
}

/// The number of spans dropped for want of room or because the collector
/// did not take them: `shop_trace_spans_dropped_total`.
pub const SPANS_DROPPED: &str = "shop_trace_spans_dropped_total";
