//! What the conformance server and client share: the suite's generated
//! messages, its descriptors, and the runner's framing of them on stdin
//! and stdout.

pub mod any;
pub mod frames;

#[allow(clippy::all, clippy::pedantic, dead_code)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/conformance.rs"));
}

pub use pb::connectrpc::conformance::v1 as conformance;

/// The suite's descriptors, for reflection, the gRPC JSON codec and the
/// client's call policies.
pub const DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/conformance_descriptor.bin"));
