//! The servers under test, each run as its own process pinned to the
//! server core: our Rust ones (`shop-bench peer <kind>`), connect-go and
//! connect-node (built by `bench/peers/build.sh`).

pub mod bare;
pub mod kit;
pub mod library;
pub mod shipped_traces;
pub mod tonic;

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::process::Child;

use crate::{cpus::Cpus, targets::Protocol};

/// A server stack, in the order the tables list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// Bare axum routes: the limit.
    Bare,
    /// services/kit: how every shop service is served.
    Kit,
    /// A plain tonic server.
    Tonic,
    /// connect-rust, the connectrpc crate with its own code generator
    /// (bench/peers/connect-rust).
    ConnectRust,
    /// connect-go (bench/peers/connect-go).
    ConnectGo,
    /// connect-node on Node's http2 (bench/peers/connect-node).
    ConnectNode,
}

impl Stack {
    pub const ALL: [Stack; 6] = [
        Stack::Bare,
        Stack::Kit,
        Stack::Tonic,
        Stack::ConnectRust,
        Stack::ConnectGo,
        Stack::ConnectNode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stack::Bare => "axum (bare)",
            Stack::Kit => "services/kit",
            Stack::Tonic => "tonic",
            Stack::ConnectRust => "connect-rust",
            Stack::ConnectGo => "connect-go",
            Stack::ConnectNode => "connect-node",
        }
    }

    /// The protocols the stack speaks.
    pub fn protocols(self) -> &'static [Protocol] {
        use Protocol::*;
        match self {
            Stack::Bare => &[ConnectJson, ConnectProto, ConnectGet],
            Stack::Tonic => &[Grpc],
            Stack::Kit | Stack::ConnectRust | Stack::ConnectGo | Stack::ConnectNode => {
                &[ConnectJson, ConnectProto, ConnectGet, Grpc, GrpcWeb]
            }
        }
    }

    /// The program and arguments that serve the stack on `port`, with more
    /// arguments for `shop-bench peer` (TLS).
    fn program_with(
        self,
        port: u16,
        extra: &[String],
        peers: &Path,
    ) -> anyhow::Result<(OsString, Vec<OsString>)> {
        let port = port.to_string();
        Ok(match self {
            Stack::Bare | Stack::Kit | Stack::Tonic => {
                let kind = match self {
                    Stack::Bare => "bare",
                    Stack::Kit => "kit",
                    _ => "tonic",
                };
                let args = ["peer", kind, "--port", &port];
                let mut args: Vec<OsString> = args.map(OsString::from).to_vec();
                args.extend(extra.iter().map(OsString::from));
                (std::env::current_exe()?.into(), args)
            }
            Stack::ConnectRust => {
                let binary = connect_rust_binary(peers)?;
                let args = ["--port".into(), port.into()];
                (binary.into(), args.to_vec())
            }
            Stack::ConnectGo => {
                let binary = peers.join(".bin/connect-go-peer");
                if !binary.exists() {
                    bail!("{} is missing: run bench/peers/build.sh", binary.display());
                }
                let args = ["-addr".into(), format!("127.0.0.1:{port}").into()];
                (binary.into(), args.to_vec())
            }
            Stack::ConnectNode => {
                let script = peers.join("connect-node/server.mjs");
                if !peers.join("connect-node/gen").exists() {
                    bail!(
                        "{} has no generated code: run bench/peers/build.sh",
                        script.display()
                    );
                }
                let args = [script.into(), "--port".into(), port.into()];
                ("node".into(), args.to_vec())
            }
        })
    }
}

/// A server process; killed when dropped.
pub struct Server {
    pub stack: Stack,
    pub addr: SocketAddr,
    /// Killed when this value is dropped.
    process: Child,
}

impl Server {
    /// Starts `stack` on `port`, pinned to the server core, and waits until
    /// it accepts connections.
    /// Its log (stderr) goes to `log`.
    pub async fn start(
        stack: Stack,
        port: u16,
        peers: &Path,
        cpus: &Cpus,
        log: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with(stack, port, &[], peers, cpus, log).await
    }

