//! Seeing what the services do: the log and the metrics (an explicit
//! handle, [`metrics::Metrics`]), and traces
//! over OTLP with their context carried across calls, the outbox and the
//! saga (the metric, log line and server span of each RPC are made by the
//! serving stack, `rpc`, and the client spans by the client stack, with
//! these).

pub mod kept_logs;
mod log_format;
pub mod metrics;
pub mod telemetry;
pub mod traces;

/// `text` cut to at most `bytes` (on a character), with `…` when cut: what
/// the rings a dashboard reads keep of each text.
pub(crate) fn cut(mut text: String, bytes: usize) -> String {
    if text.len() > bytes {
        let mut end = bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        // A copy: truncating would keep the whole allocation held.
        let mut kept = String::with_capacity(end + '…'.len_utf8());
        kept.push_str(&text[..end]);
        kept.push('…');
        return kept;
    }
    text.shrink_to_fit();
    text
}

/// Microseconds since the Unix epoch at `at` (0 before it).
pub(crate) fn micros_since_epoch(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    })
}
