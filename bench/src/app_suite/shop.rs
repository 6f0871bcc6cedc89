//! Launches the shop for the app suite: the launcher as one process (how
//! `cargo run` starts it), or each service as its own `shop serve` process
//! so memory can be read per service. Every process is pinned to the server
//! core and killed when dropped.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::process::Child;

use crate::cpus::Cpus;

/// The shop's services, in start order, with their port offsets.
pub const SERVICES: [&str; 5] = ["users", "catalog", "orders", "payments", "gateway"];

/// First port of the shop under test (users; the others follow).
const FIRST_PORT: u16 = 19280;

/// Where the services keep their data.
#[derive(Clone, Debug)]
pub enum Databases {
    Sqlite(PathBuf),
    /// One database per service: the URL with its database name replaced.
    Postgres(String),
}

impl Databases {
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Databases::Sqlite(dir) => vec![("SHOP_DATA_DIR".into(), dir.display().to_string())],
            Databases::Postgres(_) => SERVICES[..4]
                .iter()
                .map(|service| {
                    (
                        format!("{}_DATABASE_URL", service.to_uppercase()),
                        self.postgres_url(service).unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    /// The PostgreSQL URL of `service`'s database (`bench_<service>`).
    pub fn postgres_url(&self, service: &str) -> Option<String> {
        let Databases::Postgres(admin) = self else {
            return None;
        };
        let (base, _) = admin.rsplit_once('/')?;
        Some(format!("{base}/bench_{service}"))
    }

    /// Fresh, empty databases (PostgreSQL: dropped and created with psql).
    pub async fn recreate(&self) -> anyhow::Result<()> {
        match self {
            Databases::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir)?;
            }
            Databases::Postgres(admin) => {
                for service in &SERVICES[..4] {
                    let drop = format!("DROP DATABASE IF EXISTS bench_{service} WITH (FORCE)");
                    // FORCE ends the database's sessions, but a role that
                    // is not a superuser may not end an autovacuum worker
                    // ("must be a member of the role whose process is
                    // being terminated"): it is done within moments.
                    let mut tries = 0;
                    while let Err(error) = psql(admin, &drop).await {
                        tries += 1;
                        if tries == 25
                            || !error.to_string().contains("must be a member of the role")
                        {
                            return Err(error);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                    psql(admin, &format!("CREATE DATABASE bench_{service}")).await?;
                }
            }
        }
        Ok(())
    }
}

/// Runs `sql` with psql as `admin`.
async fn psql(admin: &str, sql: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("psql")
        .args([admin, "-qc", sql])
        .output()
        .await
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A running shop.
pub struct Shop {
    /// (service names it serves, process).
    processes: Vec<(Vec<&'static str>, Child)>,
    launch: Launch,
}

/// How its processes are started (again, after a kill).
struct Launch {
    bin: PathBuf,
    layout: Layout,
    env: Vec<(String, String)>,
    cpus: Cpus,
    logs: PathBuf,
}

impl Launch {
    fn spawn(&self, services: &[&'static str]) -> anyhow::Result<Child> {
        let args: Vec<&str> = match self.layout {
            Layout::OneProcess => vec!["run"],
            Layout::ProcessPerService => vec!["serve", services[0]],
        };
        let log = self.logs.join(format!("shop-{}.log", services.join("-")));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        self.cpus
            .server_command(self.bin.as_os_str(), &args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))
    }
}

/// How the shop is started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// `shop`: every service in one process.
    OneProcess,
    /// `shop serve <service>` five times.
    ProcessPerService,
}

impl Shop {
    /// Starts the shop and waits until every service is ready; returns it
    /// and how long that took.
    pub async fn start(
        bin: &Path,
        layout: Layout,
        databases: &Databases,
        cpus: &Cpus,
        logs: &Path,
    ) -> anyhow::Result<(Self, Duration)> {
        Self::start_with(bin, layout, databases, cpus, logs, &[]).await
    }

    /// The embedded shop for a load run: one process on SQLite under
    /// `scratch` (its data and logs there), `overrides` in its
    /// environment, on the server's cores, and this process then on the
    /// load's. Says so on stderr, after `run` (what the run will do).
    pub async fn embedded_under_load(
        bin: &Path,
        scratch: &Path,
        overrides: &[(&str, &str)],
        run: &str,
    ) -> anyhow::Result<(Self, Databases)> {
        let databases = Databases::Sqlite(scratch.join("data"));
        databases.recreate().await?;
        let logs = scratch.join("logs");
        std::fs::create_dir_all(&logs)?;
        let cpus = Cpus::detect();
        eprintln!(
            "{run}: the embedded shop (SQLite), {}; logs in {}",
            cpus.describe(),
            logs.display()
        );
        let (shop, _) =
            Self::start_with(bin, Layout::OneProcess, &databases, &cpus, &logs, overrides)
                .await
                .context("starting the shop")?;
        cpus.pin_self_to_load();
        Ok((shop, databases))
    }

    /// As [`Shop::start`], with `overrides` of the environment (e.g. the
    /// demo stock).
    pub async fn start_with(
        bin: &Path,
        layout: Layout,
        databases: &Databases,
        cpus: &Cpus,
        logs: &Path,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<(Self, Duration)> {
        if !bin.exists() {
            bail!(
                "{} is missing: `cargo build --release -p shop`",
                bin.display()
            );
        }
        let started = Instant::now();
        let runs: Vec<Vec<&'static str>> = match layout {
            Layout::OneProcess => vec![SERVICES.to_vec()],
            Layout::ProcessPerService => SERVICES.iter().map(|s| vec![*s]).collect(),
        };
        let launch = Launch {
            bin: bin.to_owned(),
            layout,
            env: environment(databases)
                .into_iter()
                .chain(
                    overrides
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                )
                .collect(),
            cpus: cpus.clone(),
            logs: logs.to_owned(),
        };
        let mut processes = Vec::new();
        for services in runs {
            let child = launch.spawn(&services)?;
            processes.push((services, child));
        }
        let mut shop = Self { processes, launch };
        shop.wait_ready(&SERVICES).await?;
        Ok((shop, started.elapsed()))
    }

    /// The process serving `service` (of a process-per-service shop).
    fn process(&mut self, service: &str) -> anyhow::Result<&mut Child> {
        self.processes
            .iter_mut()
            .find(|(services, _)| services.contains(&service))
            .map(|(_, child)| child)
            .with_context(|| format!("no process serves {service}"))
    }

    /// Kills the process serving `service` at once (SIGKILL), as a crash.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        let child = self.process(service)?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// Kills every process and waits until each has exited, so that the
    /// ports are free for the next start (dropping the shop only sends the
    /// kill: a round started at once found a port still held).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for (_, child) in &mut self.processes {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts `service` again (after [`Shop::kill`]) and waits until it is
    /// ready.
    pub async fn restart(&mut self, service: &'static str) -> anyhow::Result<()> {
        let child = self.launch.spawn(&[service])?;
        *self.process(service)? = child;
        self.wait_ready(&[service]).await
    }

    /// Freezes the process serving `service` (SIGSTOP): it holds its
    /// connections and answers nothing, as a stalled machine.
    pub fn pause(&mut self, service: &str) -> anyhow::Result<()> {
        self.signal(service, "-STOP")
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&mut self, service: &str) -> anyhow::Result<()> {
        self.signal(service, "-CONT")
    }

    fn signal(&mut self, service: &str, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .process(service)?
            .id()
            .with_context(|| format!("{service} is not running"))?;
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {signal} {pid} ({service}) failed");
        }
        Ok(())
    }

    async fn wait_ready(&mut self, services: &[&str]) -> anyhow::Result<()> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let deadline = Instant::now() + Duration::from_secs(60);
        let logs = self.launch.logs.clone();
        for &service in services {
            let uri: http::Uri = format!("http://{}/readyz", addr(service)).parse()?;
            loop {
                if client
                    .get(uri.clone())
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                for (services, child) in &mut self.processes {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "the shop ({}) exited at start ({status}); see the logs in {}",
                            services.join(", "),
                            logs.display()
                        );
                    }
                }
                if Instant::now() > deadline {
                    bail!(
                        "{service} was not ready within 60 s; see the logs in {}",
                        logs.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }

    /// CPU time (user + system) each process has used so far, in ms.
    pub fn cpu_ms(&self) -> Vec<(String, f64)> {
        self.each_process(|pid| cpu_ms_of_stat(&proc_file(pid, "stat")?))
    }

    /// Memory of each process now, and its peak.
    pub fn memory(&self) -> Vec<(String, Memory)> {
        self.each_process(|pid| {
            let status = proc_file(pid, "status")?;
            Some(Memory {
                rss_kib: kib_field(&status, "VmRSS:")?,
                pss_kib: kib_field(&proc_file(pid, "smaps_rollup")?, "Pss:")?,
                peak_kib: kib_field(&status, "VmHWM:")?,
            })
        })
    }

    /// `read` of each live process: (its services, value).
    fn each_process<T>(&self, read: impl Fn(u32) -> Option<T>) -> Vec<(String, T)> {
        self.processes
            .iter()
            .filter_map(|(services, child)| Some((services.join("+"), read(child.id()?)?)))
            .collect()
    }
}

/// Statements each service has run on its database so far (the kit's
/// `shop_db_statements_total`, read from every service's /metrics).
pub async fn db_statements() -> anyhow::Result<Vec<(String, f64)>> {
    let mut counts: Vec<(String, f64)> = Vec::new();
    for service in &SERVICES[..4] {
        let (_, body) = get(&format!("http://{}/metrics", addr(service))).await?;
        let text = String::from_utf8_lossy(&body);
        for series in crate::prometheus::series(&text, "shop_db_statements_total") {
            let Some(name) = series.label("service") else {
                continue;
            };
            match counts.iter_mut().find(|(s, _)| s == name) {
                Some((_, total)) => *total += series.value,
                None => counts.push((name.to_owned(), series.value)),
            }
        }
    }
    Ok(counts)
}

/// `/proc/<pid>/<file>`.
pub(crate) fn proc_file(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

/// A process's memory, KiB.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Memory {
    /// Resident: every page it maps, its share of the binary's code
    /// counted in full.
    pub rss_kib: u64,
    /// Proportional: pages shared with other processes (the binary's code
    /// when several services run from it) divided among them.
    pub pss_kib: u64,
    /// The peak resident size so far (VmHWM).
    pub peak_kib: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, PSS {:.1} MiB",
            self.rss_kib as f64 / 1024.0,
            self.pss_kib as f64 / 1024.0
        )
    }
}

/// "VmRSS:   1234 kB" -> 1234.
pub(crate) fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time (user + system) in ms from a `/proc/<pid>/stat` line.
pub fn cpu_ms_of_stat(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000.0 / clock_ticks_per_sec())
}

/// A plain HTTP/1 GET: the status and the body.
pub async fn get(url: &str) -> anyhow::Result<(http::StatusCode, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse()?).await?;
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    Ok((status, body))
}

