//! Starts services the one way every service starts (`shop_kit::app`), and
//! the process's own metrics listener.

use std::net::SocketAddr;

use shop_kit::{HttpConfig, Shutdown, app, observe::metrics::Metrics};

use crate::plan::{Planned, Start};

pub struct Started {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub database: String,
    pub seeded: String,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts `start` and waits until it serves.
pub async fn start(
    start: Start,
    shutdown: &Shutdown,
    metrics: &Metrics,
) -> anyhow::Result<Started> {
    let Start {
        service,
        addr,
        http,
        demo_note,
    } = start;
    let launch = Launcher {
        addr,
        http,
        shutdown,
        metrics,
    };
    let mut started = match service {
        Planned::Users(users) => launch.start(users.database_url.to_string(), users).await?,
        Planned::Catalog(catalog) => {
            launch
                .start(catalog.database_url.to_string(), catalog)
                .await?
        }
        Planned::Orders(orders) => {
            launch
                .start(orders.database_url.to_string(), *orders)
                .await?
        }
        Planned::Payments(payments) => {
            launch
                .start(payments.database_url.to_string(), payments)
                .await?
        }
        Planned::Gateway(gateway) => launch.start("none".to_owned(), *gateway).await?,
    };
    if let Some(note) = demo_note {
        started.seeded.push_str(note);
    }
    Ok(started)
}

struct Launcher<'a> {
    addr: SocketAddr,
    http: HttpConfig,
    shutdown: &'a Shutdown,
    metrics: &'a Metrics,
}

impl Launcher<'_> {
    async fn start<S: app::Service>(
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
            task: running.task,
        })
    }
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
