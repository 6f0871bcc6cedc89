//! Errors produced by the kit's own layers, in the wire form of the protocol
//! the caller speaks, so no layer ever answers with a bare HTTP status.

use axum::response::{IntoResponse, Response};
use connectrpc_axum::prelude::{Code, ConnectError};
use http::HeaderMap;

use crate::protocol::{Protocol, content_type, is_connect_streaming};

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
        Protocol::Connect => error.into_response(),
        Protocol::Grpc | Protocol::GrpcWeb => {
            let content_type = request_headers
                .get(http::header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| http::HeaderValue::from_static("application/grpc"));
            let status = tonic::Status::new(
                tonic::Code::from_i32(code_number(error.code())),
                error.message().unwrap_or_default(),
            );
            let mut response = status.into_http::<axum::body::Body>();
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type);
            response
        }
    }
}

/// The numeric gRPC code of a Connect code (they share one table).
pub fn code_number(code: Code) -> i32 {
    connectrpc_axum::message::error::code_to_tonic(code) as i32
}

/// The Connect name of a gRPC numeric status (they share one table).
pub fn code_name(number: i32) -> &'static str {
    connectrpc_axum::message::error::code_from_tonic(tonic::Code::from_i32(number)).as_str()
}

/// The `grpc-message` of a gRPC answer, percent-decoded (the gRPC spec
/// percent-encodes it on the wire).
pub fn grpc_message(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("grpc-message")?;
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
    fn codes_map_between_numbers_and_names() {
        assert_eq!(code_number(Code::DeadlineExceeded), 4);
        assert_eq!(code_name(0), "ok");
        assert_eq!(
            code_name(code_number(Code::ResourceExhausted)),
            "resource_exhausted"
        );
        assert_eq!(code_name(16), "unauthenticated");
        assert_eq!(code_name(99), "unknown");
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
