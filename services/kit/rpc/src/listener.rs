//! The listener: accepts connections and serves a router on each (HTTP/1.1
//! and h2c), with the bounds a server facing strangers needs:
//!
//! - at most `max_connections` at once; beyond that the listener stops
//!   accepting (the kernel's backlog holds the rest) until one closes;
//! - an HTTP/1.1 request's headers must arrive within
//!   `header_read_timeout` (a client trickling header lines is closed);
//! - a connection with no request in flight for `idle_timeout` is closed
//!   gracefully, whatever the protocol (an HTTP/2 peer answering pings is
//!   still idle); a long stream (WatchOrder) is a request in flight, so it
//!   lives as long as the client wants;
//! - at most `max_streams_per_connection` concurrent HTTP/2 streams;
//! - TCP keep-alive probes that drop peers gone silent (a host gone, a
//!   network cut), streams open or not. The kernel sends them: HTTP/2
//!   pings did the same but cost every call 2.3k instructions (hyper
//!   checks their timer each time it polls a connection, a few times a
//!   call); tonic's and Go's HTTP/2 servers send none by default. What
//!   they found and probes do not: a peer whose kernel answers but whose
//!   program reads nothing, with a stream open (with none open, the idle
//!   timeout closes it);
//! - request heads of at most 64 KiB;
//! - with TLS, a handshake within `header_read_timeout`, and each request
//!   told what the connection's client certificate says ([`TlsSession`]);
//! - each request told who its client is: the peer, or whom a trusted proxy
//!   forwarded it for ([`crate::client_address`]).

use std::{convert::Infallible, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, response::Response};
use futures::future::BoxFuture;
use http::Request;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::task::TaskTracker;

use super::{
    app::App,
    arrival::{Activity, Arrival, InFlight},
    client_address::ClientAddressing,
    config::HttpConfig,
    drain::drained_when_dropped,
};
use shop_kit_shutdown::Shutdown;
use shop_kit_tls::{Accepted, ServerTls, TlsError, TlsSession};
use shop_kit_wire::in_process;

/// TCP keep-alive: probes after this long silent, this often, and how
/// many go unanswered before the kernel drops the connection (a silent
/// peer is gone within 20 + 3 x 5 = 35 s); sent data unacknowledged this
/// long drops it too (a peer gone while the server writes).
const TCP_KEEP_ALIVE_IDLE: Duration = Duration::from_secs(20);
const TCP_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_KEEP_ALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(35);
/// HTTP/1.1 read buffer, and so the largest request head: 64 KiB (HTTP/2
/// header lists are bounded by h2's own 16 KiB default).
const MAX_HTTP1_BUFFER: usize = 64 * 1024;
/// After a graceful close is asked of an idle connection, how long it may
/// take before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A router listening in the background.
#[derive(Debug)]
pub struct Listening {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Why a listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// Binds `addr` and serves `app` in the background until `shutdown`, with
/// TLS if `http.tls` says so (its files read now: a bad one is an error).
pub async fn start(
    addr: SocketAddr,
    app: impl Into<App>,
    shutdown: Shutdown,
    http: &HttpConfig,
) -> Result<Listening, ListenError> {
    let tls = http.tls.load()?;
    start_with(addr, app, shutdown, http, tls).await
}

/// [`start`] with TLS already loaded (`http.tls` is not read again).
pub async fn start_with(
    addr: SocketAddr,
    app: impl Into<App>,
    shutdown: Shutdown,
    http: &HttpConfig,
    tls: Option<ServerTls>,
) -> Result<Listening, ListenError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })?;
    start_on(listener, app, shutdown, http, tls).await
}

/// Serves `app` on `listener` until `shutdown`: then stops accepting, lets
/// in-flight requests finish, and gives up on the stragglers after the
/// configured grace. With TLS if `http.tls` says so.
pub async fn serve(
    listener: TcpListener,
    app: impl Into<App>,
    shutdown: Shutdown,
    http: HttpConfig,
) -> std::io::Result<()> {
    let tls = http.tls.load().map_err(std::io::Error::other)?;
    serve_with(listener, app.into(), shutdown, http, tls).await
}

