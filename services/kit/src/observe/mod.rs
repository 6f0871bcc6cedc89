//! Seeing what the services do: the log and metrics pipelines, and W3C
//! trace context carried across calls (the metric and log line of each
//! RPC are written by the serving stack, `rpc`, into these).

pub mod telemetry;
pub mod trace_context;
