//! The harness behind `just bench`, `just chaos` and `just replicas`:
//! servers under test, the load (h2load), the launched shop (a process per
//! service, on SQLite or PostgreSQL; or replicas), the reports. The
//! binaries: `shop-bench` (src/main.rs: the suites, and the order path in
//! the embedded and production profiles), `shop-chaos`, `shop-overload`,
//! `shop-replicas` and `shop-soak` (src/bin/).

pub mod app_suite;
pub mod caller;
pub mod chaos;
pub mod cpus;
pub mod dial;
mod echo;
mod h2load;
pub mod hedging;
pub mod machine;
pub mod order_profiles;
pub mod overload;
mod pb;
mod preflight;
pub mod profile;
mod prometheus;
pub mod protocol_suite;
pub mod replicas;
pub mod report;
pub mod servers;
pub mod soak;
mod stats;
pub mod targets;
pub mod tls_suite;
pub mod verdict;
