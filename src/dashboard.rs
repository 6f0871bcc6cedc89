//! The local dashboard of the shop (the `shop-dashboard` crate): whether it
//! runs, what it keeps in memory while it does, and its start once every
//! service is ready.

use std::net::{Ipv4Addr, SocketAddr};

use shop_kit::{
    Shutdown,
    observe::{kept_logs::KeptLogs, metrics::Metrics, traces::KeptTraces},
};

use crate::{
    calling::Calling,
    cli::kit::{DEFAULT_DASHBOARD_PORT, DashboardArgs},
    launch::Started,
};

/// What the dashboard reads that must be kept from the start: the traces
/// and log lines, kept in memory only while it is on.
pub struct Keeping {
    pub traces: KeptTraces,
    pub logs: KeptLogs,
    port: Option<u16>,
    /// Asked for by `shop serve` (a pod, most likely), not the whole shop.
    asked_alone: bool,
}

/// What the banner says of it.
pub enum Shown {
    At(SocketAddr),
    /// The default port was taken: the shop runs without it.
    PortTaken(String),
    Off,
}

impl Keeping {
    /// What to keep, if the dashboard is on: on for the whole shop unless
    /// `--dashboard off`, off for one service unless `--dashboard`.
    pub fn wanted(args: &DashboardArgs, whole_shop: bool) -> Option<Self> {
        args.dashboard.unwrap_or(whole_shop).then(|| Self {
            traces: KeptTraces::default(),
            logs: KeptLogs::default(),
            port: args.dashboard_port,
            asked_alone: !whole_shop,
        })
    }

    /// Starts the dashboard over the started services.
    pub async fn start(
        self,
        running: &[Started],
        calling: &Calling,
        metrics: Metrics,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Shown> {
        let services = running
            .iter()
            .map(|started| shop_dashboard::ShownService {
                name: started.name,
                url: calling.url(started.addr),
                rpc_services: started.rpc_services.clone(),
                readiness: started.readiness.clone(),
            })
            .collect();
        let demo_account = running
            .iter()
            .find_map(|started| started.demo_account.as_ref())
            .map(|demo| (demo.email.to_owned(), demo.password.to_owned()));
        let sources = shop_dashboard::Sources {
            services,
            metrics,
            traces: self.traces,
            logs: self.logs,
            contract: shop_proto::FILE_DESCRIPTOR_SET,
            demo_account,
        };
        let port = self.port.unwrap_or(DEFAULT_DASHBOARD_PORT);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match shop_dashboard::start(addr, sources, shutdown).await {
            Ok(listening) => {
                if self.asked_alone {
                    // In a pod, loopback is shared with every sidecar and
                    // with `kubectl port-forward`: say what that reaches.
                    tracing::warn!(
                        dashboard = %listening.addr,
                        "the dashboard shows this service's kept traces and log lines, and its \
                         explorer calls the service as anyone (a new customer; the demo \
                         customer where seeded), to every process that reaches this \
                         machine's or pod's loopback: sidecars, kubectl port-forward; \
                         run it only where that is you"
                    );
                }
                Ok(Shown::At(listening.addr))
            }
            Err(error) if error.port_taken() && self.port.is_none() => Ok(Shown::PortTaken(
                format!("{addr} is in use (--dashboard-port PORT, or 0 for any free one)"),
            )),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_for_the_whole_shop_and_off_for_one_service_unless_told() {
        let args = |dashboard| DashboardArgs {
            dashboard,
            dashboard_port: None,
        };
        assert!(Keeping::wanted(&args(None), true).is_some());
        assert!(Keeping::wanted(&args(None), false).is_none());
        assert!(Keeping::wanted(&args(Some(false)), true).is_none());
        assert!(Keeping::wanted(&args(Some(true)), false).is_some());
    }
}
