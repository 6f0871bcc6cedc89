//! Refuses Connect requests compressed with an encoding the server does not
//! speak, with a Connect `unimplemented` error naming the ones it does
//! (instead of the bare HTTP 415 the decompression layer would give).
//! gRPC's `grpc-encoding` is negotiated by tonic itself.

use std::task::{Context, Poll};

use axum::response::Response;
use connectrpc_axum::prelude::{Code, ConnectError};
use futures::future::{Either, Ready, ready};
use http::{Method, Request};
use tower::{Layer, Service};

use super::{
    connect_errors::error_response,
    protocol::{Protocol, is_connect_streaming},
};

/// The encodings the kit decodes, besides identity.
pub const SUPPORTED: &[&str] = &["gzip"];

/// The encoding a Connect request says its body is compressed with.
fn requested_encoding<B>(request: &Request<B>) -> Option<String> {
    if request.method() == Method::GET {
        return request.uri().query().and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "compression")
                .map(|(_, value)| value.to_owned())
        });
    }
    let header = if is_connect_streaming(request.headers()) {
        "connect-content-encoding"
    } else {
        "content-encoding"
    };
    request
        .headers()
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// Returns the error for an encoding outside identity and [`SUPPORTED`].
pub fn check<B>(request: &Request<B>) -> Option<ConnectError> {
    let encoding = requested_encoding(request)?;
    if encoding.is_empty() || encoding == "identity" || SUPPORTED.contains(&encoding.as_str()) {
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

#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectEncodingLayer;

impl<S> Layer<S> for ConnectEncodingLayer {
    type Service = ConnectEncoding<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectEncoding { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectEncoding<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ConnectEncoding<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if Protocol::of(request.headers()) == Protocol::Connect
            && let Some(error) = check(&request)
        {
            let mut response = error_response(request.headers(), error);
            response
                .headers_mut()
                .insert("accept-encoding", http::HeaderValue::from_static("gzip"));
            return Either::Right(ready(Ok(response)));
        }
        Either::Left(self.inner.call(request))
    }
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
