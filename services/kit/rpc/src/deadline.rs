//! Deadlines: how a call says its own (`grpc-timeout`,
//! `connect-timeout-ms`) and how a gRPC or gRPC-Web call is told it passed,
//! which tonic's router does not do (the gRPC edge enforces it: the answer
//! must start before the deadline, and a stream still open at the deadline
//! ends with DEADLINE_EXCEEDED trailers). Connect's is enforced by
//! connectrpc-axum.

use axum::{body::Body, response::Response};
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::protocol::{GRPC_MESSAGE, GRPC_STATUS};

pub use super::timeout::{BadTimeout, CONNECT_TIMEOUT_MS, parse_connect_timeout};
pub use shop_kit_wire::{Deadline, grpc_timeout_value, parse_grpc_timeout};

/// A gRPC call's deadline, from its header (a call the server classified
/// has it in its [`crate::classify::Call`] already, capped).
pub(super) fn of_grpc(headers: &HeaderMap) -> Option<Instant> {
    let value = headers.get(&super::protocol::GRPC_TIMEOUT)?.to_str().ok()?;
    parse_grpc_timeout(value).map(|timeout| Instant::now() + timeout)
}

const DEADLINE_MESSAGE: &str = "deadline exceeded";

/// The trailers-only answer to a call whose deadline passed before its
/// answer started.
pub(super) fn exceeded() -> Response {
    let (parts, ()) = tonic::Status::deadline_exceeded(DEADLINE_MESSAGE)
        .into_http::<()>()
        .into_parts();
    Response::from_parts(parts, Body::empty())
}

/// The trailers that end a stream still open when its deadline passes.
pub(super) fn exceeded_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("4"));
    trailers.insert(GRPC_MESSAGE, HeaderValue::from_static(DEADLINE_MESSAGE));
    trailers
}
