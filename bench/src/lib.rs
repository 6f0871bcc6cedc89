//! The harness behind `just bench` and `just chaos`: servers under test,
//! the load (h2load), the launched shop (a process per service, on SQLite
//! or PostgreSQL), the reports. The binaries: `shop-bench` (src/main.rs)
//! and `shop-chaos` (src/bin/shop-chaos.rs).

pub mod app_suite;
pub mod chaos;
pub mod cpus;
mod echo;
mod h2load;
pub mod machine;
mod pb;
mod preflight;
pub mod profile;
pub mod protocol_suite;
pub mod report;
pub mod servers;
mod stats;
pub mod targets;
