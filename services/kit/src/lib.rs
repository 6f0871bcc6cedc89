//! connect-shop's infrastructure kit: what every service shares and nothing
//! of the shop's business.
//!
//! [`RpcServer`] turns a service's Connect router and tonic server into ONE
//! listener that speaks Connect (JSON and proto, unary, server streaming,
//! GET), gRPC (h2c) and gRPC-Web, with health, reflection, CORS, gzip,
//! deadlines, size limits, metrics and one log line per RPC.

pub mod app;
pub mod auth;
pub mod config;
pub mod connect_bridge;
pub mod connect_errors;
pub mod connect_get;
pub mod cors;
#[cfg(feature = "db")]
pub mod database;
pub mod deadline;
pub mod downstream;
pub mod drain;
pub mod encoding;
pub mod envelope;
#[cfg(feature = "events")]
pub mod events;
pub mod grpc_json;
pub mod grpc_limits;
pub mod health;
pub mod listener;
pub mod observe;
pub mod protocol;
pub mod rate_limit;
pub mod request_id;
pub mod response_metadata;
pub mod server;
pub mod shutdown;
pub mod single_message;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace_context;

pub use config::HttpConfig;
pub use connect_get::connect_get;
pub use health::Readiness;
pub use response_metadata::ResponseMetadata;
pub use server::RpcServer;
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
