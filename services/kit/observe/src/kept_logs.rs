//! The log kept in the process, for a local dashboard to tail without
//! reading stderr: the last lines, as structured records, in bounded
//! memory (a count of lines and of bytes; long texts and many fields are
//! cut). Each line names its service and trace when it was written inside
//! one.

use std::{
    collections::VecDeque,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use opentelemetry::trace::TraceContextExt;
use serde::Serialize;
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context};

use super::traces;

/// Fields kept per line, and characters per text.
const FIELDS_PER_LINE: usize = 16;
const TEXT_CHARS: usize = 480;

/// How much is kept.
#[derive(Clone, Copy, Debug)]
pub struct KeptLogLimits {
    pub lines: usize,
    pub bytes: usize,
}

impl Default for KeptLogLimits {
    fn default() -> Self {
        Self {
            lines: 5000,
            bytes: 4 << 20,
        }
    }
}

/// One line of the log.
#[derive(Clone, Debug, Serialize)]
pub struct KeptLine {
    /// A number that grows with each line (to ask for lines after it).
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub at_us: u64,
    pub level: &'static str,
    pub target: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
    pub service: String,
    pub trace_id: String,
}

/// The process's kept log lines: cheap to clone, shared.
#[derive(Clone, Debug)]
pub struct KeptLogs {
    ring: Arc<Mutex<LogRing>>,
}

#[derive(Debug)]
struct LogRing {
    limits: KeptLogLimits,
    lines: VecDeque<(KeptLine, usize)>,
    bytes: usize,
    next: u64,
}

impl Default for KeptLogs {
    fn default() -> Self {
        Self::new(KeptLogLimits::default())
    }
}

impl KeptLogs {
    pub fn new(limits: KeptLogLimits) -> Self {
        Self {
            ring: Arc::new(Mutex::new(LogRing {
                limits,
                lines: VecDeque::new(),
                bytes: 0,
                next: 1,
            })),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, LogRing> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `line` (its `seq` is given here), dropping the oldest past
    /// the bounds.
    pub fn keep(&self, mut line: KeptLine) {
        // What the line holds in memory: its allocations, not their lengths.
        let size = 128
            + line.target.capacity()
            + line.message.capacity()
            + line.service.capacity()
            + line.trace_id.capacity()
            + line.fields.capacity() * 48
            + line
                .fields
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>();
        let mut ring = self.ring();
        line.seq = ring.next;
        ring.next += 1;
        ring.bytes += size;
        ring.lines.push_back((line, size));
        while ring.lines.len() > ring.limits.lines || ring.bytes > ring.limits.bytes {
            let Some((_, size)) = ring.lines.pop_front() else {
                break;
            };
            ring.bytes -= size;
        }
    }

    /// The newest lines `include` accepts, oldest first, at most `limit`.
    pub fn tail(&self, limit: usize, include: impl Fn(&KeptLine) -> bool) -> Vec<KeptLine> {
        let ring = self.ring();
        let mut lines: Vec<KeptLine> = ring
            .lines
            .iter()
            .rev()
            .map(|(line, _)| line)
            .filter(|line| include(line))
            .take(limit)
            .cloned()
            .collect();
        lines.reverse();
        lines
    }

    /// Lines kept and the bytes they take.
    pub fn usage(&self) -> (usize, usize) {
        let ring = self.ring();
        (ring.lines.len(), ring.bytes)
    }
}

fn cut(text: String) -> String {
    crate::cut(text, TEXT_CHARS)
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            // A line's own words come last; a field also named `message`
            // (a refusal's text) before them stays a field.
            let earlier = std::mem::replace(&mut self.message, cut(value));
            if !earlier.is_empty() && self.fields.len() < FIELDS_PER_LINE {
                self.fields.push(("message".to_owned(), earlier));
            }
        } else if self.fields.len() < FIELDS_PER_LINE {
            self.fields.push((field.name().to_owned(), cut(value)));
        }
    }
}

impl<S: Subscriber> Layer<S> for KeptLogs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let cx = traces::current_context();
        let span = cx.span();
        let ids = span.span_context();
        let trace_id = if ids.is_valid() {
            ids.trace_id().to_string()
        } else {
            String::new()
        };
        let metadata = event.metadata();
        self.keep(KeptLine {
            seq: 0,
            at_us: crate::micros_since_epoch(SystemTime::now()),
            level: metadata.level().as_str(),
            target: metadata.target().to_owned(),
            message: fields.message,
            fields: fields.fields,
            service: traces::current_service().unwrap_or_default().to_owned(),
            trace_id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_long_lines_stays_within_the_bounds() {
        let limits = KeptLogLimits {
            lines: 1000,
            bytes: 256 << 10,
        };
        let logs = KeptLogs::new(limits);
        for n in 0..100_000 {
            logs.keep(KeptLine {
                seq: 0,
                at_us: n,
                level: "WARN",
                target: "rpc".to_owned(),
                message: cut("m".repeat(10_000)),
                fields: (0..FIELDS_PER_LINE)
                    .map(|f| (format!("f{f}"), cut("v".repeat(1000))))
                    .collect(),
                service: "orders".to_owned(),
                trace_id: String::new(),
            });
        }
        let (lines, bytes) = logs.usage();
        assert!(
            lines <= limits.lines && bytes <= limits.bytes,
            "{lines} {bytes}"
        );
        let tail = logs.tail(3, |_| true);
        assert_eq!(tail.len(), 3);
        assert_eq!(tail[2].seq, 100_000, "the newest line last");
        assert!(tail[0].message.len() <= TEXT_CHARS + 3);
        // What is held, not only what is read: a cut text's allocation.
        assert!(tail[0].message.capacity() <= TEXT_CHARS + 3);
        assert!(
            tail[0]
                .fields
                .iter()
                .all(|(_, value)| value.capacity() <= TEXT_CHARS + 3)
        );
    }
}
