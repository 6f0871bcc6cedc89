//! The production set-up, as the soak and the production profile run it:
//! fresh PostgreSQL databases (one per service), NATS JetStream, every
//! service its own `shop serve` process (as many replicas as asked) on
//! its own loopback address, mutual TLS between them (`shop certs`), TLS
//! to the clients (the shop's CA, no client certificate), and traces
//! sampled at 1% sent over OTLP/HTTP to a receiver that counts and
//! discards them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use shop_kit::{client::PeerTarget, tls::ClientTls};

use super::{
    otlp,
    parts::Parts,
    topology::{Counts, Nats, Topology, addr, peer_list},
};
use crate::{app_suite::shop::Databases, dial::Dial};

/// The set-up, running until dropped.
pub struct Production {
    pub databases: Databases,
    /// TLS to the services, trusting the shop's CA.
    pub dial: Dial,
    pub sink: otlp::Sink,
    pub nats: Nats,
    pub logs: PathBuf,
    ca: PathBuf,
    counts: Counts,
    // Held for the run, killed when it is dropped.
    topology: Topology,
}

impl Production {
    /// Fresh databases, certificates, NATS, the OTLP receiver, then every
    /// replica `counts` asks for, ready; `stock` of each demo product.
    pub async fn start(parts: &Parts, counts: Counts, stock: i32) -> anyhow::Result<Self> {
        let databases = Databases::Postgres(parts.postgres_url.clone());
        databases.recreate().await?;
        let logs = parts.scratch.join("logs");
        std::fs::create_dir_all(&logs)?;
        let certs = write_certs(&parts.shop_bin, &parts.scratch.join("certs"), &counts).await?;
        let ca = certs.join("ca.pem");
        let nats = Nats::start(&parts.nats_server, &parts.scratch.join("nats"), &logs).await?;
        let sink = otlp::Sink::start().await?;
        let dial = Dial::tls(&ca)?;
        let topology = Topology::start(
            &parts.shop_bin,
            &dial,
            &logs,
            &databases,
            &nats.url,
            counts.clone(),
            &[
                ("SHOP_TLS_DIR", certs.display().to_string()),
                ("SHOP_DEMO_STOCK", stock.to_string()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint.clone()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01".to_owned()),
            ],
        )
        .await
        .context("starting the replicas")?;
        Ok(Self {
            databases,
            dial,
            sink,
            nats,
            logs,
            ca,
            counts,
            topology,
        })
    }

    /// Every replica of `service`, as the kit's client reaches it: https,
    /// trusting the shop's CA.
    pub fn target(&self, service: &str) -> anyhow::Result<PeerTarget> {
        let tls = ClientTls::load(self.ca.clone(), None)?;
        Ok(
            peer_list(service, self.counts.of(service), self.dial.scheme())
                .parse::<PeerTarget>()?
                .with_tls(Some(tls)),
        )
    }

    /// Each process's name and pid: every replica's (`catalog-0`), then
    /// nats-server's.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut processes = self.topology.pids();
        processes.extend(self.nats.pid().map(|pid| ("nats-server".to_owned(), pid)));
        processes
    }

    /// Every replica's name and address.
    pub fn replicas(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.counts
            .0
            .iter()
            .flat_map(|(service, n)| {
                (0..*n).map(move |index| (format!("{service}-{index}"), addr(service, index)))
            })
            .collect()
    }
}

/// `shop certs` into `dir`, naming every replica's address.
async fn write_certs(bin: &Path, dir: &Path, counts: &Counts) -> anyhow::Result<PathBuf> {
    let mut command = tokio::process::Command::new(bin);
    command.arg("certs").arg(dir);
    let most = counts.0.iter().map(|(_, n)| *n).max().unwrap_or(1);
    for index in 0..most {
        command.args(["--name", &addr("catalog", index).ip().to_string()]);
    }
    let written = command
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("running {} certs", bin.display()))?;
    anyhow::ensure!(written.success(), "shop certs failed ({written})");
    Ok(dir.to_owned())
}
