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

/// The Connect name of a gRPC numeric code, as used in metric labels.
pub fn code_name(number: i32) -> &'static str {
    match number {
        0 => "ok",
        1 => "canceled",
        2 => "unknown",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "unknown",
    }
}

/// The Connect code a bare HTTP status stands for (Connect's fallback table).
pub fn code_name_for_http_status(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "ok",
        400 => "internal",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "unimplemented",
        429 | 502..=504 => "unavailable",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_number() {
        for n in 0..=16 {
            let name = code_name(n);
            assert_ne!(name, "", "code {n}");
        }
        assert_eq!(code_number(Code::DeadlineExceeded), 4);
        assert_eq!(
            code_name(code_number(Code::ResourceExhausted)),
            "resource_exhausted"
        );
    }
}
