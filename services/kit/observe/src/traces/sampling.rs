//! Which traces are kept, decided before any span is built. Building a
//! span costs far more than deciding (the `tracing` span, its
//! OpenTelemetry builder and contexts), so the shop decides first: a new
//! trace is kept with the configured probability, a trace that continues
//! a caller's follows the caller's decision. A call in a trace nobody keeps
//! makes no span at all; it only passes the trace's context on (with its
//! not-sampled flag), so the services it calls make none either. The SDK
//! then only ever sees spans that are kept (its sampler follows parents
//! and keeps roots).

use std::{cell::RefCell, sync::OnceLock};

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use rand::{Rng as _, SeedableRng as _, rngs::SmallRng};

static RATIO: OnceLock<f64> = OnceLock::new();

/// The share of new traces kept: `--trace-sample-ratio`, else what
/// `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` say (every sampler is
/// taken as parent-based: a caller's decision is followed), else all.
pub(super) fn configure(flag: Option<f64>) {
    let from_env = || {
        let argument = std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r));
        match std::env::var("OTEL_TRACES_SAMPLER")
            .as_deref()
            .map(str::trim)
        {
            Ok("always_off" | "parentbased_always_off") => 0.0,
            Ok("traceidratio" | "parentbased_traceidratio") => argument.unwrap_or(1.0),
            _ => 1.0,
        }
    };
    let _ = RATIO.set(flag.unwrap_or_else(from_env));
}

/// Whether a new trace is kept.
pub(super) fn keep_new_trace() -> bool {
    let ratio = RATIO.get().copied().unwrap_or(1.0);
    ratio >= 1.0 || (ratio > 0.0 && random::<f64>() < ratio)
}

/// The context of a new trace nobody keeps: fresh ids, not sampled.
pub(super) fn unsampled_trace() -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(random::<u128>().max(1).to_be_bytes()),
        SpanId::from_bytes(random::<u64>().max(1).to_be_bytes()),
        TraceFlags::default(),
        false,
        TraceState::default(),
    ))
}

/// A random value of this thread's small generator: as the SDK makes its
/// ids (`RandomIdGenerator`), not from the cryptographic one (`rand::random`
/// took ~150 instructions more a call, for a coin and two ids nobody keeps).
fn random<T>() -> T
where
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    thread_local! {
        static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
    }
    RNG.with(|rng| rng.borrow_mut().r#gen())
}

/// Whether `cx` is part of a trace, and whether that trace is kept.
pub(super) fn of(cx: &Context) -> Option<bool> {
    let span = cx.span();
    let ids = span.span_context();
    ids.is_valid().then(|| ids.is_sampled())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_nobody_keeps_has_ids_and_says_so() {
        let cx = unsampled_trace();
        assert_eq!(of(&cx), Some(false));
        assert_eq!(of(&Context::new()), None);
    }
}
