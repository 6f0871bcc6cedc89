//! Errors produced by the kit's own layers, in the wire form of the protocol
//! the caller speaks, so no layer ever answers with a bare HTTP status.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use connectrpc_axum::prelude::{Code, ConnectError};
use http::HeaderMap;
use prost::Message;
/// The standard error details (google/rpc/error_details.proto), as
/// tonic-types generates them.
pub use tonic_types::pb::{ErrorInfo, RetryInfo};

use super::protocol::{Protocol, content_type, is_connect_streaming};

/// Renders `error` for the protocol of the request whose headers are given:
/// a Connect unary error (JSON body, mapped HTTP status), a Connect
/// end-of-stream message, or a gRPC / gRPC-Web trailers-only response.
pub fn error_response(request_headers: &HeaderMap, error: ConnectError) -> Response {
    match Protocol::of(request_headers) {
        Protocol::Connect if is_connect_streaming(request_headers) => {
            let use_proto =
                content_type(request_headers).is_some_and(|ct| ct == "application/connect+proto");
            error.into_streaming_response(use_proto)
        }
        // REST errors are Connect's unary ones (JSON, the same HTTP statuses
        // as grpc-gateway's).
        Protocol::Connect | Protocol::Rest => error.into_response(),
        Protocol::Grpc | Protocol::GrpcWeb => {
            let content_type = request_headers
                .get(http::header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| http::HeaderValue::from_static("application/grpc"));
            // With its details (grpc-status-details-bin) and metadata.
            let status = tonic::Status::from(error);
            let mut response = status.into_http::<axum::body::Body>();
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type);
            response
        }
    }
}

/// `resource_exhausted` that says when to come back, the same on every
/// protocol: a `google.rpc.RetryInfo` detail and a `Retry-After` header (in
/// whole seconds, at least 1).
pub fn retry_later(message: impl Into<String>, retry_after: Duration) -> ConnectError {
    let info = RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(retry_after.subsec_nanos()).unwrap_or(0),
        }),
    };
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    ConnectError::new(Code::ResourceExhausted, message)
        .add_detail("google.rpc.RetryInfo", info.encode_to_vec())
        .with_meta(http::header::RETRY_AFTER, seconds.max(1).to_string())
}

/// A business refusal: `code` and words for people, with a
/// `google.rpc.ErrorInfo` detail carrying `reason` in `domain`, the same on
/// every protocol.
pub fn refusal(code: Code, message: impl Into<String>, reason: &str, domain: &str) -> ConnectError {
    let info = ErrorInfo {
        reason: reason.to_owned(),
        domain: domain.to_owned(),
        metadata: Default::default(),
    };
    ConnectError::new(code, message).add_detail("google.rpc.ErrorInfo", info.encode_to_vec())
}

/// Longest excerpt of a client's input an error message quotes, in chars.
pub const EXCERPT_CHARS: usize = 64;

/// A client's input quoted for an error message: at most
/// [`EXCERPT_CHARS`] characters (then "..."), control characters escaped,
/// so no answer or log line echoes a caller's megabyte back.
pub fn excerpt(input: &str) -> String {
    let mut quoted: String = format!(
        "{:?}",
        input.chars().take(EXCERPT_CHARS).collect::<String>()
    );
    if input.chars().nth(EXCERPT_CHARS).is_some() {
        quoted.push_str("...");
    }
    quoted
}

/// The longest error message the kit lets through, in bytes: a message
/// quoting a caller's input (a library's decode error, say) is cut here.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 256;

/// `message` cut to [`MAX_ERROR_MESSAGE_BYTES`] (on a character boundary,
/// then "..."), or `None` if it is short enough already.
pub fn bound_message(message: &str) -> Option<String> {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return None;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}...", &message[..end]))
}

/// How connectrpc-axum words a request body it could not read.
const BODY_READ_FAILED: &str = "failed to read request body:";