    /// [`Server::start`] with more arguments for `shop-bench peer` (e.g.
    /// `--tls-cert`).
    pub async fn start_with(
        stack: Stack,
        port: u16,
        extra: &[String],
        peers: &Path,
        cpus: &Cpus,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let (program, args) = stack.program_with(port, extra, peers)?;
        let mut command = cpus.server_command(&program, &args);
        if stack == Stack::Kit {
            shipped_traces::as_shipped(&mut command).await?;
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", stack.name()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited at start ({status}); see {}",
                    stack.name(),
                    log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{} did not listen on {addr} within 30 s", stack.name());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            stack,
            addr,
            process: child,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }
}

/// Where bench/peers/build.sh puts the connect-rust peer.
fn connect_rust_binary(peers: &Path) -> anyhow::Result<std::path::PathBuf> {
    let binary = peers.join(".bin/connect-rust-peer");
    if !binary.exists() {
        bail!("{} is missing: run bench/peers/build.sh", binary.display());
    }
    Ok(binary)
}

/// Logs as an axum program without the kit writes them (axum's examples):
/// a `fmt` subscriber at `info`. Without any subscriber, `tracing`'s `log`
/// feature (which axum's default `tower-log`, sqlx and sea-orm turn on)
/// hands every span h2 opens to the `log` crate instead: some 7,500
/// instructions a request that no program with a subscriber pays, which
/// made the bare, library and tonic peers (and every caller) look that
/// much dearer than they are.
pub fn plain_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .try_init();
}

