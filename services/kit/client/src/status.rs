//! What a call's answer says, read once for every layer that decides on
//! it (the retry policy, the breaker, the metrics), and the answers the
//! stack makes itself: a gRPC status as a trailers-only response, which
//! every tonic client reads as that status, metadata included.

use shop_kit_wire::{GRPC_ENCODING, GRPC_STATUS, NOT_PROCESSED};
use tonic::{Code, Status};

/// Marks the answer to a call that was never sent.
const NOT_SENT: &str = "x-shop-not-sent";
/// Marks the answer to a call sent without credentials: they could not be
/// had (see `Credentials`).
const NO_CREDENTIALS: &str = "x-shop-no-credentials";

pub(super) type Response = http::Response<tonic::body::Body>;
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Codes that say the downstream (or the way to it) is in trouble, not
/// that the request was wrong.
pub fn is_infrastructure_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss
    )
}

/// `status` as a response (trailers-only).
pub(super) fn answer(status: Status) -> Response {
    status.into_http()
}

/// `status` as the trailers that end an answer.
pub(super) fn trailers(status: &Status) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        trailers.insert(GRPC_STATUS, http::HeaderValue::from(status.code() as i32));
    }
    trailers
}

/// The headers that say a call's status: in a head, only that of a
/// trailers-only answer (one whose head ends the stream) counts.
pub(super) const STATUS_HEADERS: [&str; 3] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// An answer compressed in an encoding the call did not offer to read
/// (`grpc-accept-encoding`): `internal` (gRPC's rule for a client; tonic
/// would say `unimplemented`, a server's code for it).
pub(super) fn unreadable_encoding(
    answer: &http::HeaderMap,
    offered: Option<&http::HeaderValue>,
) -> Option<Status> {
    let encoding = answer.get(&GRPC_ENCODING)?.to_str().unwrap_or("?");
    let offered = |name: &str| {
        offered
            .and_then(|list| list.to_str().ok())
            .is_some_and(|list| list.split(',').any(|e| e.trim() == name))
    };
    (encoding != "identity" && !offered(encoding)).then(|| {
        Status::internal(format!(
            "the answer is compressed with {encoding:?}, which the call did not accept"
        ))
    })
}

/// A failure without a call: no endpoint serving, every breaker open, or
/// the bulkhead full.
pub(super) fn not_sent(code: Code, message: String) -> Status {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(NOT_SENT, tonic::metadata::MetadataValue::from_static("1"));
    Status::with_metadata(code, message, metadata)
}

/// Whether a call failed without being sent to the downstream (no endpoint
/// serving or every breaker open, too many calls in flight): a caller that
/// counts attempts (or gives up after some) should not count it.
pub fn was_not_sent(status: &Status) -> bool {
    status.metadata().contains_key(NOT_SENT)
}

/// Whether a call was shed by the caller's own bulkhead (too many calls to
/// that peer in flight here): the caller's overload, not the peer's, which
/// may be fine. Answer it as this service being busy, never as the peer
/// being unavailable.
pub fn was_shed(status: &Status) -> bool {
    status.code() == Code::ResourceExhausted && was_not_sent(status)
}

/// Whether the downstream refused the call without working on it: its
/// admission control had more calls than it takes (see the kit's
/// `admission`). Sent again elsewhere whatever the method; when every
/// attempt met one, the downstream is overloaded, not down.
pub fn was_refused_unprocessed(status: &Status) -> bool {
    status.code() == Code::ResourceExhausted
        && status.metadata().contains_key(NOT_PROCESSED.as_str())
}

/// Whether an answer's head is such a refusal.
pub(super) fn refused_unprocessed(headers: &http::HeaderMap) -> bool {
    headers.contains_key(NOT_PROCESSED)
}

/// A call not sent because its credentials could not be had: `why`'s code
/// and message, marked.
pub(super) fn no_credentials(why: &Status) -> Status {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(NOT_SENT, tonic::metadata::MetadataValue::from_static("1"));
    metadata.insert(
        NO_CREDENTIALS,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    Status::with_metadata(why.code(), why.message(), metadata)
}

/// Whether a call was not sent for want of its credentials (the service
/// that issues them is the one to blame).
pub fn lacked_credentials(status: &Status) -> bool {
    status.metadata().contains_key(NO_CREDENTIALS)
}

/// The code an answer's trailers end it with (none said: `unknown`).
pub(super) fn trailers_code(trailers: &http::HeaderMap) -> Code {
    trailers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from)
}

/// The code of an answer, as far as its head tells: `grpc-status` in the
/// headers (a trailers-only answer: a failure, mostly), else what the HTTP
/// status means to gRPC; `None` when the code comes in the trailers.
pub(super) fn head_code(status: http::StatusCode, headers: &http::HeaderMap) -> Option<Code> {
    if let Some(code) = headers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    {
        return Some(Code::from(code));
    }
    match status.as_u16() {
        200 => None,
        // gRPC's mapping of the HTTP statuses that carry no gRPC status.
        400 => Some(Code::Internal),
        401 => Some(Code::Unauthenticated),
        403 => Some(Code::PermissionDenied),
        404 => Some(Code::Unimplemented),
        429 | 502..=504 => Some(Code::Unavailable),
        _ => Some(Code::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(encoding: Option<&'static str>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        if let Some(encoding) = encoding {
            headers.insert(GRPC_ENCODING, http::HeaderValue::from_static(encoding));
        }
        headers
    }

    #[test]
    fn an_answer_is_read_in_identity_or_an_encoding_the_call_offered() {
        let offered = http::HeaderValue::from_static("identity, gzip");
        for (answer, offered, readable) in [
            (None, None, true),
            (Some("identity"), None, true),
            (Some("gzip"), Some(&offered), true),
            (Some("gzip"), None, false),
            (Some("br"), Some(&offered), false),
        ] {
            let refused = unreadable_encoding(&head(answer), offered);
            assert_eq!(
                refused.is_none(),
                readable,
                "{answer:?} offered {offered:?}"
            );
            if let Some(refused) = refused {
                assert_eq!(refused.code(), Code::Internal);
            }
        }
    }
}
