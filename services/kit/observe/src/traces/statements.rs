//! Database statements as child spans of the work that ran them, made
//! after the fact from what the database driver reports (it runs them
//! inside the calling task, so the current span is their parent). Only
//! inside traced work: a relay's poll makes no trace of its own.

use std::time::{Duration, SystemTime};

use super::{TRACER, enabled, propagate};
use opentelemetry::{
    KeyValue,
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _},
};

/// Records a statement (`sql` as sent, with placeholders, never values)
/// that just ended after `elapsed` on a `system` database (`sqlite`,
/// `postgresql`), named by its operation (`SELECT`, `INSERT`, ...).
pub fn record_statement(system: &'static str, sql: &str, elapsed: Duration, failed: bool) {
    if !enabled() {
        return;
    }
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let parent = propagate::current_context();
    if !parent.span().span_context().is_sampled() {
        return;
    }
    let operation = operation(sql);
    let end = SystemTime::now();
    let mut span = tracer
        .span_builder(operation.clone())
        .with_kind(SpanKind::Client)
        .with_start_time(end.checked_sub(elapsed).unwrap_or(end))
        .with_attributes([
            KeyValue::new("db.system.name", system),
            KeyValue::new("db.operation.name", operation),
            KeyValue::new("db.query.text", sql.to_owned()),
        ])
        .start_with_context(tracer, &parent);
    if failed {
        span.set_status(Status::error("the statement failed"));
    }
    span.end_with_timestamp(end);
}

/// The statement's operation: its first word, in capitals.
fn operation(sql: &str) -> String {
    sql.split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_statement_is_named_by_its_operation() {
        assert_eq!(super::operation("  insert INTO x VALUES ($1)"), "INSERT");
        assert_eq!(super::operation(""), "SQL");
    }
}
