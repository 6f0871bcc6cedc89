//! The process's log: the tracing subscriber, its format, and the bridge
//! that makes trace spans OpenTelemetry spans.

/// Log lines waiting for the writer at most; more are dropped, counted.
const LOG_LINES_QUEUED: usize = 4096;

/// How the process logs.
#[derive(Clone, Debug, Default)]
pub struct LogConfig {
    /// Log format.
    pub format: LogFormat,

    /// Log a line for every RPC, successful ones included (by default only
    /// failed and slow calls are logged; the metrics count them all).
    /// Ignored when RUST_LOG is set: `RUST_LOG=info,rpc=debug` does the same.
    pub log_rpcs: bool,

    /// Keep the last lines in the process too (a local dashboard tails
    /// them), filtered as the log is.
    pub keep: Option<super::kept_logs::KeptLogs>,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Every format with its name.
    pub const NAMED: [(&'static str, Self); 2] = [("text", Self::Text), ("json", Self::Json)];
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
    metrics: &super::metrics::Metrics,
) -> Result<LogGuard, super::traces::TraceError> {
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };
    // sea-orm's migrator says each step; the shop says what they came to.
    let default = if config.log_rpcs {
        "info,sea_orm_migration=warn,rpc=debug"
    } else {
        "info,sea_orm_migration=warn"
    };
    let filter = || {
        let mut filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        // The trace spans are for the exporter, never for the log.
        if let Ok(off) = format!("{}=off", super::traces::TARGET).parse() {
            filter = filter.add_directive(off);
        }
        filter
    };
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
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .event_format(log_format::WithTraceIds::json(
                fmt::format().json().flatten_event(true),
            ))
            .with_filter(filter())
            .boxed(),
    };
    let (spans, traces) = match super::traces::install(traces, metrics)? {
        Some((tracer, guard)) => (Some(span_layer(tracer)), Some(guard)),
        None => (None, None),
    };
    let kept = config.keep.clone().map(|kept| kept.with_filter(filter()));
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(or_nothing(kept))
        .with(or_nothing(spans))
        .try_init()
        .is_ok();
    Ok(LogGuard {
        // Another subscriber was there first: no spans reach the exporter.
        _traces: traces.filter(|_| installed),
        _writer: installed.then_some(guard),
    })
}

/// `layer`, or, without one, a layer that wants nothing. Not `Option`: its
/// `None` tells the registry it is interested in every callsite, so once
/// another layer's filter lets TRACE through (the trace spans' does) every
/// span of every crate is made and closed for nobody, h2's per frame: a
/// call traced at 1% cost 3.2 times an untraced one (docs/observing.md).
fn or_nothing<S, L>(layer: Option<L>) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    L: tracing_subscriber::Layer<S> + Send + Sync,
{
    use tracing_subscriber::{Layer, filter::LevelFilter, layer::Identity};
    match layer {
        Some(layer) => layer.boxed(),
        None => Identity::new().with_filter(LevelFilter::OFF).boxed(),
    }
}

/// The layer that makes the trace spans ([`TARGET`](super::traces::TARGET))
/// OpenTelemetry spans of `tracer`, and no other.
///
/// Its filter names the level the trace spans are made at (INFO), not
/// TRACE: the subscriber's hint of the most verbose level any layer wants
/// is the highest of its filters', and every `trace!` and `debug!` of every
/// crate checks its callsite unless that hint rules its level out at once.
/// A TRACE here had h2 check a dozen callsites per frame: 775 instructions
/// a call, a third of what traces at 1% cost (docs/measuring.md).
pub fn span_layer<S>(tracer: opentelemetry_sdk::trace::Tracer) -> impl tracing_subscriber::Layer<S>
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
        .with_filter(Targets::new().with_target(super::traces::TARGET, SPAN_LEVEL))
}

/// The level of every trace span (`info_span!(target: TARGET, ..)`).
const SPAN_LEVEL: tracing::Level = tracing::Level::INFO;

use super::log_format;

#[cfg(test)]
mod tests {
    use tracing_subscriber::{Layer, filter::Targets, layer::SubscriberExt};

    /// A span no layer keeps is not made: with a layer absent beside one
    /// whose filter lets TRACE through for its own target (as the trace
    /// spans' does), another crate's TRACE span stays disabled.
    #[test]
    fn an_absent_layer_wants_no_span() {
        let wants_its_own = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(Targets::new().with_target("ours", tracing::Level::TRACE));
        let absent: Option<tracing_subscriber::fmt::Layer<_>> = None;
        let subscriber = tracing_subscriber::registry()
            .with(wants_its_own)
            .with(super::or_nothing(absent));
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::trace_span!(target: "h2", "frame").is_disabled());
            assert!(!tracing::trace_span!(target: "ours", "rpc").is_disabled());
        });
    }

    /// With traces on, the subscriber still rules out every level above
    /// the logs' at once: other crates' `trace!` and `debug!` (h2's, per
    /// frame) never reach their callsite's check. Its trace spans are made.
    #[test]
    fn traces_on_raise_no_crate_to_trace_level() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing::Subscriber as _;
        use tracing_subscriber::filter::LevelFilter;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(LevelFilter::INFO);
        let subscriber = tracing_subscriber::registry()
            .with(logs)
            .with(super::span_layer(provider.tracer("test")));
        assert_eq!(subscriber.max_level_hint(), Some(LevelFilter::INFO));
        tracing::subscriber::with_default(subscriber, || {
            assert!(
                !tracing::info_span!(target: crate::traces::TARGET, "work").is_disabled(),
                "a trace span is made"
            );
            assert!(tracing::debug_span!(target: "h2", "frame").is_disabled());
        });
    }
}
