//! Refuses Connect requests compressed with an encoding the server does not
//! speak, with a Connect `unimplemented` error naming the ones it does
//! (instead of the bare HTTP 415 the decompression layer would give).
//! gRPC's `grpc-encoding` is negotiated by tonic itself.

use axum::response::Response;
use connectrpc_axum::prelude::{Code, ConnectError};
use http::{Method, Request, header::CONTENT_ENCODING};

use super::{
    classify::Call,
    connect_errors::error_response,
    protocol::{CONNECT_CONTENT_ENCODING, Framing, query_pairs},
};

/// The encodings the kit decodes, besides identity.
pub const SUPPORTED: &[&str] = &["gzip"];

/// The encoding a Connect request (classified as `call`) says its body is
/// compressed with.
fn requested_encoding<'r, B>(request: &'r Request<B>, call: &Call) -> Option<&'r str> {
    if request.method() == Method::GET {
        return request.uri().query().and_then(|query| {
            query_pairs(query)
                .find(|(key, _)| *key == "compression")
                .map(|(_, value)| value)
        });
    }
    let header = if call.framing == Framing::ConnectStream {
        CONNECT_CONTENT_ENCODING
    } else {
        CONTENT_ENCODING
    };
    request
        .headers()
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Returns the error for an encoding outside identity and [`SUPPORTED`].
#[cfg(any(test, feature = "fuzzing"))]
pub fn check<B>(request: &Request<B>) -> Option<ConnectError> {
    check_call(request, &Call::of(request))
}

/// [`check`], for a request already classified as `call`.
fn check_call<B>(request: &Request<B>, call: &Call) -> Option<ConnectError> {
    let encoding = requested_encoding(request, call)?;
    if encoding.is_empty() || encoding == "identity" || SUPPORTED.contains(&encoding) {
        return None;
    }
    Some(ConnectError::new(
        Code::Unimplemented,
        format!(
            "unknown compression \"{encoding}\": supported encodings are {}",
            SUPPORTED.join(",")
        ),
    ))
}

/// The answer to a Connect request compressed with an encoding outside
/// identity and [`SUPPORTED`]: `unimplemented`, naming the ones spoken.
pub fn refusal<B>(request: &Request<B>, call: &Call) -> Option<Response> {
    let error = check_call(request, call)?;
    let mut response = error_response(request.headers(), error);
    response
        .headers_mut()
        .insert("accept-encoding", http::HeaderValue::from_static("gzip"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(header: &str, value: &str, content_type: &str) -> Request<()> {
        Request::post("/a.B/C")
            .header("content-type", content_type)
            .header(header, value)
            .body(())
            .expect("request")
    }

    #[test]
    fn accepts_identity_and_gzip() {
        assert!(check(&post("content-encoding", "gzip", "application/json")).is_none());
        assert!(check(&post("content-encoding", "identity", "application/json")).is_none());
        assert!(
            check(&post(
                "connect-content-encoding",
                "gzip",
                "application/connect+json"
            ))
            .is_none()
        );
    }

    #[test]
    fn refuses_unknown_encodings_on_unary_stream_and_get() {
        let unary = check(&post("content-encoding", "br", "application/json")).expect("error");
        assert_eq!(unary.code(), Code::Unimplemented);
        assert!(unary.message().unwrap_or_default().contains("\"br\""));
        assert!(
            check(&post(
                "connect-content-encoding",
                "zstd",
                "application/connect+proto"
            ))
            .is_some()
        );
        let get = Request::get("/a.B/C?encoding=json&message=%7B%7D&compression=snappy")
            .body(())
            .expect("request");
        assert!(check(&get).is_some());
    }
}
