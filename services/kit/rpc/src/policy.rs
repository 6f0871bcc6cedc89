//! Each method's call policy, as its contract declares it
//! (`kit.policy.v1`, read by `shop_kit_policy` when the server is
//! assembled), enforced on every protocol:
//!
//! - **who may call, and how often** ([`admit`]): checked by the server
//!   for every call of a method it serves, on every protocol, in the step
//!   that admits calls (`admission`), before the call takes a place there
//!   and whatever answers it: no handler, hand-written server or route
//!   reaches a call the rule refused. A caller the rule does not admit is
//!   refused with the words the auth extractors use (`unauthenticated`,
//!   `permission_denied`); the caller a token proved is left for the
//!   handler's extractor, which so verifies nothing twice. A handler still
//!   names who it serves (`Customer`, `ServiceCaller`), but forgetting to
//!   check is not possible;
//! - **the deadline** ([`give_deadline`]): a call that brings none gets the
//!   method's, and one that brings a longer one is cut to it, by writing
//!   the protocol's own header (`connect-timeout-ms`, `grpc-timeout`) as
//!   the server classifies the request, before the layers that enforce it
//!   read it; the handler passes what is left on to the calls it makes.

use std::time::Duration;

use tokio::time::Instant;

use axum::response::Response;
use connectrpc_axum::prelude::ConnectError;
use http::{HeaderMap, HeaderValue, Request};

use super::{
    classify::{Call, Method},
    connect_errors::error_response,
    deadline::{CONNECT_TIMEOUT_MS, parse_connect_timeout},
    protocol::{GRPC_TIMEOUT, Protocol},
};
use shop_kit_wire::{grpc_timeout_value, parse_grpc_timeout};

/// A call as [`admit`] found it.
pub(crate) enum Admission<B> {
    Admitted(Request<B>),
    /// Its refusal, in the caller's protocol.
    Refused(Response),
}

/// Admits a call of `method` as its contract says, before anything of the
/// call is worked on and whatever will answer it (a generated handler, or
/// anything else): who may call (the caller a token proved is left in the
/// extensions, for the handler's extractor to read rather than verify the
/// token again), then how often (its rate class).
pub(crate) fn admit<B>(request: Request<B>, method: &Method) -> Admission<B> {
    let (mut parts, body) = request.into_parts();
    let refusal = method
        .policy
        .caller
        .as_ref()
        .and_then(|rule| shop_kit_auth::admit(rule, &parts.headers, &mut parts.extensions).err())
        .map(ConnectError::from)
        .or_else(|| {
            let limiter = method.rate_class.as_ref()?;
            limiter.admit(&parts).err().map(ConnectError::from)
        });
    match refusal {
        None => Admission::Admitted(Request::from_parts(parts, body)),
        Some(refusal) => Admission::Refused(error_response(&parts.headers, refusal)),
    }
}

/// Gives a call its method's deadline, at most (`call`: the request as
/// the server classified it), and says when the call must end: a step of
/// the classification, so it costs no layer of its own, and the one
/// reading of the timeout header the server makes.
pub(crate) fn give_deadline<B>(
    request: &mut Request<B>,
    call: &Call,
) -> Result<Option<Instant>, MalformedTimeout> {
    let most = call
        .method
        .filter(|method| method.direct)
        .and_then(|method| method.policy.deadline);
    Ok(
        at_most(request.headers_mut(), call.protocol, most)?
            .map(|timeout| Instant::now() + timeout),
    )
}

/// A timeout header its protocol's layer will refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedTimeout;

/// Gives a call `most` to finish in when it brought no deadline or a longer
/// one; the time it has. A malformed timeout is left as it came, for the
/// layer that reads it to refuse (and gives no deadline).
fn at_most(
    headers: &mut HeaderMap,
    protocol: Protocol,
    most: Option<Duration>,
) -> Result<Option<Duration>, MalformedTimeout> {
    let (name, brought) = match protocol {
        Protocol::Grpc | Protocol::GrpcWeb => (
            GRPC_TIMEOUT,
            headers
                .get(&GRPC_TIMEOUT)
                .map(|value| value.to_str().ok().and_then(parse_grpc_timeout)),
        ),
        Protocol::Connect | Protocol::Rest => (
            CONNECT_TIMEOUT_MS,
            headers.get(&CONNECT_TIMEOUT_MS).map(|value| {
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
        let _ = at_most(&mut headers, protocol, Some(MOST));
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
            at_most(&mut headers, Protocol::Connect, most)
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
        assert_eq!(
            at_most(&mut headers, Protocol::Connect, Some(MOST)),
            Err(MalformedTimeout)
        );
    }
}
