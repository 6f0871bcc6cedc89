//! The shop's contract, generated from the .proto files under `proto/shop`.
//!
//! Each package is a module (`shop::catalog::v1`, ...) holding the prost
//! messages with their proto3-JSON serde, the Connect handler builders
//! (`*_service_connect`), the tonic servers and the tonic clients.

#![allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/shop.rs"));

/// The encoded `FileDescriptorSet` of every shop proto (imports included),
/// for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shop_descriptor.bin"));

/// The well-known types the contract uses (`google.protobuf.Timestamp`,
/// `Duration`), with their proto3-JSON serde.
pub mod wkt {
    pub use pbjson_types::{Duration, Timestamp};
}