async fn serve_with(
    listener: TcpListener,
    app: App,
    shutdown: Shutdown,
    http: HttpConfig,
    tls: Option<ServerTls>,
) -> std::io::Result<()> {
    // Plain listeners are reachable in process too (see `in_process`),
    // until shutdown is asked for.
    let in_process = match (&tls, listener.local_addr()) {
        (None, Ok(addr)) if http.in_process_calls => {
            Some(in_process::register(addr, in_process_app(app.clone())))
        }
        _ => None,
    };
    let connections = accept_until(&listener, app, &shutdown, &http, tls).await;
    drop(in_process);
    connections.close();
    tokio::select! {
        () = connections.wait() => {}
        () = tokio::time::sleep_until(shutdown.grace_deadline(http.shutdown_grace())) => {
            tracing::warn!(
                grace_secs = http.shutdown_grace_secs,
                "in-flight requests still running after the grace period; closing"
            );
        }
    }
    Ok(())
}

/// Accepts connections on `listener` and serves `app` on each until `stop`:
/// the connections, still being served (told to close by `stop`).
async fn accept_until(
    listener: &TcpListener,
    app: App,
    stop: &Shutdown,
    http: &HttpConfig,
    tls: Option<ServerTls>,
) -> TaskTracker {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout())
        // A request head larger than this is refused (431), not buffered.
        .max_buf_size(MAX_HTTP1_BUFFER)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(http.max_streams_per_connection);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(http.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stop.requested() => break,
        };
        let Ok(slot) = slot else { break };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.requested() => break,
        };
        let _ = tcp.set_nodelay(true);
        probe_when_silent(&tcp);
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            shutdown: stop.clone(),
            idle_timeout: http.idle_timeout(),
            clients: http.clients.clone(),
        };
        let tls = tls.clone();
        let patience = http.header_read_timeout();
        connections.spawn(async move {
            match tls {
                None => connection.serve(TokioIo::new(tcp), remote, None).await,
                Some(tls) => match tls.accept(tcp, patience).await {
                    Ok(Accepted::Tls(stream, session)) => {
                        connection
                            .serve(TokioIo::new(stream), remote, Some(session))
                            .await;
                    }
                    Ok(Accepted::Plain(tcp)) => {
                        connection.serve(TokioIo::new(tcp), remote, None).await;
                    }
                    Err(refused) => {
                        tracing::debug!(%remote, %refused, "connection refused");
                        metrics::counter!("shop_tls_refused_total", "reason" => refused.reason())
                            .increment(1);
                    }
                },
            }
            drop(slot);
        });
    }
    connections
}

/// A service's port while the service opens (its database, its
/// migrations, which may wait for another replica's or the migration Job's
/// lock for minutes): bound at once, it answers `/healthz` (the process is
/// alive: no liveness or startup probe kills it mid-wait), `/readyz` 503
/// with what it waits for, and every call `unavailable`, in its protocol.
/// [`Self::into_listener`] hands the port to the service once it is ready.
#[derive(Debug)]
pub struct Starting {
    listener: Arc<TcpListener>,
    stop: StopOnDrop,
    accepting: tokio::task::JoinHandle<()>,
}

/// Stops the starting answers when dropped (a service that failed to open
/// gives its port back).
#[derive(Debug)]
struct StopOnDrop(Shutdown);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

