//! The infrastructure kit connect-shop's services share: what every service
//! needs and nothing of the shop's business (its services' names, its
//! tokens' issuer, its trust domain come from the shop), by concern.
//!
//! - [`app`]: the one way a service starts (open, seed, serve, shut down);
//! - [`rpc`]: serving one router on Connect, gRPC and gRPC-Web;
//! - [`rest`]: RPCs as REST routes, from `google.api.http` rules;
//! - [`client`]: calling another service (channels, deadline, retry,
//!   breaker, bulkhead, error translation);
//! - [`auth`]: verifying access tokens and who the caller is;
//! - [`tls`]: TLS and mutual TLS for the listener and the clients;
//! - [`observe`]: metrics, logs and trace context;
//! - [`db`] (feature `db`): connecting to a service's database;
//! - [`events`] (feature `events`): outbox, relay, inbox, NATS.

pub mod app;
pub mod auth;
pub mod client;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "events")]
pub mod events;
pub mod observe;
pub mod rest;
pub mod rpc;
mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use rpc::{HttpConfig, Readiness, ResponseMetadata, RpcServer, Valid, connect_get};
pub use shutdown::Shutdown;

/// Applies the kit's gRPC defaults to a tonic-generated server: gzip in both
/// directions and the configured message size limits. A macro because every
/// generated server type has these methods but no trait carries them.
#[macro_export]
macro_rules! grpc_defaults {
    ($server:expr, $http:expr) => {
        $server
            .accept_compressed($crate::__private::CompressionEncoding::Gzip)
            .send_compressed($crate::__private::CompressionEncoding::Gzip)
            .max_decoding_message_size($http.max_request_bytes)
            .max_encoding_message_size(usize::MAX)
    };
}

#[doc(hidden)]
pub mod __private {
    pub use tonic::codec::CompressionEncoding;
}
