//! Starts services the one way every service starts (`shop_kit::app`), and
//! the process's own metrics listener.

use std::{net::SocketAddr, time::Duration};

use shop_kit::{HttpConfig, Readiness, Shutdown, app, observe::metrics::Metrics};

pub struct Started {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub database: String,
    pub seeded: String,
    /// The RPC services it serves, by full name.
    pub rpc_services: Vec<String>,
    /// What the banner offers to try it with (its crate's).
    pub tries: Vec<shop_kit::deploy::Try>,
    /// The demo account it made, if any.
    pub demo_account: Option<shop_kit::deploy::DemoAccount>,
    pub readiness: Readiness,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How each service of one start is started.
pub struct Launcher<'a> {
    addr: SocketAddr,
    http: HttpConfig,
    shutdown: &'a Shutdown,
    metrics: &'a Metrics,
}

impl<'a> Launcher<'a> {
    pub fn new(
        addr: SocketAddr,
        http: HttpConfig,
        shutdown: &'a Shutdown,
        metrics: &'a Metrics,
    ) -> Self {
        Self {
            addr,
            http,
            shutdown,
            metrics,
        }
    }

    pub async fn start<S: app::Service>(
        self,
        database: String,
        service: S,
    ) -> Result<Started, app::StartError> {
        let running = app::Launch::new(service)
            .addr(self.addr)
            .http(self.http)
            .shutdown(self.shutdown.clone())
            .metrics(self.metrics.clone())
            .start()
            .await?;
        Ok(Started {
            name: running.name,
            addr: running.addr,
            database,
            seeded: running.seeded,
            rpc_services: running.rpc_services,
            tries: Vec::new(),
            demo_account: None,
            readiness: running.readiness,
            task: running.task,
        })
    }
}

/// How long the whole shop waits for every service to be ready before it
/// says it runs (its services wait for each other: each for the peers its
/// contract declares).
pub const READY_PATIENCE: Duration = Duration::from_secs(30);
/// How often a service not ready yet is asked again, and said why after
/// the first few seconds.
const READY_POLL: Duration = Duration::from_millis(20);
const READY_NEWS_AFTER: Duration = Duration::from_secs(3);

/// Waits until every service started is ready (within `patience`), so that
/// what is printed as running takes calls at once: a service whose peers
/// have no endpoint that serves yet would refuse its first calls.
pub async fn until_ready(started: &[Started], patience: Duration) -> anyhow::Result<()> {
    let began = tokio::time::Instant::now();
    for service in started {
        let mut told = false;
        loop {
            let why = match service.readiness.check().await {
                Ok(()) => break,
                Err(why) => why,
            };
            let waited = began.elapsed();
            if waited >= patience {
                anyhow::bail!("{} was not ready within {patience:?}: {why}", service.name);
            }
            if waited >= READY_NEWS_AFTER && !std::mem::replace(&mut told, true) {
                tracing::warn!(service = service.name, reason = %why, "waiting for it to be ready");
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
    Ok(())
}

/// `--metrics-port`: the process's metrics on a plain-HTTP listener of
/// their own (the services' ports no longer serve them).
/// `http` is the process's own settings (`KitArgs::process_http`: plain).
pub async fn metrics(
    addr: SocketAddr,
    http: &HttpConfig,
    shutdown: &Shutdown,
    metrics: Metrics,
) -> anyhow::Result<shop_kit::rpc::Listening> {
    shop_kit::rpc::start(
        addr,
        shop_kit::rpc::metrics_routes(metrics),
        shutdown.clone(),
        http,
    )
    .await
    .map_err(|e| anyhow::anyhow!("metrics on {addr}: {e}"))
}