impl Starting {
    /// Binds `addr` and answers there as `service` starting.
    pub async fn bind(
        addr: SocketAddr,
        service: &'static str,
        http: &HttpConfig,
        tls: Option<ServerTls>,
    ) -> Result<Self, ListenError> {
        let bound = |source| ListenError::Bind { addr, source };
        let listener = Arc::new(TcpListener::bind(addr).await.map_err(bound)?);
        let stop = Shutdown::new();
        let accepting = tokio::spawn({
            let (listener, stop, http) = (listener.clone(), stop.clone(), http.clone());
            async move {
                let connections =
                    accept_until(&listener, starting_app(service).into(), &stop, &http, tls).await;
                // They finish on their own: told to close, with nothing long
                // in flight.
                connections.close();
            }
        });
        Ok(Self {
            listener,
            stop: StopOnDrop(stop),
            accepting,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Stops answering as a service starting: the port, to serve on.
    pub async fn into_listener(self) -> std::io::Result<TcpListener> {
        self.stop.0.trigger();
        self.accepting.await.map_err(std::io::Error::other)?;
        Arc::try_unwrap(self.listener)
            .map_err(|_| std::io::Error::other("the starting listener is still shared"))
    }
}

/// What a starting service answers.
fn starting_app(service: &'static str) -> Router {
    use axum::routing::get;
    Router::new()
        .route("/healthz", get(|| async { "ok (starting)\n" }))
        .route(
            "/readyz",
            get(move || async move {
                (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "not ready: {service} is starting (opening its database, its migrations \
                         waiting for their lock)\n"
                    ),
                )
            }),
        )
        .fallback(move |request: Request<Body>| async move {
            let error = connectrpc_axum::prelude::ConnectError::new(
                connectrpc_axum::prelude::Code::Unavailable,
                format!("{service} is starting: try again in a moment"),
            );
            let mut response = crate::connect_errors::error_response(request.headers(), error);
            // Nothing ran: the kit's clients send it to another replica.
            response.headers_mut().insert(
                shop_kit_wire::NOT_PROCESSED,
                http::HeaderValue::from_static("starting"),
            );
            response
        })
}

/// Serves `app` on the listener a [`Starting`] service held, as [`start_with`]
/// does on a new one.
pub async fn start_on(
    listener: TcpListener,
    app: impl Into<App>,
    shutdown: Shutdown,
    http: &HttpConfig,
    tls: Option<ServerTls>,
) -> Result<Listening, ListenError> {
    let addr = listener.local_addr().map_err(|source| ListenError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let task = tokio::spawn(serve_with(
        listener,
        app.into(),
        shutdown,
        http.clone(),
        tls,
    ));
    Ok(Listening { addr, task })
}

/// The peer address an in-process call is served as coming from.
const IN_PROCESS_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// `app` as callers in this process reach it: each request as it would
/// come from a connection (its peer address), through every layer of the
/// app, without a socket. The app is wrapped, not captured: a caller's
/// clone of this is the one clone of the app a call costs.
fn in_process_app(app: App) -> in_process::App {
    in_process::App::new(
        tower::ServiceBuilder::new()
            .map_response(|response: Response| response.map(tonic::body::Body::new))
            .map_request(|mut request: Request<tonic::body::Body>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(IN_PROCESS_PEER));
                request.map(Body::new)
            })
            .service(app),
    )
}

struct Connection {
    app: App,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shutdown: Shutdown,
    idle_timeout: Duration,
    clients: ClientAddressing,
}

impl Connection {
    async fn serve<I>(self, io: I, remote: SocketAddr, session: Option<TlsSession>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let service = PerConnection {
            app: self.app,
            remote,
            clients: self.clients,
            session,
            activity: activity.clone(),
        };
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        let mut connection = pin!(connection);
        // Shutdown and idleness are watched by a task of their own: in this
        // select they would be polled on every wake of the connection (a
        // few times per call), here only a channel is: futures' (a flag
        // read), not tokio's, whose every poll spends the task's budget,
        // and in a fixed order, the connection first (no coin tossed).
        let (mut stop, mut stopped) = futures::channel::oneshot::channel();
        let shutdown = self.shutdown.clone();
        let idle_timeout = self.idle_timeout;
        tokio::spawn(async move {
            let why = tokio::select! {
                () = shutdown.requested() => Stop::Shutdown,
                () = activity.idle_for(idle_timeout) => Stop::Idle,
                // The connection ended first.
                _ = stop.cancellation() => return,
            };
            let _ = stop.send(why);
        });
        let closing = tokio::select! {
            biased;
            _ = connection.as_mut() => return,
            why = &mut stopped => why == Ok(Stop::Idle),
        };
        connection.as_mut().graceful_shutdown();
        if closing {
            // An idle connection has nothing in flight: it may not linger.
            let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, connection).await;
        } else {
            let _ = connection.await;
        }
    }
}

