//! OTLP export of ended spans: their encoding and their transport.

mod encode;
mod send;

pub(crate) use encode::{ResourceGroup, export_request};
pub use send::SendError;
pub(crate) use send::Sender;
