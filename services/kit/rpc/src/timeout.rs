//! The protocols' timeout headers (Connect's `connect-timeout-ms`, gRPC's
//! `grpc-timeout`): read, and a call's cut to its method's deadline as the
//! server classifies it (`crate::classify`), before the layers that enforce
//! them read them.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use shop_kit_wire::{grpc_timeout_value, parse_grpc_timeout};

use super::{
    head::Head,
    protocol::{GRPC_TIMEOUT, Protocol},
};

/// Connect's timeout header.
pub const CONNECT_TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");

/// A malformed `connect-timeout-ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("connect-timeout-ms must be 1 to 10 digits of milliseconds")]
pub struct BadTimeout;

/// Parses a `connect-timeout-ms` value: 1 to 10 ASCII digits (as
/// connect-go; no sign, no spaces).
pub fn parse_connect_timeout(value: &str) -> Result<Duration, BadTimeout> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadTimeout);
    }
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| BadTimeout)
}

/// A timeout header its protocol's layer will refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedTimeout;

/// Gives a call `most` to finish in when it brought no deadline or a longer
/// one (what it brought read in its `head`); the time it has. A malformed timeout is left as it came, for the
/// layer that reads it to refuse (and gives no deadline).
pub(crate) fn at_most(
    headers: &mut HeaderMap,
    head: &Head,
    protocol: Protocol,
    most: Option<Duration>,
) -> Result<Option<Duration>, MalformedTimeout> {
    let (name, brought) = match protocol {
        Protocol::Grpc | Protocol::GrpcWeb => (
            GRPC_TIMEOUT,
            head.grpc_timeout
                .as_ref()
                .map(|value| value.to_str().ok().and_then(parse_grpc_timeout)),
        ),
        Protocol::Connect | Protocol::Rest => (
            CONNECT_TIMEOUT_MS,
            head.connect_timeout.as_ref().map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|value| parse_connect_timeout(value).ok())
            }),
        ),
    };
    let timeout = match (brought, most) {
        (Some(None), _) => return Err(MalformedTimeout),
        (Some(Some(brought)), Some(most)) if brought <= most => return Ok(Some(brought)),
        (Some(Some(brought)), None) => return Ok(Some(brought)),
        (None, None) => return Ok(None),
        (_, Some(most)) => most,
    };
    let value = match protocol {
        Protocol::Grpc | Protocol::GrpcWeb => grpc_timeout_value(timeout),
        Protocol::Connect | Protocol::Rest => {
            HeaderValue::from(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        }
    };
    headers.insert(name, value);
    Ok(Some(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeouts_are_digits_only() {
        assert_eq!(parse_connect_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_connect_timeout("9999999999"),
            Ok(Duration::from_millis(9_999_999_999))
        );
        for bad in ["", "abc", "-1", "+5", " 5", "1.5", "12345678901"] {
            assert_eq!(parse_connect_timeout(bad), Err(BadTimeout), "{bad:?}");
        }
    }

    const MOST: Duration = Duration::from_secs(5);

    /// The timeout header of `protocol` after the policy saw a call that
    /// brought `brought`.
    fn after(protocol: Protocol, brought: Option<&str>) -> Option<String> {
        let name = match protocol {
            Protocol::Grpc | Protocol::GrpcWeb => GRPC_TIMEOUT,
            Protocol::Connect | Protocol::Rest => CONNECT_TIMEOUT_MS,
        };
        let mut headers = HeaderMap::new();
        if let Some(brought) = brought {
            headers.insert(name.clone(), HeaderValue::from_str(brought).expect("value"));
        }
        let head = Head::of(&headers);
        let _ = at_most(&mut headers, &head, protocol, Some(MOST));
        headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn a_call_without_a_deadline_gets_the_methods_and_a_longer_one_is_cut() {
        for protocol in [Protocol::Connect, Protocol::Rest] {
            assert_eq!(after(protocol, None).as_deref(), Some("5000"));
            assert_eq!(after(protocol, Some("60000")).as_deref(), Some("5000"));
            assert_eq!(after(protocol, Some("250")).as_deref(), Some("250"));
            // Malformed: left for connectrpc-axum to refuse as it does.
            assert_eq!(after(protocol, Some("-1")).as_deref(), Some("-1"));
        }
        for protocol in [Protocol::Grpc, Protocol::GrpcWeb] {
            let given = after(protocol, None).expect("set");
            assert_eq!(parse_grpc_timeout(&given), Some(MOST), "{given}");
            let cut = after(protocol, Some("1M")).expect("set");
            assert_eq!(parse_grpc_timeout(&cut), Some(MOST), "{cut}");
            assert_eq!(after(protocol, Some("250m")).as_deref(), Some("250m"));
        }
    }

    #[test]
    fn the_time_a_call_has_is_what_it_brought_cut_to_the_methods() {
        let has = |brought: Option<&str>, most: Option<Duration>| {
            let mut headers = HeaderMap::new();
            if let Some(brought) = brought {
                headers.insert(
                    CONNECT_TIMEOUT_MS,
                    HeaderValue::from_str(brought).expect("value"),
                );
            }
            let head = Head::of(&headers);
            at_most(&mut headers, &head, Protocol::Connect, most)
                .ok()
                .flatten()
        };
        assert_eq!(has(None, Some(MOST)), Some(MOST));
        assert_eq!(has(Some("60000"), Some(MOST)), Some(MOST));
        assert_eq!(
            has(Some("250"), Some(MOST)),
            Some(Duration::from_millis(250))
        );
        assert_eq!(has(Some("60000"), None), Some(Duration::from_secs(60)));
        assert_eq!(has(None, None), None);
        // Malformed: no deadline (the protocol's layer refuses the call).
        assert_eq!(has(Some("-1"), Some(MOST)), None);
        let mut headers = HeaderMap::new();
        headers.insert(CONNECT_TIMEOUT_MS, HeaderValue::from_static("12345678901"));
        let head = Head::of(&headers);
        assert_eq!(
            at_most(&mut headers, &head, Protocol::Connect, Some(MOST)),
            Err(MalformedTimeout)
        );
    }
}
