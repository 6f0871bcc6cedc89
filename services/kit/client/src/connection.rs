//! The HTTP/2 connection to one endpoint: made when first needed (TCP, or
//! TLS with the peer's CA and name; or none, to a server this process runs
//! on a plain listener: its app is called directly), made again once it closes
//! (`tower::reconnect`), kept alive by pings. A connection has one user:
//! the balancer (which calls take in turn) for calls, the endpoint's
//! health watch for its stream; a call crosses no other queue on its way
//! to hyper.

use std::{
    net::SocketAddr,
    task::{Context, Poll},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use http::uri::{Authority, Scheme};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower::{Service, ServiceExt, reconnect::Reconnect};

use super::status::BoxError;
use shop_kit_tls::Connector;
use shop_kit_wire::in_process;
use tonic::Status;

/// HTTP/2 pings on a quiet connection: a peer gone silent (a machine lost,
/// a paused process) is noticed within interval + timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to an endpoint, made (again) when it is asked for.
pub(super) type Connection = Reconnect<Connect, ()>;

/// No connection could be made: nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("no connection to {addr}: {reason}")]
pub struct ConnectError {
    addr: SocketAddr,
    #[source]
    reason: Box<dyn std::error::Error + Send + Sync>,
}

/// Whether the request never left this process: no connection could be
/// made to the endpoint (refused, unreachable, timed out connecting).
pub(super) fn never_left(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if error.is::<ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// What an error of the way to the downstream means to this service's
/// caller: `unavailable` (the call may or may not have run), saying why.
pub(super) fn transport_failure(downstream: &str, error: &BoxError) -> Status {
    if never_left(error.as_ref()) {
        return Status::unavailable(format!(
            "the {downstream} service cannot be reached: {error}"
        ));
    }
    Status::unavailable(format!(
        "the connection to the {downstream} service broke: {error}"
    ))
}

/// How to connect to one endpoint.
#[derive(Clone)]
pub(super) struct Connect {
    addr: SocketAddr,
    /// `None`: plain HTTP/2.
    tls: Option<Connector>,
    patience: Duration,
    scheme: Scheme,
    authority: Authority,
}

impl Connect {
    /// To `addr`, which calls name as `authority` (the peer's host and
    /// port), over TLS when `tls` is given.
    pub(super) fn new(
        addr: SocketAddr,
        authority: Authority,
        tls: Option<Connector>,
        patience: Duration,
    ) -> Self {
        let scheme = if tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        Self {
            addr,
            tls,
            patience,
            scheme,
            authority,
        }
    }

    /// A connection, made when first polled.
    pub(super) fn connection(&self) -> Connection {
        Reconnect::new(self.clone(), ())
    }

    async fn open(self) -> Result<Open, ConnectError> {
        let addr = self.addr;
        if self.tls.is_none()
            && let Some(server) = in_process::find(addr)
        {
            return Ok(Open::InProcess(server));
        }
        let failed =
            |reason: Box<dyn std::error::Error + Send + Sync>| ConnectError { addr, reason };
        let send = match &self.tls {
            None => {
                let tcp = tokio::time::timeout(self.patience, TcpStream::connect(addr))
                    .await
                    .map_err(|_| failed(format!("took longer than {:?}", self.patience).into()))?
                    .map_err(|e| failed(e.into()))?;
                tcp.set_nodelay(true).map_err(|e| failed(e.into()))?;
                handshake(TokioIo::new(tcp)).await
            }
            Some(tls) => {
                let stream = tls.connect().await.map_err(|e| failed(e.into()))?;
                handshake(stream).await
            }
        }
        .map_err(|e| failed(e.into()))?;
        Ok(Open::Http2 {
            send,
            scheme: self.scheme,
            authority: self.authority,
        })
    }
}

async fn handshake<T>(io: T) -> Result<http2::SendRequest<tonic::body::Body>, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (send, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .handshake(io)
        .await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "connection to a peer closed");
        }
    });
    Ok(send)
}

impl Service<()> for Connect {
    type Response = Open;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<Open, ConnectError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        self.clone().open().boxed()
    }
}

/// An open connection: each request goes out on it with the endpoint's
/// scheme and authority; or, to a server this process runs on a plain
/// listener, straight to its app (`in_process`): no socket, no framing.
pub(super) enum Open {
    Http2 {
        send: http2::SendRequest<tonic::body::Body>,
        scheme: Scheme,
        authority: Authority,
    },
    InProcess(in_process::Found),
}

/// The server stopped serving (its listener closed).
#[derive(Debug, thiserror::Error)]
#[error("the server in this process stopped serving")]
struct Stopped;

type Response = http::Response<tonic::body::Body>;

impl Service<http::Request<tonic::body::Body>> for Open {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    /// Ready while open; an error once it closed (the connection is made
    /// again).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Http2 { send, .. } => send.poll_ready(cx).map_err(Into::into),
            Self::InProcess(server) if server.serving() => Poll::Ready(Ok(())),
            Self::InProcess(_) => Poll::Ready(Err(Stopped.into())),
        }
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        match self {
            Self::Http2 {
                send,
                scheme,
                authority,
            } => {
                let mut uri = std::mem::take(request.uri_mut()).into_parts();
                uri.scheme = Some(scheme.clone());
                uri.authority = Some(authority.clone());
                if let Ok(uri) = http::Uri::from_parts(uri) {
                    *request.uri_mut() = uri;
                }
                send.send_request(request)
                    .map(|answered| {
                        answered
                            .map(|response| response.map(tonic::body::Body::new))
                            .map_err(Into::into)
                    })
                    .boxed()
            }
            Self::InProcess(server) => {
                // Each side sees what the wire would carry: the head and
                // the body, none of the other side's extensions.
                *request.version_mut() = http::Version::HTTP_2;
                request.extensions_mut().clear();
                server
                    .app
                    .clone()
                    .oneshot(request)
                    .map(|answered| match answered {
                        Ok(mut response) => {
                            response.extensions_mut().clear();
                            Ok(response)
                        }
                        Err(never) => match never {},
                    })
                    .boxed()
            }
        }
    }
}
