//! The HTTP settings every service shares, readable from flags and env.

use std::time::Duration;

/// The default request size limit: 4 MiB, as gRPC and connect-go default to.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Serving settings common to every service.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Browser origins allowed to call the services directly (CORS), comma
    /// separated; `*` allows any origin. Default: the gateway's own origins
    /// as configured (its port on localhost, 127.0.0.1 and --host) and the
    /// web app's dev server (http://localhost:5173).
    pub cors_origins: Vec<String>,

    /// Largest accepted request message in bytes (after decompression for
    /// gRPC, on the wire for Connect); larger ones get resource_exhausted.
    pub max_request_bytes: usize,

    /// How long, after the drain, in-flight requests and background work (an
    /// event relay batch, a saga step) may take to finish before they are
    /// cut, in seconds: one deadline for both, so SIGTERM to exit takes at
    /// most --drain-ms plus this.
    pub shutdown_grace_secs: u64,

    /// After SIGTERM/Ctrl-C, how long the service keeps answering while it
    /// says it no longer serves (grpc.health.v1 NOT_SERVING, /readyz 503),
    /// so the shop's balancers (and Kubernetes) send it no new calls before
    /// its listener closes, in milliseconds.
    pub drain_ms: u64,

    /// Connections served at once per listener; beyond that new ones wait
    /// in the kernel's backlog until one closes.
    pub max_connections: usize,

    /// Concurrent HTTP/2 streams (calls) per connection.
    pub max_streams_per_connection: u32,

    /// Seconds an HTTP/1.1 client has to send a request's headers; a client
    /// trickling them slower is disconnected.
    pub header_read_timeout_secs: u64,

    /// Seconds a connection with no call in flight stays open (HTTP/1.1
    /// keep-alive and HTTP/2 alike); open streams keep it open.
    pub idle_timeout_secs: u64,

    /// Serve `/metrics` on this port of --host, in plain HTTP, and not on
    /// the services' own ports: a scraper then needs no client certificate
    /// under mutual TLS, and a route to a service never exposes its
    /// metrics (default: `/metrics` on every service's port).
    pub metrics_port: Option<u16>,

    /// The most calls a service works on at once: its adaptive limit stays
    /// at or under this; calls beyond the limit queue briefly or are
    /// refused at once with resource_exhausted (docs/overload.md). 0 turns
    /// admission control off.
    pub max_calls_in_flight: usize,

    /// Services in this process call this one without a socket: through
    /// the same client stack and the same layers, straight to its app
    /// (plain listeners only; see `shop_kit_wire::in_process`). Off (the
    /// library's default), they go over loopback and HTTP/2 as processes
    /// apart do; the shop's command line turns it on.
    pub in_process_calls: bool,

    /// Who the client is behind the edge: the proxies (or hops) believed,
    /// the one header the edge writes, and how coarsely per-address limits
    /// key an IPv6 client. Every per-address limit, log line and trace
    /// sees that client. Default: the TCP peer is the client.
    pub clients: crate::ClientAddressing,

    /// A server stream that sent nothing for this many seconds sends a
    /// heartbeat (`kit.stream.v1.Heartbeat`), so proxies with idle
    /// timeouts keep it open: under the shortest idle timeout in front of
    /// the services.
    pub stream_heartbeat_secs: u64,
    pub tls: shop_kit_tls::ServerTlsConfig,
}

/// How long a service drains before it stops accepting, by default.
pub const DEFAULT_DRAIN_MS: u64 = 1000;

/// Connections per listener, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Calls a service works on at once at most, by default.
pub const DEFAULT_MAX_CALLS_IN_FLIGHT: usize = 1024;
/// Seconds a server stream may be quiet before it sends a heartbeat, by
/// default: under nginx's and cloud load balancers' 60 s.
pub const DEFAULT_STREAM_HEARTBEAT_SECS: u64 = 30;
/// HTTP/2 streams per connection, by default.
pub const DEFAULT_MAX_STREAMS: u32 = 256;

/// The web app's dev server (`just web`'s Vite), allowed by default.
pub const DEV_SERVER_ORIGIN: &str = "http://localhost:5173";

impl HttpConfig {
    /// The origins a browser loads the web app from when the gateway
    /// listens on `host`:`port` (over https if `tls`): its own, and the dev
    /// server's. What `cors_origins` becomes when none were given.
    pub fn gateway_origins(host: std::net::IpAddr, port: u16, tls: bool) -> Vec<String> {
        let scheme = if tls { "https" } else { "http" };
        let mut origins = vec![
            format!("{scheme}://localhost:{port}"),
            format!("{scheme}://127.0.0.1:{port}"),
        ];
        if !host.is_unspecified() && !host.is_loopback() {
            origins.push(format!(
                "{scheme}://{}",
                std::net::SocketAddr::new(host, port)
            ));
        }
        origins.push(DEV_SERVER_ORIGIN.to_owned());
        origins
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    /// The admission limit's bounds (`None`: admission control off).
    pub fn admission(&self) -> Option<crate::admission::LimitConfig> {
        (self.max_calls_in_flight > 0)
            .then(|| crate::admission::LimitConfig::up_to(self.max_calls_in_flight))
    }

    pub fn stream_heartbeat(&self) -> Duration {
        Duration::from_secs(self.stream_heartbeat_secs.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: vec!["*".to_owned()],
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            shutdown_grace_secs: 10,
            drain_ms: DEFAULT_DRAIN_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_streams_per_connection: DEFAULT_MAX_STREAMS,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            metrics_port: None,
            max_calls_in_flight: DEFAULT_MAX_CALLS_IN_FLIGHT,
            in_process_calls: false,
            clients: crate::ClientAddressing::default(),
            stream_heartbeat_secs: DEFAULT_STREAM_HEARTBEAT_SECS,
            tls: shop_kit_tls::ServerTlsConfig::default(),
        }
    }
}
