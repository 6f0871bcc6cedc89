//! Log lines that name their trace: a line written inside a traced span
//! ends with its `trace_id` and `span_id` (text), or carries them as fields
//! (JSON), so a line found in the log leads to its trace and back.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

use super::traces;

/// Wraps a line format: lines outside a traced span are as it writes them.
pub struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceIds<F> {
    pub fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    pub fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

/// The current span's trace and span ids, when traces are on and it is
/// part of one.
fn current_ids() -> Option<(String, String)> {
    if !traces::enabled() {
        return None;
    }
    let cx = traces::current_context();
    let span = cx.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// `line` (one formatted line, newline included) with the ids added.
fn with_ids(line: &str, json: bool, trace_id: &str, span_id: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    match line.strip_suffix('}') {
        Some(object) if json => {
            format!("{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}\n")
        }
        _ => format!("{line} trace_id={trace_id} span_id={span_id}\n"),
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_ids(&line, self.json, &trace_id, &span_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_end_a_text_line_and_join_a_json_object() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let span = "00f067aa0ba902b7";
        assert_eq!(
            with_ids("INFO rpc: rpc finished code=\"ok\"\n", false, trace, span),
            format!("INFO rpc: rpc finished code=\"ok\" trace_id={trace} span_id={span}\n")
        );
        let json = with_ids("{\"level\":\"INFO\",\"code\":\"ok\"}\n", true, trace, span);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
        assert_eq!(parsed["trace_id"], trace);
        assert_eq!(parsed["span_id"], span);
        assert_eq!(parsed["code"], "ok");
    }
}
