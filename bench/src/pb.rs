//! The benchmark's contract, generated from `proto/bench/v1/echo.proto`.

#![allow(clippy::all, clippy::pedantic, clippy::unwrap_used, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/bench.rs"));

/// The encoded `FileDescriptorSet` of echo.proto, for reflection and the
/// kit's gRPC JSON codec.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_descriptor.bin"));

pub use bench::v1::*;