/// `shop-bench peer <kind>`: serves one of the Rust servers until killed,
/// over TLS with `tls` (certificate, key) for the kit and tonic.
pub async fn serve(
    kind: PeerKind,
    port: u16,
    peers: &Path,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> anyhow::Result<()> {
    if tls.is_some() && !matches!(kind, PeerKind::Kit | PeerKind::Tonic) {
        bail!("only the kit and tonic peers serve TLS here");
    }
    let bind = || async move {
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))
    };
    match kind {
        PeerKind::Bare => {
            use axum::serve::ListenerExt;
            plain_logs();
            let listener = bind().await?.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, bare::router()).await?;
        }
        PeerKind::Kit => {
            // Logged like a shop service (failed and slow calls), traced
            // when the OTEL_* variables say so; SHOP_BENCH_KEPT=1 keeps the
            // last lines and traces too, as the dashboard has the shop do.
            let kept = std::env::var_os("SHOP_BENCH_KEPT").is_some_and(|kept| kept == "1");
            let _logs = shop_kit::observe::telemetry::init_tracing(
                &shop_kit::observe::telemetry::LogConfig {
                    keep: kept.then(shop_kit::observe::kept_logs::KeptLogs::default),
                    ..Default::default()
                },
                &shop_kit::observe::traces::TraceConfig {
                    keep: kept.then(shop_kit::observe::traces::KeptTraces::default),
                    ..shop_kit::observe::traces::TraceConfig::from_env()
                        .map_err(anyhow::Error::msg)?
                },
                &shop_kit::observe::metrics::Metrics::install(),
            )?;
            let shutdown = shop_kit::Shutdown::on_signals(std::time::Duration::ZERO);
            let app = kit::router(&shutdown).await?;
            let mut http = kit::http();
            if let Some((cert, key)) = tls {
                http.tls.tls_cert = Some(cert);
                http.tls.tls_key = Some(key);
            }
            shop_kit::rpc::serve(bind().await?, app, shutdown, http).await?;
        }
        PeerKind::Library => {
            use axum::serve::ListenerExt;
            plain_logs();
            let listener = bind().await?.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, library::router()).await?;
        }
        PeerKind::Tonic => {
            plain_logs();
            tonic::serve(bind().await?, tls).await?
        }
        PeerKind::ConnectRust => {
            let status = tokio::process::Command::new(connect_rust_binary(peers)?)
                .args(["--port", &port.to_string()])
                .kill_on_drop(true)
                .status()
                .await?;
            if !status.success() {
                bail!("connect-rust-peer exited with {status}");
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PeerKind {
    /// Bare axum routes: the limit.
    Bare,
    /// services/kit, as a shop service is served.
    Kit,
    /// connectrpc-axum alone (Connect only), none of the kit's layers: what
    /// the library costs by itself.
    Library,
    /// A plain tonic server (gRPC).
    Tonic,
    /// connect-rust (the peer bench/peers/build.sh builds).
    ConnectRust,
}

#[cfg(test)]
mod tests {
    //! Every Rust server under test answers every protocol it claims
    //! correctly (checked by the harness's own preflight, over real HTTP/2
    //! on loopback), and the preflight refuses a wrong answer.

    use std::net::SocketAddr;

    use super::*;
    use crate::{
        preflight,
        targets::{self, Shape},
    };

    async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    async fn assert_answers(stack: Stack, addr: SocketAddr) {
        let client = preflight::client();
        for shape in Shape::ALL {
            for protocol in stack.protocols() {
                let Some(request) = targets::request(*protocol, shape) else {
                    continue;
                };
                preflight::check(&client, addr, *protocol, shape, &request)
                    .await
                    .unwrap_or_else(|e| panic!("{stack:?} {protocol:?} {shape:?}: {e:#}"));
            }
        }
    }

    #[tokio::test]
    async fn bare_axum_answers_connect_json_proto_and_get() {
        let (listener, addr) = listen().await;
        tokio::spawn(async move { axum::serve(listener, bare::router()).await });
        assert_answers(Stack::Bare, addr).await;
    }

    #[tokio::test]
    async fn the_kit_answers_every_protocol() {
        let (listener, addr) = listen().await;
        let shutdown = shop_kit::Shutdown::new();
        let app = kit::router(&shutdown).await.expect("router");
        tokio::spawn(shop_kit::rpc::serve(listener, app, shutdown, kit::http()));
        assert_answers(Stack::Kit, addr).await;
    }

    #[tokio::test]
    async fn the_library_alone_answers_connect() {
        let (listener, addr) = listen().await;
        tokio::spawn(async move { axum::serve(listener, library::router()).await });
        // The same protocols as bare axum but GET (the kit adds GET routes).
        let client = preflight::client();
        for shape in Shape::ALL {
            for protocol in [Protocol::ConnectJson, Protocol::ConnectProto] {
                let Some(request) = targets::request(protocol, shape) else {
                    continue;
                };
                preflight::check(&client, addr, protocol, shape, &request)
                    .await
                    .unwrap_or_else(|e| panic!("library {protocol:?} {shape:?}: {e:#}"));
            }
        }
    }

    #[tokio::test]
    async fn tonic_answers_grpc() {
        let (listener, addr) = listen().await;
        tokio::spawn(tonic::serve(listener, None));
        assert_answers(Stack::Tonic, addr).await;
    }

    #[tokio::test]
    async fn the_preflight_refuses_an_error_answered_with_http_200() {
        // gRPC to a gRPC-only server is fine; Connect JSON to it is not, and
        // tonic answers 200 with grpc-status 3 to a JSON Ticks: a fast error
        // must not pass for a fast answer.
        let (listener, addr) = listen().await;
        tokio::spawn(tonic::serve(listener, None));
        let client = preflight::client();
        let json = targets::request(Protocol::ConnectJson, Shape::Unary).expect("request");
        assert!(
            preflight::check(&client, addr, Protocol::ConnectJson, Shape::Unary, &json)
                .await
                .is_err()
        );
        let mut bad = targets::request(Protocol::Grpc, Shape::ServerStream).expect("request");
        bad.body = Some(targets::envelope(&[0x08, 0xe9, 0x07])); // count = 1001
        let error = preflight::check(&client, addr, Protocol::Grpc, Shape::ServerStream, &bad)
            .await
            .expect_err("an invalid_argument must fail the check");
        assert!(error.to_string().contains("grpc-status 3"), "{error:#}");
    }
}
