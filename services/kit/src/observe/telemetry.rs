//! Process-wide telemetry: the tracing subscriber and the Prometheus
//! recorder behind `GET /metrics`.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{OnceLock, PoisonError, RwLock},
    time::Duration,
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for RPC durations, in seconds (1 ms to 30 s).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram buckets for message sizes, in bytes (64 B to 4 MiB).
const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
];

/// How often histogram samples are folded into their buckets, so they do
/// not pile up in memory between scrapes (or when nobody scrapes).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// Log lines waiting for the writer at most; more are dropped, counted.
const LOG_LINES_QUEUED: usize = 4096;

/// Installs (once per process) and returns the Prometheus recorder, with
/// a thread that keeps its histograms folded.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Suffix("size_bytes".to_owned()),
                        SIZE_BUCKETS,
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by a test
            // harness); ours then only renders what it was given.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

/// The value kept under `key` in `kept`, made by `make` the first time
/// (metric handles, looked up in the recorder once per series and kept:
/// a read lock on every call after the first).
pub(crate) fn kept<K, Q, V, S>(
    kept: &RwLock<HashMap<K, V, S>>,
    key: &Q,
    make: impl FnOnce() -> V,
) -> V
where
    K: Borrow<Q> + Hash + Eq,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    V: Clone,
    S: std::hash::BuildHasher,
{
    if let Some(found) = kept.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return found.clone();
    }
    let made = make();
    kept.write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert(made)
        .clone()
}

/// How the process logs.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LogConfig {
    /// Log format.
    #[arg(
        long = "log-format",
        env = "SHOP_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub format: LogFormat,

    /// Log a line for every RPC, successful ones included (by default only
    /// failed and slow calls are logged; the metrics count them all).
    /// Ignored when RUST_LOG is set: `RUST_LOG=info,rpc=debug` does the same.
    #[arg(long, env = "SHOP_LOG_RPCS", global = true)]
    pub log_rpcs: bool,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the log writer and the trace exporter running; logs still queued
/// are written and spans still queued exported when it is dropped, so hold
/// it until the program ends.
#[must_use = "logs and traces stop when the guard is dropped"]
pub struct LogGuard {
    // Traces first: their exporter may still log while it shuts down.
    _traces: Option<super::traces::TraceGuard>,
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the tracing subscriber: log lines filtered by `RUST_LOG`
/// (default `info`, plus every RPC with `--log-rpcs`) to stderr, each line
/// written inside a traced span ending with its `trace_id` and `span_id`;
/// and, when traces are configured, the bridge that makes the trace spans
/// ([`traces::TARGET`](super::traces::TARGET)) OpenTelemetry spans. Call
/// inside the Tokio runtime (traces are exported on it).
///
/// Lines are written by a thread of their own through a buffer, so a request
/// never waits on a write(2) of its log line, and a busy server writes many
/// lines per syscall. If that thread falls a few thousand lines behind,
/// lines are dropped, not queued without end.
pub fn init_tracing(
    config: &LogConfig,
    traces: &super::traces::TraceConfig,
) -> Result<LogGuard, super::traces::TraceError> {
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let default = if config.log_rpcs {
        "info,rpc=debug"
    } else {
        "info"
    };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // The trace spans are for the exporter, never for the log.
    if let Ok(off) = format!("{}=off", super::traces::TARGET).parse() {
        filter = filter.add_directive(off);
    }
    // Logs go to stderr: stdout is for what a program prints on purpose
    // (the banner; the conformance handshake).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_QUEUED)
        .lossy(true)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = match config.format {
        LogFormat::Text => fmt::layer()
            .with_target(true)
            // Colours for a terminal only, not for files and pipes.
            .with_ansi(ansi)
            .with_writer(writer)
            .event_format(log_format::WithTraceIds::text(
                fmt::format().with_ansi(ansi),
            ))
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .event_format(log_format::WithTraceIds::json(
                fmt::format().json().flatten_event(true),
            ))
            .with_filter(filter)
            .boxed(),
    };
    let (spans, traces) = match super::traces::install(traces)? {
        Some((tracer, guard)) => (Some(span_layer(tracer)), Some(guard)),
        None => (None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init()
        .is_ok();
    Ok(LogGuard {
        // Another subscriber was there first: no spans reach the exporter.
        _traces: traces.filter(|_| installed),
        _writer: installed.then_some(guard),
    })
}

/// The layer that makes the trace spans ([`TARGET`](super::traces::TARGET))
/// OpenTelemetry spans of `tracer`, and no other.
pub(crate) fn span_layer<S>(
    tracer: opentelemetry_sdk::trace::Tracer,
) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::{Layer, filter::Targets};
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Spans carry what the conventions name, nothing of the code's
        // layout, threads or idle time.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(Targets::new().with_target(super::traces::TARGET, tracing::Level::TRACE))
}

use super::log_format;
