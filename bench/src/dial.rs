//! HTTP/2 to the shop's processes as a foreign client reaches them: plain
//! (h2c, prior knowledge) or TLS (the shop's CA, no client certificate, as
//! a browser or curl), one connection per address kept and made again when
//! it closes. Used for readiness, /metrics and the soak's Connect, gRPC-Web
//! and REST calls.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shop_kit::tls::ClientTls;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How to reach the shop's processes.
#[derive(Clone, Default)]
pub struct Dial {
    tls: Option<ClientTls>,
    connections: Arc<Mutex<HashMap<SocketAddr, SendRequest<Full<Bytes>>>>>,
}

/// An answer, read whole.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Dial {
    /// Plain text: h2c.
    pub fn plain() -> Self {
        Self::default()
    }

    /// TLS, trusting `ca` (a PEM file).
    pub fn tls(ca: &std::path::Path) -> anyhow::Result<Self> {
        Ok(Self {
            tls: Some(ClientTls::load(ca.to_owned(), None)?),
            ..Self::default()
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// GET `path` of the process at `at`.
    pub async fn get(&self, at: SocketAddr, path: &str) -> anyhow::Result<Answer> {
        let request = http::Request::get(path).body(Full::default())?;
        self.send(at, request).await
    }

    /// Sends `request` (its URI a path) to `at`, on the connection kept for
    /// it, and reads the answer whole.
    pub async fn send(
        &self,
        at: SocketAddr,
        mut request: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<Answer> {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = format!("{}://{at}{path}", self.scheme()).parse()?;
        let mut sender = self.connection(at).await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                self.forget(at);
                return Err(error.into());
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn forget(&self, at: SocketAddr) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&at);
    }

    /// The connection kept for `at`, made (again) if there is none or it
    /// closed.
    async fn connection(&self, at: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let kept = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&at)
            .filter(|sender| !sender.is_closed())
            .cloned();
        if let Some(mut sender) = kept
            && sender.ready().await.is_ok()
        {
            return Ok(sender);
        }
        let sender = match &self.tls {
            None => {
                let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(at))
                    .await
                    .with_context(|| format!("connecting to {at}"))??;
                tcp.set_nodelay(true)?;
                handshake(TokioIo::new(tcp)).await?
            }
            Some(tls) => {
                let io = tls
                    .connector(at, "localhost", CONNECT_TIMEOUT)?
                    .connect()
                    .await?;
                handshake(io).await?
            }
        };
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(at, sender.clone());
        Ok(sender)
    }
}

async fn handshake<I>(io: I) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}