/// Checks the web home at the gateway `addr` comes whole for `token`'s
/// customer: a home with a degraded section (a service the gateway cannot
/// reach) answers 200 too, and timing it would time a shop half wired.
pub async fn home_is_whole(addr: &str, token: &str) -> anyhow::Result<()> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("http://{addr}/shop.bff.v1.WebBffService/GetHome"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::from_static(b"{}")))?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    let home: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    anyhow::ensure!(
        status.is_success() && home.get("degraded").is_none(),
        "the web home at {addr} is not whole ({status}): {home}"
    );
    Ok(())
}

/// `service`'s address in the shop under test.
pub fn addr(service: &str) -> String {
    let offset = SERVICES.iter().position(|s| *s == service).unwrap_or(0);
    format!("127.0.0.1:{}", FIRST_PORT + offset as u16)
}

/// The shop's settings for a load test: its own ports, one service secret,
/// stock for many orders, rate limits out of the way.
pub fn environment(databases: &Databases) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = SERVICES
        .iter()
        .map(|service| {
            let port = addr(service)
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            (format!("{}_PORT", service.to_uppercase()), port)
        })
        .collect();
    // A service alone (`shop serve`) finds its peers where their URLs say.
    for service in SERVICES {
        env.push((
            format!("{}_URL", service.to_uppercase()),
            format!("http://{}", addr(service)),
        ));
    }
    for (name, value) in [
        ("SHOP_HOST", "127.0.0.1"),
        // Measured as it ships apart: no dashboard keeping traces.
        ("SHOP_DASHBOARD", "off"),
        ("SHOP_SERVICE_SECRET", "shop-bench-service-secret"),
        ("SHOP_DEMO_STOCK", "1000000"),
        ("SHOP_RATE_LIMIT_IP_PER_SECOND", "1000000"),
        ("SHOP_RATE_LIMIT_IP_BURST", "1000000"),
        ("SHOP_RATE_LIMIT_USER_PER_SECOND", "1000000"),
        ("SHOP_RATE_LIMIT_USER_BURST", "1000000"),
    ] {
        env.push((name.into(), value.into()));
    }
    env.extend(databases.env());
    env
}

/// The kernel's clock ticks per second for /proc times (`getconf CLK_TCK`,
/// asked once).
pub(crate) fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
