//! Rate classes: a limiter a service registers under a name
//! ([`RpcServer::rate_class`](super::RpcServer::rate_class)), which every
//! method whose contract names that class (`rate_class` in
//! `kit.policy.v1`) counts against, in the step that admits its caller:
//! before any handler code runs, on Connect, gRPC, gRPC-Web and REST alike.
//! A refusal is `resource_exhausted` with when to come back (a
//! `google.rpc.RetryInfo` and `Retry-After`). A method that names a class
//! the server has no limiter for stops the server from being assembled.

use std::{collections::HashMap, sync::Arc, time::Duration};

use connectrpc_axum::prelude::ConnectError;
use http::request::Parts;

use super::connect_errors::retry_later;

/// A limiter methods count against by naming it in their contract.
pub trait RateClass: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one call from the allowance of whoever `request` (its head:
    /// the peer's address and certificate, the headers) comes from, or
    /// says when to come back.
    fn admit(&self, request: &Parts) -> Result<(), RateRefused>;
}

/// A call over its class's allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRefused {
    /// What the caller reads.
    pub message: String,
    pub retry_after: Duration,
}

/// The limiters a server has, by class name.
pub(crate) type RateClasses = HashMap<String, Arc<dyn RateClass>>;

impl From<RateRefused> for ConnectError {
    fn from(refused: RateRefused) -> Self {
        retry_later(refused.message, refused.retry_after)
    }
}
