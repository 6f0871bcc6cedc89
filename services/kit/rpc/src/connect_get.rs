//! Connect GET for idempotent methods. connectrpc-axum's tonic-compatible
//! builder registers POST only; a method marked
//! `option idempotency_level = NO_SIDE_EFFECTS;` also needs a GET route on
//! the same path, which this adds (axum merges it with the POST route).
//! The generated route builders (shop-kit-build) call it for every such
//! method of the contract.

use axum::{Router, handler::Handler};
use connectrpc_axum::handler::{ConnectHandlerWrapper, get_connect};

/// A router with a Connect GET route for `handler` at `path`.
///
/// Use with the request and response types named, e.g.
/// `connect_get::<GetProductRequest, GetProductResponse, _, _, _>(path, api::get_product)`.
pub fn connect_get<Req, Resp, F, T, S>(path: &str, handler: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConnectHandlerWrapper<F, Req, Resp>: Handler<T, S>,
    T: 'static,
{
    Router::new().route(path, get_connect::<F, T, S, Req, Resp>(handler))
}