/// Has the kernel probe the peer of `tcp` when it falls silent, and drop
/// the connection when it no longer answers (see the module's notes).
fn probe_when_silent(tcp: &tokio::net::TcpStream) {
    let keep_alive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEP_ALIVE_IDLE)
        .with_interval(TCP_KEEP_ALIVE_INTERVAL)
        .with_retries(TCP_KEEP_ALIVE_RETRIES);
    let socket = socket2::SockRef::from(tcp);
    if let Err(error) = socket
        .set_tcp_keepalive(&keep_alive)
        .and_then(|()| socket.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT)))
    {
        tracing::debug!(%error, "TCP keep-alive not set");
    }
}

/// What a connection answers each request with: its app, told who the
/// client is and, with TLS, what its certificate says. hyper calls it by
/// reference, and it calls the app by reference (tower's adapter cloned
/// the service holding the app for each request, and the call cloned the
/// app again).
struct PerConnection {
    app: App,
    remote: SocketAddr,
    clients: ClientAddressing,
    session: Option<TlsSession>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let client = match self.clients.client_of(self.remote.ip(), request.headers()) {
            Some(client) => {
                let address = client.address;
                request.extensions_mut().insert(client);
                address
            }
            None => self.remote.ip().to_canonical(),
        };
        if let Some(session) = &self.session {
            request.extensions_mut().insert(session.clone());
        }
        self.app.serve(
            request.map(drained_when_dropped),
            Some(Arrival {
                client,
                in_flight: InFlight::start(self.activity.clone()),
            }),
        )
    }
}

