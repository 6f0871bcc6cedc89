//! One client calling the echo server, for counting what a call costs the
//! caller (`just bench-instructions caller-kit`): the kit's client stack
//! (balance, breaker, retry, deadline, bulkhead, metrics), or tonic's own
//! channel beside it (the reference), or hyper's HTTP/2 connection alone
//! (the floor under both). It makes one call, says `ready`, then
//! makes N sequential calls for every N read from stdin, saying `done N`.

use std::{io::BufRead, net::SocketAddr};

use anyhow::Context;
use futures::future::BoxFuture;
use shop_kit::client::{Peer, PeerPolicy};

use crate::{echo, pb::echo_service_client::EchoServiceClient};

/// Which client calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CallerKind {
    /// The kit's client stack.
    Kit,
    /// tonic's channel alone.
    Tonic,
    /// hyper's HTTP/2 connection alone: the floor under both.
    H2,
}

/// hyper's connection as a tower service, as tonic's clients take it.
#[derive(Clone)]
struct RawH2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower::Service<http::Request<tonic::body::Body>> for RawH2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<'static, Result<Self::Response, hyper::Error>>;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

type Call = Box<dyn FnMut() -> BoxFuture<'static, anyhow::Result<()>>>;

/// One echo call per call of the result, through `client` (whatever its
/// transport: only that differs between the callers).
fn echo_calls<T>(client: EchoServiceClient<T>) -> Call
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    T::Future: Send,
{
    Box::new(move || {
        let mut client = client.clone();
        Box::pin(async move {
            client
                .echo(tonic::Request::new(echo::echo_request()))
                .await?;
            Ok(())
        })
    })
}

async fn caller(kind: CallerKind, target: SocketAddr) -> anyhow::Result<Call> {
    Ok(match kind {
        CallerKind::Kit => {
            let client = EchoServiceClient::new(Peer::at("echo", target, PeerPolicy::default()));
            echo_calls(client)
        }
        CallerKind::H2 => {
            let tcp = tokio::net::TcpStream::connect(target).await?;
            tcp.set_nodelay(true)?;
            let (send, connection) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(tcp),
            )
            .await?;
            tokio::spawn(connection);
            let client =
                EchoServiceClient::with_origin(RawH2(send), format!("http://{target}").parse()?);
            echo_calls(client)
        }
        CallerKind::Tonic => {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))?
                .connect()
                .await?;
            let client = EchoServiceClient::new(channel);
            echo_calls(client)
        }
    })
}

pub async fn run(kind: CallerKind, target: SocketAddr) -> anyhow::Result<()> {
    // Every caller logs alike, as a program with a subscriber does.
    crate::servers::plain_logs();
    let mut call = caller(kind, target).await?;
    // The first call sets up what later calls reuse (a connection, metric
    // handles); it is not counted.
    let started = tokio::time::Instant::now();
    loop {
        match call().await {
            Ok(()) => break,
            Err(_) if started.elapsed() < std::time::Duration::from_secs(10) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error).context("the echo server does not answer"),
        }
    }
    println!("ready");
    let (lines, mut asked) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = asked.recv().await {
        let calls: u32 = line.trim().parse().context("a number of calls")?;
        for _ in 0..calls {
            call().await?;
        }
        println!("done {calls}");
    }
    Ok(())
}
