//! The TLS suite: what TLS costs the kit. The kit's unary echo (Connect
//! proto and gRPC) over TLS beside the same over h2c, tonic's gRPC over TLS
//! (tonic's own rustls) as the peer, both under h2load (which negotiates h2
//! by ALPN); then what a new connection costs: sequential connections, each
//! TCP connect (+ TLS handshake) + HTTP/2 handshake + one gRPC call, timed
//! by the client, with the server's CPU time per connection from /proc.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use shop_kit::tls::DevCa;

use crate::{
    cpus::Cpus,
    h2load::{self, Load, Medians},
    servers::{Server, Stack},
    stats,
    targets::{self, HttpRequest, Protocol, Shape},
};

pub struct Options {
    pub concurrency: u32,
    pub repetitions: usize,
    pub warm_up: Duration,
    pub duration: Duration,
    /// New connections timed per case.
    pub connections: usize,
    pub peers_dir: PathBuf,
    pub scratch: PathBuf,
}

/// One throughput case.
#[derive(Debug, Serialize)]
pub struct TlsRow {
    pub stack: Stack,
    pub protocol: Protocol,
    pub tls: bool,
    pub concurrency: u32,
    pub medians: Medians,
}

/// New connections to one server.
#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    pub stack: Stack,
    pub tls: bool,
    pub connections: usize,
    /// Median client-side time for connect + handshakes + one call, µs.
    pub p50_us: f64,
    /// The server's CPU time per connection (user + system), µs.
    pub server_cpu_us: f64,
}

#[derive(Debug, Serialize, Default)]
pub struct TlsResults {
    pub throughput: Vec<TlsRow>,
    pub connections: Vec<ConnectionRow>,
}

/// The cases: the kit on two protocols, tonic on gRPC; each plain and TLS.
const CASES: [(Stack, Protocol); 3] = [
    (Stack::Kit, Protocol::ConnectProto),
    (Stack::Kit, Protocol::Grpc),
    (Stack::Tonic, Protocol::Grpc),
];

pub async fn run(options: &Options, cpus: &Cpus) -> anyhow::Result<TlsResults> {
    h2load::check_installed()?;
    let certs = options.scratch.join("tls");
    std::fs::create_dir_all(&certs)?;
    let ca = DevCa::new("bench CA")?;
    let issued = ca.server("echo", &[])?;
    let cert = certs.join("cert.pem");
    let key = certs.join("key.pem");
    std::fs::write(&cert, &issued.cert)?;
    std::fs::write(&key, &issued.key)?;
    let tls_args: Vec<String> = vec![
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ];
    let client_tls = client_config(ca.cert_pem())?;

    let load = Load {
        concurrency: options.concurrency,
        warm_up: options.warm_up,
        duration: options.duration,
    };
    let mut results = TlsResults::default();
    let mut port = 19_400;
    for stack in [Stack::Kit, Stack::Tonic] {
        for tls in [false, true] {
            port += 1;
            let extra: &[String] = if tls { &tls_args } else { &[] };
            let log = options.scratch.join(format!("tls-{port}.log"));
            let server =
                Server::start_with(stack, port, extra, &options.peers_dir, cpus, &log).await?;
            let base = format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" });
            for (_, protocol) in CASES.iter().filter(|(s, _)| *s == stack) {
                let request =
                    targets::request(*protocol, Shape::Unary).context("a unary request")?;
                let mut samples = Vec::new();
                for _ in 0..options.repetitions.max(1) {
                    samples.push(h2load::run(&base, &request, load, cpus, &options.scratch).await?);
                }
                let row = TlsRow {
                    stack,
                    protocol: *protocol,
                    tls,
                    concurrency: load.concurrency,
                    medians: Medians::of(&samples),
                };
                eprintln!(
                    "tls: {} {} {}: {:.0} req/s, p50 {:.0} µs",
                    stack.name(),
                    protocol.name(),
                    if tls { "TLS" } else { "h2c" },
                    row.medians.requests_per_sec,
                    row.medians.p50_us
                );
                results.throughput.push(row);
            }
            let grpc = targets::request(Protocol::Grpc, Shape::Unary).context("gRPC request")?;
            let row = new_connections(
                &server,
                tls.then_some(&client_tls),
                &grpc,
                options.connections,
            )
            .await?;
            eprintln!(
                "tls: {} new connections ({}): p50 {:.0} µs, server CPU {:.0} µs each",
                stack.name(),
                if tls { "TLS" } else { "h2c" },
                row.p50_us,
                row.server_cpu_us
            );
            results.connections.push(row);
        }
    }
    Ok(results)
}

fn client_config(ca: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// `count` connections one after the other, each used for one call.
async fn new_connections(
    server: &Server,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &HttpRequest,
    count: usize,
) -> anyhow::Result<ConnectionRow> {
    // A few first, unmeasured (the server's first connections warm up).
    for _ in 0..10 {
        one_connection(server.addr, tls, request).await?;
    }
    let cpu_before = cpu_time(server)?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        one_connection(server.addr, tls, request).await?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let cpu = cpu_time(server)?.saturating_sub(cpu_before);
    times.sort_by(f64::total_cmp);
    Ok(ConnectionRow {
        stack: server.stack,
        tls: tls.is_some(),
        connections: count,
        p50_us: stats::percentile(&times, 0.5),
        server_cpu_us: cpu.as_secs_f64() * 1e6 / count as f64,
    })
}

async fn one_connection(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &HttpRequest,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await?;
            call(TokioIo::new(stream), request).await
        }
        None => call(TokioIo::new(tcp), request).await,
    }
}

async fn call<I>(io: I, request: &HttpRequest) -> anyhow::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .context("HTTP/2 handshake")?;
    let connection = tokio::spawn(connection);
    let mut builder = http::Request::post(format!("http://localhost{}", request.path_and_query));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
    let response = sender.send_request(builder.body(body)?).await?;
    ensure!(
        response.status().is_success(),
        "answered {}",
        response.status()
    );
    let collected = response.into_body().collect().await?;
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok());
    ensure!(status == Some("0"), "grpc-status {status:?}");
    drop(sender);
    let _ = connection.await;
    Ok(())
}

/// The server's CPU time so far (user + system), from /proc/PID/stat.
fn cpu_time(server: &Server) -> anyhow::Result<Duration> {
    let pid = server.pid().context("the server has exited")?;
    // Under taskset, the server is taskset's child: count its children too.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = ticks_of(&stat)?;
    let children = children_cpu(Path::new(&format!("/proc/{pid}/task/{pid}/children")))?;
    Ok(ticks + children)
}

/// utime + stime of a /proc stat line.
fn ticks_of(stat: &str) -> anyhow::Result<Duration> {
    // Fields after the command (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(") ").context("a /proc stat line")?.1;
    let fields: Vec<&str> = after.split(' ').collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis((utime + stime) * 10))
}

fn children_cpu(children: &Path) -> anyhow::Result<Duration> {
    let Ok(list) = std::fs::read_to_string(children) else {
        return Ok(Duration::ZERO);
    };
    let mut total = Duration::ZERO;
    for pid in list.split_whitespace() {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            total += ticks_of(&stat)?;
        }
    }
    Ok(total)
}
