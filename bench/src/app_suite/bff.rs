//! The BFF as an I/O-bound fan-out: a second gateway whose downstreams
//! (users, catalog, orders) sit behind a proxy that holds every answer for
//! a fixed delay, as if each service were a few milliseconds away. GetHome
//! should then take about one delay (the calls run in parallel), and the
//! gateway's own CPU per call shows what the fan-out itself costs.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    process::Child,
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};

use super::{Options, shop};
use crate::{
    cpus::Cpus,
    h2load::{self, Load, Medians},
    targets,
};

/// How far away each downstream is made to be.
pub const DOWNSTREAM_DELAY: Duration = Duration::from_millis(5);

/// The delayed gateway's port (clear of the shop under test's).
const PORT: u16 = 19299;

#[derive(Clone, Debug, Serialize)]
pub struct BffRow {
    pub concurrency: u32,
    #[serde(flatten)]
    pub medians: Medians,
    /// The gateway process's CPU time per GetHome, in µs.
    pub gateway_cpu_us_per_call: f64,
}

/// GetHome through a gateway whose downstreams are `DOWNSTREAM_DELAY`
/// away, signed in with `token`, at each call concurrency.
pub async fn measure(options: &Options, cpus: &Cpus, token: &str) -> anyhow::Result<Vec<BffRow>> {
    let mut proxies = Vec::new();
    let mut env = shop::environment(&shop::Databases::Sqlite(options.scratch.join("bff")));
    for service in ["users", "catalog", "orders"] {
        let upstream: SocketAddr = shop::addr(service).parse()?;
        let proxy = DelayProxy::start(upstream, DOWNSTREAM_DELAY).await?;
        env.push((
            format!("{}_URL", service.to_uppercase()),
            format!("http://{}", proxy.addr),
        ));
        proxies.push(proxy);
    }
    env.push(("GATEWAY_PORT".into(), PORT.to_string()));
    let log = options.scratch.join("shop-gateway-delayed.log");
    let mut gateway = cpus
        .server_command(options.shop_bin.as_os_str(), &["serve", "gateway"])
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the delayed gateway")?;
    let addr = format!("127.0.0.1:{PORT}");
    wait_ready(&addr, &mut gateway, &log).await?;
    super::shop::home_is_whole(&addr, token).await?;

    let bearer = format!("Bearer {token}");
    let request = targets::connect_get_json(
        "/shop.bff.v1.WebBffService/GetHome",
        &json!({}),
        targets::headers(&[("authorization", bearer.as_str())]),
    );
    let mut rows = Vec::new();
    for concurrency in options.call_concurrency() {
        let mut samples = Vec::new();
        let mut cpu_us_per_call = Vec::new();
        for _ in 0..options.repetitions.max(1) {
            let calls_before = home_calls(&addr).await?;
            let cpu_before = cpu_ms(&gateway);
            let load = Load {
                concurrency,
                warm_up: options.warm_up,
                duration: options.duration,
            };
            samples.push(
                h2load::run(
                    &format!("http://{addr}"),
                    &request,
                    load,
                    cpus,
                    &options.scratch,
                )
                .await
                .with_context(|| format!("delayed GetHome c={concurrency}"))?,
            );
            let calls = home_calls(&addr).await? - calls_before;
            if calls == 0 {
                bail!(
                    "the delayed gateway counted no GetHome; see {}",
                    log.display()
                );
            }
            cpu_us_per_call.push((cpu_ms(&gateway) - cpu_before) * 1000.0 / calls as f64);
        }
        let row = BffRow {
            concurrency,
            medians: Medians::of(&samples),
            gateway_cpu_us_per_call: crate::stats::median(&cpu_us_per_call),
        };
        eprintln!(
            "  GetHome, downstreams {} ms away  c={:<3} {:>7.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  gateway CPU {:.0} µs/call",
            DOWNSTREAM_DELAY.as_millis(),
            row.concurrency,
            row.medians.requests_per_sec,
            row.medians.p50_us,
            row.medians.p99_us,
            row.gateway_cpu_us_per_call
        );
        rows.push(row);
    }
    for proxy in proxies {
        proxy.task.abort();
    }
    Ok(rows)
}

async fn wait_ready(addr: &str, gateway: &mut Child, log: &std::path::Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if shop::get(&format!("http://{addr}/readyz"))
            .await
            .is_ok_and(|(status, _)| status.is_success())
        {
            return Ok(());
        }
        if let Some(status) = gateway.try_wait()? {
            bail!(
                "the delayed gateway exited ({status}); see {}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the delayed gateway was not ready in 30 s; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GetHome calls the gateway has answered so far, from its /metrics.
async fn home_calls(addr: &str) -> anyhow::Result<u64> {
    let (_, body) = shop::get(&format!("http://{addr}/metrics")).await?;
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|line| {
            line.starts_with("rpc_server_call_duration_seconds_count{")
                && line.contains("method=\"GetHome\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

fn cpu_ms(child: &Child) -> f64 {
    child
        .id()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .and_then(|stat| shop::cpu_ms_of_stat(&stat))
        .unwrap_or(0.0)
}

/// A TCP proxy that forwards what the client sends at once and holds each
/// chunk of the answer for `delay` from the moment it arrived, in order:
/// every response comes `delay` later, as over a slower network.
struct DelayProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DelayProxy {
    async fn start(upstream: SocketAddr, delay: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, delay).await;
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    // Chunks of the answer, each stamped with when it may go on.
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read_answers = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = server_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            let chunk = buffer.get(..read).unwrap_or_default().to_vec();
            if chunks.send((Instant::now() + delay, chunk)).is_err() {
                break;
            }
        }
    };
    let write_answers = async {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if client_write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, read_answers, write_answers);
}
