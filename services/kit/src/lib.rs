//! The kit every shop service starts with: [`app`], the one way a service
//! starts, and the kit's crates by concern under the names the services
//! use. Each is a crate of its own (`services/kit/<concern>`), so the
//! compiler holds the layers: nothing below reaches back up, no circle
//! forms across them, and a change recompiles only what stands above it.
//! None knows the shop's business: its services' names, its tokens'
//! issuer, its trust domain come from the shop (`shop_proto::identity`).
//!
//! ```text
//! app       shop-kit           open, seed, serve, shut down
//! deploy    shop-kit           what the launcher starts a service from
//! task      shop-kit           work a call hands to another task, the call carried
//! testing   shop-kit-testing   a database per test, a request per protocol
//! rpc       shop-kit-rpc       serving Connect, gRPC and gRPC-Web on one port
//! auth      shop-kit-auth      access tokens, who the caller is
//! events    shop-kit-events    outbox, relay, NATS
//! client    shop-kit-client    calling another service (a tower stack)
//! db        shop-kit-db        a service's database
//! rest      shop-kit-rest      RPCs as REST routes, from google.api.http
//! tls       shop-kit-tls       TLS and mutual TLS, on rustls
//! Shutdown  shop-kit-shutdown  drain, then stop, within one grace
//! observe   shop-kit-observe   logs, metrics (an explicit handle), traces
//! wire      shop-kit-wire      code names, gRPC headers, deadlines
//! ```

pub mod app;
#[cfg(feature = "launch")]
pub mod deploy;
#[cfg(feature = "db")]
mod storage;
pub mod task;

pub use shop_kit_auth as auth;
pub use shop_kit_client as client;
#[cfg(feature = "db")]
pub use shop_kit_db as db;
#[cfg(feature = "events")]
pub use shop_kit_events as events;
pub use shop_kit_observe as observe;
pub use shop_kit_policy as policy;
pub use shop_kit_rest as rest;
pub use shop_kit_rpc as rpc;
pub use shop_kit_rpc::{
    HttpConfig, Readiness, ResponseMetadata, RpcServer, RpcService, Valid, ValidStream, connect_get,
};
pub use shop_kit_shutdown::Shutdown;
#[cfg(feature = "testing")]
pub use shop_kit_testing as testing;
pub use shop_kit_tls as tls;
pub use shop_kit_wire as wire;
#[cfg(feature = "db")]
pub use storage::storage_failure;
