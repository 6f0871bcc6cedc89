//! Each method's call policy, as its contract declares it
//! (`kit.policy.v1`, read by `shop_kit_policy` when the server is
//! assembled), enforced on every protocol:
//!
//! - **who may call** ([`admit_caller`]): checked by the one extractor
//!   every generated handler has (`valid::Prepared`), after the protocol's
//!   own checks (a content type or a timeout it cannot take is refused as
//!   such first) and before any handler code. A caller the rule does not
//!   admit is refused with the words the auth extractors use
//!   (`unauthenticated`, `permission_denied`); the caller a token proved is
//!   left for the handler's extractor, which so verifies nothing twice. A
//!   handler still names who it serves (`Customer`, `ServiceCaller`), but
//!   forgetting to check is no longer possible;
//! - **the deadline** ([`give_deadline`]): a call that brings none gets the
//!   method's, and one that brings a longer one is cut to it, by writing
//!   the protocol's own header (`connect-timeout-ms`, `grpc-timeout`) as
//!   the server classifies the request, before the layers that enforce it
//!   read it; the handler passes what is left on to the calls it makes.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, request::Parts};
use shop_kit_auth::CallerRefused;

use super::{
    classify::Call,
    deadline::{CONNECT_TIMEOUT_MS, parse_connect_timeout},
    protocol::{GRPC_TIMEOUT, Protocol},
    rate_class::RateRefused,
};
use shop_kit_wire::{grpc_timeout_value, parse_grpc_timeout};

/// Whether the caller may call the method the request names (classified
/// by the server), as its contract's caller rule says: `Ok` for a method
/// with none, or a request the server did not classify.
pub(crate) fn admit_caller(parts: &mut Parts) -> Result<(), CallerRefused> {
    let Some(rule) = parts
        .extensions
        .get::<Call>()
        .and_then(|call| call.method)
        .and_then(|method| method.policy.caller.as_ref())
    else {
        return Ok(());
    };
    shop_kit_auth::admit(rule, &parts.headers, &mut parts.extensions)
}

/// Counts the call against its method's rate class, if it names one (see
/// `rate_class`).
pub(crate) fn admit_rate(parts: &Parts) -> Result<(), RateRefused> {
    let Some(limiter) = parts
        .extensions
        .get::<Call>()
        .and_then(|call| call.method)
        .and_then(|method| method.rate_class.as_ref())
    else {
        return Ok(());
    };
    limiter.admit(parts)
}

/// Gives a call its method's deadline, at most (`call`: the request as
/// the server classified it): a step of the classification, so it costs
/// no layer of its own.
pub(crate) fn give_deadline<B>(request: &mut Request<B>, call: Call) {
    let most = call
        .method
        .filter(|method| method.direct)
        .and_then(|method| method.policy.deadline);
    if let Some(most) = most {
        at_most(request.headers_mut(), call.protocol, most);
    }
}

/// Gives a call `most` to finish in when it brought no deadline or a longer
/// one. A malformed timeout is left as it came, for the layer that reads it
/// to refuse.
fn at_most(headers: &mut HeaderMap, protocol: Protocol, most: Duration) {
    match protocol {
        Protocol::Grpc | Protocol::GrpcWeb => {
            let brought = headers
                .get(&GRPC_TIMEOUT)
                .map(|value| value.to_str().ok().and_then(parse_grpc_timeout));
            if grants_more(brought, most) {
                headers.insert(GRPC_TIMEOUT, grpc_timeout_value(most));
            }
        }
        Protocol::Connect | Protocol::Rest => {
            let brought = headers.get(&CONNECT_TIMEOUT_MS).map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|value| parse_connect_timeout(value).ok())
            });
            if grants_more(brought, most) {
                let millis = u64::try_from(most.as_millis()).unwrap_or(u64::MAX);
                headers.insert(CONNECT_TIMEOUT_MS, HeaderValue::from(millis));
            }
        }
    }
}

/// Whether the timeout a call brought (`None`: none; `Some(None)`:
/// malformed) is to be replaced by `most`.
fn grants_more(brought: Option<Option<Duration>>, most: Duration) -> bool {
    match brought {
        None => true,
        Some(None) => false,
        Some(Some(timeout)) => timeout > most,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        at_most(&mut headers, protocol, MOST);
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
}
