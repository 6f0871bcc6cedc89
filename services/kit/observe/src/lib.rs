//! Seeing what the services do: the log and the metrics (an explicit
//! handle, [`metrics::Metrics`]), and traces
//! over OTLP with their context carried across calls, the outbox and the
//! saga (the metric, log line and server span of each RPC are made by the
//! serving stack, `rpc`, and the client spans by the client stack, with
//! these).

pub mod kept_logs;
mod log_format;
pub mod metrics;
pub mod telemetry;
pub mod traces;
