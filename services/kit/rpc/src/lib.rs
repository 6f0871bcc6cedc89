//! Serving: one router that speaks Connect (JSON and proto, unary, server
//! streaming, GET), gRPC (h2c) and gRPC-Web on one port, with health,
//! reflection, CORS, compression, deadlines and limits. [`RpcServer`]
//! assembles it; [`serve`] runs it on a listener with the bounds a server
//! facing strangers needs. Everything else here is its machinery.

pub mod admission;
mod app;
mod arrival;
mod batched_frames;
mod broken_rules;
mod call_context;
mod classify;
pub mod client_address;
pub mod config;
mod connect_bridge;
mod connect_edge;
pub mod connect_errors;
mod connect_get;
mod cors;
pub mod deadline;
mod dispatch;
mod drain;
mod encoding;
pub mod envelope;
mod grpc_edge;
mod grpc_json;
mod grpc_limits;
mod head;
mod health;
pub mod heartbeat;
mod listener;
mod observe;
mod pipeline;
mod policy;
mod proto_json;
pub mod protocol;
pub mod rate_class;
pub mod rate_limit;
mod request_id;
mod response_metadata;
mod rest;
mod series;
mod server;
pub mod service;
mod single_message;
mod sse;
mod stream_heartbeats;
mod timeout;
mod valid;
mod valid_stream;

pub use app::App;
pub use broken_rules::Rules;
pub use client_address::{
    Client, ClientAddressHeader, ClientAddressing, TrustedProxies, client_address, client_limit_key,
};
pub use config::HttpConfig;
pub use connect_get::connect_get;
pub use health::Readiness;
pub use listener::{ListenError, Listening, Starting, serve, start, start_on, start_with};
pub use prost_protovalidate::ValidationError;
pub use response_metadata::ResponseMetadata;
pub use server::{RpcServer, ServerError, metrics_routes};
pub use service::{GrpcServer, RpcService};
pub use valid::{
    Checked, Given, IntoRefusal, Missing, Prepared, Valid, ValidHandler, validated,
    validated_stream,
};
pub use valid_stream::ValidStream;

/// The machinery the fuzz targets drive directly (`--features fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use super::encoding::check as check_encoding;
    pub use super::grpc_json::{descriptor_pool, json_to_proto, proto_to_json};
    pub use super::request_id::{
        drop_unsafe as drop_unsafe_request_id, is_safe as is_safe_request_id,
    };
}

/// Applies the kit's gRPC defaults to a tonic-generated server: gzip in both
/// directions and the configured message size limits. A macro because every
/// generated server type has these methods but no trait carries them. The
/// kit's own servers (health, reflection) only: a service's come limited
/// with its `RpcService`.
#[doc(hidden)]
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
