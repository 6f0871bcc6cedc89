//! The embedded shop's local dashboard: what a developer debugging their
//! own service wants to see first, without Jaeger, Prometheus or Grafana.
//!
//! - **services**, live: health, endpoints, requests per second, p50/p99,
//!   errors by code, admission, breakers, retries (`live`, from the
//!   process's own metrics handle, sent each second over SSE);
//! - **the contract**: every RPC with its schema, rules, policy and REST
//!   route (`contract`), and an explorer that calls it over Connect JSON as
//!   anyone, the demo customer or a new one (`explorer`);
//! - **traces** kept in process, **sagas** read from them, the **flow**
//!   between services and the **log** (`views`).
//!
//! It listens on loopback only and answers only requests addressed to
//! loopback (`guard`): a web page elsewhere cannot reach it by DNS
//! rebinding, nor post to its explorer from another origin.

mod contract;
mod explorer;
mod guard;
mod live;
mod page;
mod prometheus_text;
mod views;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    routing::{get, post},
};
use shop_kit::{
    HttpConfig, Readiness, Shutdown,
    observe::{kept_logs::KeptLogs, metrics::Metrics, traces::KeptTraces},
};

/// A service the dashboard shows.
#[derive(Clone, Debug)]
pub struct ShownService {
    /// The shop's name for it (`catalog`).
    pub name: &'static str,
    /// Where it answers (`http://127.0.0.1:8082`).
    pub url: String,
    /// The RPC services it serves, by full name.
    pub rpc_services: Vec<String>,
    pub readiness: Readiness,
}

/// What the dashboard reads.
#[derive(Clone, Debug)]
pub struct Sources {
    pub services: Vec<ShownService>,
    pub metrics: Metrics,
    pub traces: KeptTraces,
    pub logs: KeptLogs,
    /// The contract: an encoded `FileDescriptorSet`, options and all.
    pub contract: &'static [u8],
    /// The demo customer's email and password, if the shop seeded one.
    pub demo_account: Option<(String, String)>,
}

/// Why the dashboard did not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("the contract: {0}")]
    Contract(String),
    #[error("the dashboard: {0}")]
    Listen(#[from] shop_kit::rpc::ListenError),
}

/// Everything the handlers share.
pub(crate) struct State {
    pub sources: Sources,
    pub contract: contract::Contract,
    pub live: live::Live,
    pub explorer: explorer::Explorer,
}

/// Starts the dashboard on `addr` (loopback) until `shutdown`.
pub async fn start(
    addr: SocketAddr,
    sources: Sources,
    shutdown: &Shutdown,
) -> Result<shop_kit::rpc::Listening, DashboardError> {
    let router = router(sources, shutdown)?;
    shop_kit::rpc::start(addr, router, shutdown.clone(), &HttpConfig::default())
        .await
        .map_err(DashboardError::Listen)
}

/// The dashboard's routes, its sampler running until `shutdown`.
pub fn router(sources: Sources, shutdown: &Shutdown) -> Result<Router, DashboardError> {
    let contract = contract::Contract::read(sources.contract, &sources.services)
        .map_err(DashboardError::Contract)?;
    let live = live::Live::start(&sources, &contract, shutdown);
    let explorer = explorer::Explorer::new(&sources);
    let state = Arc::new(State {
        sources,
        contract,
        live,
        explorer,
    });
    Ok(Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .route("/api/contract", get(contract::serve))
        .route("/api/overview", get(live::overview))
        .route("/api/live", get(live::stream))
        .route("/api/call", post(explorer::call))
        .route("/api/traces", get(views::traces))
        .route("/api/traces/{trace_id}", get(views::trace))
        .route("/api/orders", get(views::orders))
        .route("/api/orders/{order_id}", get(views::saga))
        .route("/api/logs", get(views::logs))
        .route("/api/usage", get(views::usage))
        .layer(axum::middleware::from_fn(guard::loopback_only))
        .with_state(state))
}

impl DashboardError {
    /// Whether its port was taken by another program.
    pub fn port_taken(&self) -> bool {
        matches!(self, Self::Listen(shop_kit::rpc::ListenError::Bind { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse)
    }
}
