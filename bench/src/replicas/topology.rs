//! The shop as replicas on one machine, each `shop serve <service>` on a
//! loopback address of its own and the same port, as pods behind a headless
//! Service are: replica 0 of a service on 127.0.0.2, replica 1 on
//! 127.0.0.3, ... Peers are given as lists of every replica's URL; the
//! databases are PostgreSQL, the events NATS JetStream.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::Child;

use crate::{app_suite::shop::Databases, dial::Dial};

/// Each service's port, the same on every replica's address.
pub const PORTS: [(&str, u16); 5] = [
    ("gateway", 19480),
    ("users", 19481),
    ("catalog", 19482),
    ("orders", 19483),
    ("payments", 19484),
];

fn port(service: &str) -> u16 {
    PORTS
        .iter()
        .find(|(name, _)| *name == service)
        .map_or(0, |(_, port)| *port)
}

/// Replica `index` of `service`: its address.
pub fn addr(service: &str, index: usize) -> SocketAddr {
    let host = u8::try_from(2 + index).unwrap_or(u8::MAX);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), port(service))
}

/// Every replica of `service`, as a peer list (`http://a,http://b`, or
/// https).
pub fn peer_list(service: &str, replicas: usize, scheme: &str) -> String {
    (0..replicas)
        .map(|index| format!("{scheme}://{}", addr(service, index)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A nats-server with JetStream on loopback, storing under `store`.
pub struct Nats {
    pub url: String,
    child: Child,
}

impl Nats {
    pub async fn start(binary: &str, store: &Path, logs: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(logs.join("nats-server.log"))?;
        let child = tokio::process::Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary} (apt-get install nats-server)"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("nats-server did not start within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            url: format!("nats://127.0.0.1:{port}"),
            child,
        })
    }
}

impl Nats {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// How many replicas each service runs.
#[derive(Clone, Debug)]
pub struct Counts(pub Vec<(&'static str, usize)>);

impl Counts {
    pub fn of(&self, service: &str) -> usize {
        self.0
            .iter()
            .find(|(name, _)| *name == service)
            .map_or(0, |(_, n)| *n)
    }
}

/// The running replicas.
pub struct Topology {
    bin: PathBuf,
    dial: Dial,
    logs: PathBuf,
    env: Vec<(String, String)>,
    /// (service, index) -> its process, if running.
    processes: Vec<((&'static str, usize), Option<Child>)>,
}

impl Topology {
    /// Starts every replica (users first: the others fetch its keys) and
    /// waits until each is ready; each calls its peers with `dial`'s
    /// scheme (the TLS settings are among the `overrides`).
    pub async fn start(
        bin: &Path,
        dial: &Dial,
        logs: &Path,
        databases: &Databases,
        nats_url: &str,
        counts: Counts,
        overrides: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        if !bin.exists() {
            bail!(
                "{} is missing: `cargo build --release -p shop`",
                bin.display()
            );
        }
        let mut env: Vec<(String, String)> = vec![
            ("SHOP_SERVICE_SECRET".into(), "shop-replicas-secret".into()),
            ("NATS_URL".into(), nats_url.to_owned()),
            ("SHOP_RATE_LIMIT_IP_PER_SECOND".into(), "1000000".into()),
            ("SHOP_RATE_LIMIT_IP_BURST".into(), "1000000".into()),
            ("SHOP_RATE_LIMIT_USER_PER_SECOND".into(), "1000000".into()),
            ("SHOP_RATE_LIMIT_USER_BURST".into(), "1000000".into()),
            ("SHOP_SIGN_IN_IP_BURST".into(), "1000000".into()),
            ("SHOP_SIGN_IN_IP_PER_MINUTE".into(), "1000000".into()),
        ];
        for (service, _) in PORTS {
            let upper = service.to_uppercase();
            env.push((format!("{upper}_PORT"), port(service).to_string()));
            env.push((
                format!("{upper}_URL"),
                peer_list(service, counts.of(service), dial.scheme()),
            ));
            if let Some(url) = databases
                .postgres_url(service)
                .filter(|_| service != "gateway")
            {
                env.push((format!("{upper}_DATABASE_URL"), url));
            }
        }
        env.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let mut topology = Self {
            bin: bin.to_owned(),
            dial: dial.clone(),
            logs: logs.to_owned(),
            env,
            processes: Vec::new(),
        };
        for (service, n) in &counts.0 {
            // Replicas of a service start together, as a Deployment's pods.
            for index in 0..*n {
                let child = topology.spawn(service, index)?;
                topology.processes.push(((service, index), Some(child)));
            }
            for index in 0..*n {
                topology.wait_ready(service, index).await?;
            }
        }
        Ok(topology)
    }

    /// Each running replica's name (`catalog-0`) and process id.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .filter_map(|((service, index), child)| {
                Some((format!("{service}-{index}"), child.as_ref()?.id()?))
            })
            .collect()
    }

    fn spawn(&self, service: &'static str, index: usize) -> anyhow::Result<Child> {
        let at = addr(service, index);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{service}-{index}.log")))?;
        tokio::process::Command::new(&self.bin)
            .args(["serve", service])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SHOP_HOST", at.ip().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {service} {index}"))
    }

    fn process(&mut self, service: &str, index: usize) -> anyhow::Result<&mut Option<Child>> {
        self.processes
            .iter_mut()
            .find(|((s, i), _)| *s == service && *i == index)
            .map(|(_, child)| child)
            .with_context(|| format!("no replica {index} of {service}"))
    }

    /// SIGTERM, then waits for the process to drain and exit: how long it
    /// took.
    pub async fn stop(&mut self, service: &str, index: usize) -> anyhow::Result<Duration> {
        let Some(mut child) = self.process(service, index)?.take() else {
            bail!("{service} {index} is not running");
        };
        let pid = child.id().context("no pid")?;
        let asked = Instant::now();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        let exited = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .with_context(|| format!("{service} {index} did not exit within 60 s of SIGTERM"))??;
        if !exited.success() {
            bail!("{service} {index} exited with {exited} after SIGTERM");
        }
        Ok(asked.elapsed())
    }

    /// SIGKILL: gone at once, every connection reset.
    pub async fn kill(&mut self, service: &str, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.process(service, index)?.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts the replica again and waits until it is ready: how long that
    /// took.
    pub async fn start_again(
        &mut self,
        service: &'static str,
        index: usize,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let child = self.spawn(service, index)?;
        *self.process(service, index)? = Some(child);
        self.wait_ready(service, index).await?;
        Ok(started.elapsed())
    }

    async fn wait_ready(&mut self, service: &str, index: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let logs = self.logs.clone();
        loop {
            if self
                .dial
                .get(addr(service, index), "/readyz")
                .await
                .is_ok_and(|answer| answer.status.is_success())
            {
                return Ok(());
            }
            if let Some(child) = self.process(service, index)?.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{service} {index} exited at start ({status}); see {}",
                    logs.join(format!("{service}-{index}.log")).display()
                );
            }
            if Instant::now() > deadline {
                bail!("{service} {index} was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The calls a replica's server answered, from its `/metrics`
/// (`rpc_server_call_duration_seconds_count`, summed over `service`'s methods).
pub async fn calls_served(dial: &Dial, at: SocketAddr, rpc_service: &str) -> anyhow::Result<f64> {
    let page = dial.get(at, "/metrics").await?;
    let text = String::from_utf8_lossy(&page.body);
    Ok(
        crate::prometheus::series(&text, "rpc_server_call_duration_seconds_count")
            .filter(|series| series.label("service") == Some(rpc_service))
            .map(|series| series.value)
            .sum(),
    )
}