/// Why a connection is asked to close.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Shutdown,
    /// Nothing in flight for the idle timeout.
    Idle,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test]
    async fn an_accepted_connection_is_probed_when_silent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        probe_when_silent(&tcp);
        let socket = socket2::SockRef::from(&tcp);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().ok(), Some(TCP_KEEP_ALIVE_IDLE));
        assert_eq!(
            socket.tcp_keepalive_interval().ok(),
            Some(TCP_KEEP_ALIVE_INTERVAL)
        );
        assert_eq!(
            socket.tcp_keepalive_retries().ok(),
            Some(TCP_KEEP_ALIVE_RETRIES)
        );
        assert_eq!(
            socket.tcp_user_timeout().ok().flatten(),
            Some(TCP_USER_TIMEOUT)
        );
    }

    async fn server(http: HttpConfig) -> SocketAddr {
        let slow = || async {
            let chunks = async_stream_body().await;
            Body::from_stream(chunks)
        };
        let app = Router::new()
            .route("/ping", axum::routing::get(|| async { "pong" }))
            .route("/slow", axum::routing::get(slow));
        start(
            "127.0.0.1:0".parse().expect("addr"),
            app,
            Shutdown::new(),
            &http,
        )
        .await
        .expect("start")
        .addr
    }

    /// How long `/slow` takes to send its one chunk.
    const SLOW: Duration = Duration::from_millis(1500);

    /// A body whose one chunk comes after [`SLOW`].
    async fn async_stream_body()
    -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        futures::stream::once(async {
            tokio::time::sleep(SLOW).await;
            Ok(Bytes::from_static(b"late"))
        })
    }

    async fn ask(tcp: &mut tokio::net::TcpStream, path: &str) -> String {
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut answer = vec![0u8; 1024];
        let n = tcp.read(&mut answer).await.expect("read");
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_an_idle_one_is_closed() {
        let addr = server(HttpConfig {
            max_connections: 1,
            idle_timeout_secs: 1,
            ..HttpConfig::default()
        })
        .await;
        let mut first = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(ask(&mut first, "/ping").await.contains("pong"));
        // The only slot is taken: the second connection is not served yet.
        let mut second = tokio::net::TcpStream::connect(addr).await.expect("connect");
        second
            .write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let mut answer = vec![0u8; 1024];
        let early =
            tokio::time::timeout(Duration::from_millis(300), second.read(&mut answer)).await;
        assert!(early.is_err(), "served beyond the cap");
        // The first one goes idle, is closed, and the second is served.
        let started = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut answer))
            .await
            .expect("served once the idle connection closed")
            .expect("read");
        assert!(String::from_utf8_lossy(&answer[..n]).contains("pong"));
        assert!(started.elapsed() < Duration::from_secs(3));
        let mut rest = [0u8; 16];
        assert_eq!(
            first.read(&mut rest).await.expect("read"),
            0,
            "idle one closed"
        );
    }

    #[tokio::test]
    async fn http2_calls_beyond_the_stream_cap_wait_their_turn() {
        use http_body_util::Empty;
        let addr = server(HttpConfig {
            max_streams_per_connection: 1,
            ..HttpConfig::default()
        })
        .await;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        // One call first, so the client has the server's settings.
        let ping = Request::get(format!("http://{addr}/ping"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.clone().send_request(ping).await.expect("ping");
        let started = Instant::now();
        let calls = (0..2).map(|_| {
            let mut sender = sender.clone();
            async move {
                let request = Request::get(format!("http://{addr}/slow"))
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let response = sender.send_request(request).await.expect("response");
                response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
            }
        });
        let bodies = futures::future::join_all(calls).await;
        assert!(bodies.iter().all(|b| &b[..] == b"late"));
        assert!(
            started.elapsed() >= SLOW * 2 - Duration::from_millis(100),
            "two calls ran at once on a one-stream connection: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn each_request_knows_its_client_behind_a_trusted_proxy_only() {
        let app = Router::new().route(
            "/who",
            axum::routing::get(|request: Request<Body>| async move {
                crate::client_address(request.extensions()).to_string()
            }),
        );
        let serve = async |trusted: &str| {
            let http = HttpConfig {
                clients: crate::ClientAddressing {
                    proxies: trusted.parse().expect("proxies"),
                    ..crate::ClientAddressing::default()
                },
                ..HttpConfig::default()
            };
            start(
                "127.0.0.1:0".parse().expect("addr"),
                app.clone(),
                Shutdown::new(),
                &http,
            )
            .await
            .expect("start")
            .addr
        };
        let ask = async |addr: SocketAddr, forwarded: &str| {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(
                format!("GET /who HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {forwarded}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("write");
            let mut answer = String::new();
            tcp.read_to_string(&mut answer).await.expect("read");
            answer.rsplit("\r\n").next().unwrap_or_default().to_owned()
        };
        let behind_proxy = serve("127.0.0.0/8").await;
        assert_eq!(
            ask(behind_proxy, "203.0.113.5, 198.51.100.7").await,
            "198.51.100.7"
        );
        let direct = serve("").await;
        assert_eq!(
            ask(direct, "198.51.100.7").await,
            "127.0.0.1",
            "a forged header"
        );
        let elsewhere = serve("10.0.0.0/8").await;
        assert_eq!(
            ask(elsewhere, "198.51.100.7").await,
            "127.0.0.1",
            "an untrusted peer"
        );
    }

    #[tokio::test]
    async fn a_long_call_outlives_the_idle_timeout() {
        let addr = server(HttpConfig {
            idle_timeout_secs: 1,
            ..HttpConfig::default()
        })
        .await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).contains("late") {
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(
                n > 0,
                "closed mid-call: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
    }
}
