//! The vocabulary of the wire that serving and calling share: a status
//! code's Connect name (gRPC and Connect share one table), the gRPC
//! headers read on every call, and a call's deadline with its
//! `grpc-timeout` form, the context a served call gives the calls it
//! makes ([`context`]), and the servers this process runs ([`in_process`]).
//! A leaf: it knows nothing else of the kit.

pub mod context;
pub mod in_process;

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::time::Instant;

/// Header names read on every call, made once: a lookup by a `&str`
/// parses the name again each time.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
pub const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
pub const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// Marks a server's refusal of a call it did no work on (admission
/// control: too many calls at work): a client may send such a call again,
/// elsewhere, whatever the method, as if it had never left.
pub const NOT_PROCESSED: HeaderName = HeaderName::from_static("x-shop-not-processed");

/// The Connect name of a gRPC numeric status (`ok`, `not_found`, ...);
/// a number no code has is `unknown`.
pub fn code_name(number: i32) -> &'static str {
    connectrpc_axum::message::error::code_from_tonic(tonic::Code::from_i32(number)).as_str()
}

/// The instant by which a call must be answered: on a served request, the
/// caller's; on an outgoing one, what its own caller left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// What is left of it as a `grpc-timeout` value (at least 1 ms: a
    /// call sent at all is sent with some time).
    pub fn grpc_timeout(self) -> HeaderValue {
        let left = self.0.saturating_duration_since(Instant::now());
        grpc_timeout_value(left.max(Duration::from_millis(1)))
    }
}

/// A `grpc-timeout` value for `timeout` (at most 8 digits, in the finest
/// unit that fits).
pub fn grpc_timeout_value(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let candidates = [
        (timeout.as_millis(), 'm'),
        (u128::from(timeout.as_secs()), 'S'),
        (u128::from(timeout.as_secs() / 60), 'M'),
        (u128::from(timeout.as_secs() / 3600), 'H'),
    ];
    let (amount, unit) = candidates
        .into_iter()
        .find(|(amount, _)| *amount <= MAX)
        .unwrap_or((MAX, 'H'));
    HeaderValue::from_str(&format!("{amount}{unit}"))
        .unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    // ASCII only: the unit is the last byte, and must be a whole character.
    if value.len() < 2 || value.len() > 9 || !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_have_their_connect_names() {
        assert_eq!(code_name(0), "ok");
        assert_eq!(code_name(8), "resource_exhausted");
        assert_eq!(code_name(16), "unauthenticated");
        assert_eq!(code_name(99), "unknown");
    }

    #[test]
    fn parses_every_grpc_timeout_unit() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn rejects_malformed_grpc_timeouts() {
        for bad in ["", "m", "10", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_multibyte_last_character_is_refused_not_split() {
        // Found by `just fuzz` (timeouts): "222222Ӕ" split inside the "Ӕ".
        assert_eq!(parse_grpc_timeout("222222\u{4d4}"), None);
        assert_eq!(parse_grpc_timeout("1\u{e9}"), None);
    }

    #[test]
    fn timeouts_are_written_in_the_finest_unit_that_fits() {
        assert_eq!(grpc_timeout_value(Duration::from_millis(1500)), "1500m");
        assert_eq!(
            grpc_timeout_value(Duration::from_millis(9_999_999_999)),
            "9999999S"
        );
        for timeout in [
            Duration::ZERO,
            Duration::from_millis(9_999_999_999),
            Duration::MAX,
        ] {
            let value = grpc_timeout_value(timeout);
            assert!(
                parse_grpc_timeout(value.to_str().expect("ascii")).is_some(),
                "{value:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_sends_what_is_left_of_it() {
        let deadline = Deadline(Instant::now() + Duration::from_millis(250));
        assert_eq!(deadline.grpc_timeout(), "250m");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(deadline.grpc_timeout(), "1m");
    }
}