/// Corrects a Connect unary error (a JSON body on a non-200 answer) on its
/// way out: its message is cut to [`MAX_ERROR_MESSAGE_BYTES`], and a
/// request body that could not be read (corrupt gzip, broken chunked
/// framing) is the caller's fault, invalid_argument as in connect-go, where
/// connectrpc-axum 0.2.3 says internal. The Connect side's one layer
/// (`ConnectEdge`) calls it on every answer [`is_json_error`] says is one.
pub async fn correct_connect_error(response: Response) -> Response {
    if !is_json_error(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The body is in memory already (an error): bounded all the same.
    let Ok(collected) =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, 16 * 1024 * 1024))
            .await
    else {
        return ConnectError::new(Code::Internal, "error too large to send").into_response();
    };
    let bytes = collected.to_bytes();
    let mut error: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(error) => error,
        Err(_) => return Response::from_parts(parts, axum::body::Body::from(bytes)),
    };
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    let unreadable = error.get("code").and_then(|c| c.as_str()) == Some(Code::Internal.as_str())
        && message.starts_with(BODY_READ_FAILED);
    let short = bound_message(message);
    if !unreadable && short.is_none() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    if let Some(short) = short {
        error["message"] = serde_json::Value::String(short);
    }
    if unreadable {
        error["code"] = serde_json::Value::from(Code::InvalidArgument.as_str());
        parts.status = http::StatusCode::BAD_REQUEST;
    }
    let body = serde_json::to_vec(&error).unwrap_or_default();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Whether `response` is a Connect unary error ([`correct_connect_error`]
/// has something to look at): most answers are not, and skip its future.
pub fn is_json_error(response: &Response) -> bool {
    response.status() != http::StatusCode::OK
        && response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"))
}

pub use shop_kit_wire::code_name;

/// The `grpc-message` of a gRPC answer, percent-decoded (the gRPC spec
/// percent-encodes it on the wire).
pub fn grpc_message(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(super::protocol::GRPC_MESSAGE)?;
    Some(
        percent_encoding::percent_decode(raw.as_bytes())
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(bound_message("short"), None);
        let long = "é".repeat(300);
        let cut = bound_message(&long).expect("cut");
        assert!(cut.len() <= MAX_ERROR_MESSAGE_BYTES + 3);
        assert!(cut.ends_with("..."));
    }

    #[tokio::test]
    async fn connect_error_bodies_are_bounded() {
        let long = ConnectError::new(Code::InvalidArgument, "x".repeat(1 << 20)).into_response();
        let bounded = correct_connect_error(long).await;
        assert_eq!(bounded.status(), http::StatusCode::BAD_REQUEST);
        let body = http_body_util::BodyExt::collect(bounded.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert!(body.len() < 400, "{}", body.len());
        let error: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(error["code"], "invalid_argument");
    }

    #[tokio::test]
    async fn an_unreadable_request_body_is_the_callers_fault() {
        let unreadable = ConnectError::new(
            Code::Internal,
            format!("{BODY_READ_FAILED} Invalid gzip header"),
        )
        .into_response();
        let corrected = correct_connect_error(unreadable).await;
        assert_eq!(corrected.status(), http::StatusCode::BAD_REQUEST);
        let body = http_body_util::BodyExt::collect(corrected.into_body())
            .await
            .expect("body")
            .to_bytes();
        let error: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(error["code"], "invalid_argument");
        assert_eq!(
            error["message"],
            "failed to read request body: Invalid gzip header"
        );
        let ours = ConnectError::new(Code::Internal, "internal error").into_response();
        assert_eq!(
            correct_connect_error(ours).await.status(),
            http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("ada"), "\"ada\"");
        assert_eq!(excerpt("a\0b"), "\"a\\0b\"");
        let long = excerpt(&"x".repeat(1 << 20));
        assert!(long.len() < 80, "{}", long.len());
        assert!(long.ends_with("..."));
    }

    #[test]
    fn retry_later_carries_retry_info_and_retry_after() {
        let error = retry_later("slow down", Duration::from_millis(1500));
        assert_eq!(error.code(), Code::ResourceExhausted);
        assert_eq!(
            error
                .meta()
                .and_then(|m| m.get("retry-after"))
                .map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        let detail = &error.details()[0];
        assert_eq!(detail.type_url(), "google.rpc.RetryInfo");
    }

    #[test]
    fn grpc_errors_carry_their_details_and_metadata() {
        use tonic_types::StatusExt as _;
        for content_type in ["application/grpc", "application/grpc-web+proto"] {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            let response =
                error_response(&headers, retry_later("slow down", Duration::from_secs(3)));
            let status = tonic::Status::from_header_map(response.headers()).expect("a status");
            assert_eq!(
                status.code(),
                tonic::Code::ResourceExhausted,
                "{content_type}"
            );
            let info = status.get_details_retry_info().expect("RetryInfo");
            assert_eq!(info.retry_delay, Some(Duration::from_secs(3)));
            assert_eq!(response.headers()["retry-after"], "3", "{content_type}");
        }
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("found%205%2C%20limit%3A%204%25"),
        );
        assert_eq!(
            grpc_message(&headers).as_deref(),
            Some("found 5, limit: 4%")
        );
        assert_eq!(grpc_message(&HeaderMap::new()), None);
    }
}
