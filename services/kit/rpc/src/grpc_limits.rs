//! Corrects gRPC statuses on their way out, in headers (trailers-only) and
//! trailers alike (so gRPC-Web's trailer frame too):
//!
//! - an oversize request is RESOURCE_EXHAUSTED, as the gRPC spec and
//!   connect-go say; tonic enforces `max_decoding_message_size` but answers
//!   OUT_OF_RANGE;
//! - `grpc-message` is cut to a few hundred bytes, so no error echoes a
//!   caller's megabyte back.

use http::{HeaderMap, HeaderValue};

use super::{
    connect_errors::{bound_message, grpc_message},
    protocol::{GRPC_MESSAGE, GRPC_STATUS},
};

/// The start of tonic's message for a request over the size limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
const OK: &str = "0";
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Corrects the status in `headers` (an answer's, or its trailers).
pub(super) fn correct(headers: &mut HeaderMap) {
    // Only a failure's status needs correcting: the headers of a call that
    // goes on to stream carry none, and a success's trailers carry OK; both
    // checks end at one lookup.
    let Some(status) = headers.get(GRPC_STATUS).filter(|status| *status != OK) else {
        return;
    };
    let message = grpc_message(headers);
    if status == OUT_OF_RANGE
        && message
            .as_deref()
            .is_some_and(|m| m.starts_with(TONIC_TOO_LARGE))
    {
        headers.insert(GRPC_STATUS, HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    if let Some(short) = message.as_deref().and_then(bound_message) {
        let encoded =
            percent_encoding::utf8_percent_encode(&short, GRPC_MESSAGE_ESCAPED).to_string();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert(GRPC_MESSAGE, value);
        }
    }
}

/// What gRPC percent-encodes in `grpc-message`: all but printable ASCII,
/// and '%' itself.
const GRPC_MESSAGE_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect_errors::MAX_ERROR_MESSAGE_BYTES;

    #[test]
    fn only_tonics_size_refusal_is_rewritten() {
        let too_large = tonic::Status::out_of_range(format!(
            "{TONIC_TOO_LARGE}: found 5242885 bytes, the limit is: 4194304 bytes"
        ))
        .into_http::<()>();
        let mut headers = too_large.headers().clone();
        correct(&mut headers);
        assert_eq!(headers["grpc-status"], RESOURCE_EXHAUSTED);

        let a_handlers_own = tonic::Status::out_of_range("page 9 of 3").into_http::<()>();
        let mut headers = a_handlers_own.headers().clone();
        correct(&mut headers);
        assert_eq!(headers["grpc-status"], OUT_OF_RANGE);
    }

    #[test]
    fn long_messages_are_cut() {
        let echo = tonic::Status::invalid_argument(format!("bad: {}", "é".repeat(100_000)))
            .into_http::<()>();
        let mut headers = echo.headers().clone();
        correct(&mut headers);
        let message = grpc_message(&headers).expect("message");
        assert!(
            message.len() <= MAX_ERROR_MESSAGE_BYTES + 3,
            "{}",
            message.len()
        );
        assert!(message.starts_with("bad: é"));
    }
}
