//! The kit's flags: what every service shares (where it listens, how it
//! serves HTTP and TLS, logs and traces). Global: accepted before or after
//! `serve <service>`.

use std::{net::IpAddr, path::PathBuf};

use clap::{
    Args,
    builder::{PossibleValuesParser, TypedValueParser},
};
use shop_kit::{
    HttpConfig,
    observe::{
        telemetry::{LogConfig, LogFormat},
        traces::{self, OtlpProtocol, TraceConfig, TraceTrust},
    },
    rpc::{
        ClientAddressHeader, ClientAddressing, TrustedProxies,
        client_address::DEFAULT_IPV6_LIMIT_PREFIX,
        config::{
            DEFAULT_DRAIN_MS, DEFAULT_MAX_CALLS_IN_FLIGHT, DEFAULT_MAX_CONNECTIONS,
            DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_STREAMS, DEFAULT_STREAM_HEARTBEAT_SECS,
        },
    },
    tls::{ClientTlsConfig, ServerTlsConfig},
};

/// A choice among a kit type's named values (listed in `--help`).
fn one_of<T: Copy + Send + Sync + 'static>(
    named: &'static [(&'static str, T)],
) -> impl clap::builder::TypedValueParser<Value = T> {
    PossibleValuesParser::new(named.iter().map(|(name, _)| *name)).map(move |chosen| {
        named
            .iter()
            .find(|(name, _)| *name == chosen)
            .map(|(_, value)| *value)
            .unwrap_or(named[0].1)
    })
}

#[derive(Args, Debug)]
pub struct KitArgs {
    /// Folder for the services' SQLite files (one per service).
    #[arg(long, env = "SHOP_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Address every service listens on.
    #[arg(long, env = "SHOP_HOST", default_value = "127.0.0.1", global = true)]
    pub host: IpAddr,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub server_tls: ServerTlsArgs,

    #[command(flatten)]
    pub client_tls: ClientTlsArgs,

    /// Run on TLS from the files `shop certs DIR` wrote: each service
    /// serves its own certificate, calls the others over https showing its
    /// client certificate, and the internal services accept only the
    /// shop's services' certificates (mutual TLS).
    #[arg(
        long,
        env = "SHOP_TLS_DIR",
        global = true,
        conflicts_with_all = ["tls_cert", "tls_key", "tls_client_ca", "tls_ca", "tls_client_cert", "tls_client_key"]
    )]
    pub tls_dir: Option<PathBuf>,

    /// A gRPC service config (JSON, gRFC A6) whose methodConfig entries
    /// replace the contract's timeout, retries and hedging for the methods
    /// they name, as the shop's services call each other; retryThrottling
    /// replaces the retry budget per peer. Checked at start (a bad one is
    /// refused) and read again when it changes (a bad change is logged and
    /// the config before kept). See docs/contract.md.
    #[arg(long, env = "SHOP_SERVICE_CONFIG", global = true, value_name = "FILE")]
    pub service_config: Option<PathBuf>,

    #[command(flatten)]
    pub logs: LogArgs,

    #[command(flatten)]
    pub traces: TraceArgs,

    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The local dashboard (docs/dashboard.md).
#[derive(Args, Debug)]
pub struct DashboardArgs {
    /// The local dashboard on 127.0.0.1: services live, the contract with
    /// an explorer, traces and sagas kept in memory, the flow, the log. On
    /// for the whole shop, off for `shop serve` unless given; `--dashboard
    /// off` turns it off (traces and the log are then not kept in memory).
    #[arg(
        long,
        env = "SHOP_DASHBOARD",
        global = true,
        value_name = "on|off",
        num_args = 0..=1,
        default_missing_value = "on",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub dashboard: Option<bool>,

    /// The dashboard's port on 127.0.0.1 [default: 8079; 0: any free one].
    /// When the default is taken the shop starts without the dashboard and
    /// says so; a port given here that is taken stops the shop.
    #[arg(long, env = "SHOP_DASHBOARD_PORT", global = true)]
    pub dashboard_port: Option<u16>,
}

/// The dashboard's port unless told otherwise.
pub const DEFAULT_DASHBOARD_PORT: u16 = 8079;

impl KitArgs {
    /// Whether the shop's services serve TLS (and so call each other over
    /// https by default).
    pub fn serves_tls(&self) -> bool {
        self.tls_dir.is_some() || self.server_tls.tls_cert.is_some()
    }
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Browser origins allowed to call the services directly (CORS), comma
    /// separated; `*` allows any origin. Default: the gateway's own origins
    /// as configured (its port on localhost, 127.0.0.1 and --host) and the
    /// web app's dev server (http://localhost:5173).
    #[arg(long, global = true, env = "SHOP_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest accepted request message in bytes (after decompression for
    /// gRPC, on the wire for Connect); larger ones get resource_exhausted.
    #[arg(long, global = true, env = "SHOP_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,

    /// How long, after the drain, in-flight requests and background work (an
    /// event relay batch, a saga step) may take to finish before they are
    /// cut, in seconds: one deadline for both, so SIGTERM to exit takes at
    /// most --drain-ms plus this.
    #[arg(long, global = true, env = "SHOP_SHUTDOWN_GRACE_SECS", default_value_t = HttpConfig::default().shutdown_grace_secs)]
    pub shutdown_grace_secs: u64,

    /// After SIGTERM/Ctrl-C, how long the service keeps answering while it
    /// says it no longer serves (grpc.health.v1 NOT_SERVING, /readyz 503),
    /// so the shop's balancers (and Kubernetes) send it no new calls before
    /// its listener closes, in milliseconds.
    #[arg(long, global = true, env = "SHOP_DRAIN_MS", default_value_t = DEFAULT_DRAIN_MS)]
    pub drain_ms: u64,

    /// Connections served at once per listener; beyond that new ones wait
    /// in the kernel's backlog until one closes.
    #[arg(long, global = true, env = "SHOP_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Concurrent HTTP/2 streams (calls) per connection.
    #[arg(long, global = true, env = "SHOP_MAX_STREAMS_PER_CONNECTION", default_value_t = DEFAULT_MAX_STREAMS)]
    pub max_streams_per_connection: u32,

    /// Seconds an HTTP/1.1 client has to send a request's headers; a client
    /// trickling them slower is disconnected.
    #[arg(long, global = true, env = "SHOP_HEADER_READ_TIMEOUT_SECS", default_value_t = HttpConfig::default().header_read_timeout_secs)]
    pub header_read_timeout_secs: u64,

    /// Seconds a connection with no call in flight stays open (HTTP/1.1
    /// keep-alive and HTTP/2 alike); open streams keep it open.
    #[arg(long, global = true, env = "SHOP_IDLE_TIMEOUT_SECS", default_value_t = HttpConfig::default().idle_timeout_secs)]
    pub idle_timeout_secs: u64,

    /// Serve `/metrics` on this port of --host, in plain HTTP, and not on
    /// the services' own ports: a scraper then needs no client certificate
    /// under mutual TLS, and a route to a service never exposes its
    /// metrics (default: `/metrics` on every service's port).
    #[arg(long, global = true, env = "SHOP_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// The most calls a service works on at once: its adaptive limit stays
    /// at or under this; calls beyond the limit queue briefly or are
    /// refused at once with resource_exhausted (docs/overload.md). 0 turns
    /// admission control off.
    #[arg(long, global = true, env = "SHOP_MAX_CALLS_IN_FLIGHT", default_value_t = DEFAULT_MAX_CALLS_IN_FLIGHT)]
    pub max_calls_in_flight: usize,

    /// Whether services in one process call each other without a socket
    /// (straight to the callee's app, through the same client stack and
    /// the same layers; plain listeners only): 18% less CPU per order in
    /// the embedded shop (docs/measuring.md). `false`: over loopback and
    /// HTTP/2, as processes apart do.
    #[arg(
        long,
        global = true,
        env = "SHOP_IN_PROCESS_CALLS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub in_process_calls: bool,

    /// The proxies in front of the services (your edge: a Gateway, an
    /// ingress, a load balancer), as addresses and CIDR blocks, comma
    /// separated: the header they write (--client-address-header) names the
    /// client, which every per-address limit (sign-in, the gateway's), log
    /// line and trace then uses: the rightmost address in it that is not a
    /// trusted proxy. A caller not in this list is the client, whatever its
    /// headers say. Default: none (docs/edge.md).
    #[arg(
        long,
        global = true,
        env = "SHOP_TRUSTED_PROXIES",
        value_name = "CIDRS",
        default_value = ""
    )]
    pub trusted_proxies: TrustedProxies,

    /// The one header your edge writes the client's address in; no other
    /// is read. x-forwarded-for: nginx, Envoy (Gateway), Istio, HAProxy,
    /// ingress-nginx and cloud load balancers append to it; forwarded: an
    /// edge set up to append RFC 7239 `Forwarded`; x-real-ip and
    /// x-envoy-external-address: one address the edge sets.
    #[arg(long, global = true, env = "SHOP_CLIENT_ADDRESS_HEADER", value_name = "HEADER", value_parser = one_of(&ClientAddressHeader::NAMED), default_value = "x-forwarded-for")]
    pub client_address_header: ClientAddressHeader,

    /// The client is this many entries from the right of
    /// X-Forwarded-For / Forwarded (Envoy's xff_num_trusted_hops): 1 when
    /// only your edge appends, 2 with a load balancer before it. Without
    /// --trusted-proxies every peer is then believed, so let only the edge
    /// reach the services' ports (the manifests' NetworkPolicies do).
    #[arg(long, global = true, env = "SHOP_TRUSTED_HOPS", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
    pub trusted_hops: Option<u8>,

    /// Per-address limits (sign-in, the gateway's) count an IPv6 client's
    /// network of this many bits as one client: one host is given a /64.
    #[arg(long, global = true, env = "SHOP_RATE_LIMIT_IPV6_PREFIX", value_name = "BITS", default_value_t = DEFAULT_IPV6_LIMIT_PREFIX, value_parser = clap::value_parser!(u8).range(1..=128))]
    pub rate_limit_ipv6_prefix: u8,

    /// A server stream (WatchOrder, WatchStock, their REST events) that
    /// sent nothing for this many seconds sends a heartbeat, which clients
    /// skip: keep it under the shortest idle timeout of the proxies in
    /// front of the services (nginx and cloud load balancers: 60 s).
    #[arg(long, global = true, env = "SHOP_STREAM_HEARTBEAT_SECS", default_value_t = DEFAULT_STREAM_HEARTBEAT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stream_heartbeat_secs: u64,
}

#[derive(Args, Debug)]
pub struct ServerTlsArgs {
    /// Serve TLS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate
    /// chain; plain text on the port is then refused. Re-read when the
    /// file changes.
    #[arg(long, global = true, env = "SHOP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, global = true, env = "SHOP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Ask callers for a client certificate and verify it against these
    /// PEM CAs (mutual TLS). Callers without one are still served (browsers,
    /// curl); one that does not verify is refused at the handshake.
    #[arg(long, global = true, env = "SHOP_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// The internal services (those only the shop's services call) accept
    /// only callers whose client certificate, from --tls-client-ca, names
    /// one of the shop's services: a service token alone gets nothing.
    #[arg(
        long,
        global = true,
        env = "SHOP_TLS_REQUIRE_SERVICE_CERT",
        value_parser = clap::builder::BoolishValueParser::new(),
        requires = "tls_client_ca"
    )]
    pub tls_require_service_cert: bool,

    /// Migration only: also serve clients that speak plain text on the TLS
    /// port (the first byte tells them apart), until they all use TLS.
    #[arg(
        long,
        global = true,
        env = "SHOP_TLS_ALLOW_PLAINTEXT",
        value_parser = clap::builder::BoolishValueParser::new(),
        requires = "tls_cert"
    )]
    pub tls_allow_plaintext: bool,
}

#[derive(Args, Debug)]
pub struct ClientTlsArgs {
    /// PEM CAs that sign the certificates of the services this one calls
    /// (its https:// and dns:/// peers).
    #[arg(long, global = true, env = "SHOP_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// The PEM certificate this service presents when it calls another
    /// (mutual TLS), e.g. one naming spiffe://<trust domain>/orders.
    #[arg(long, global = true, env = "SHOP_TLS_CLIENT_CERT", requires_all = ["tls_client_key", "tls_ca"])]
    pub tls_client_cert: Option<PathBuf>,

    /// The PEM private key of --tls-client-cert.
    #[arg(
        long,
        global = true,
        env = "SHOP_TLS_CLIENT_KEY",
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Log format.
    #[arg(long = "log-format", env = "SHOP_LOG_FORMAT", value_parser = one_of(&LogFormat::NAMED), default_value = "text", global = true)]
    pub format: LogFormat,

    /// Log a line for every RPC, successful ones included (by default only
    /// failed and slow calls are logged; the metrics count them all).
    /// Ignored when RUST_LOG is set: `RUST_LOG=info,rpc=debug` does the same.
    #[arg(long, env = "SHOP_LOG_RPCS", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub log_rpcs: bool,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Send traces to this OTLP endpoint, e.g. http://127.0.0.1:4317
    /// (grpc) or http://127.0.0.1:4318 (http/protobuf, `/v1/traces` is
    /// appended). Traces are off unless this or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        global = true
    )]
    pub endpoint: Option<String>,

    /// The OTLP transport.
    #[arg(long = "otlp-protocol", env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_parser = one_of(&OtlpProtocol::NAMED), default_value = "grpc", global = true)]
    pub protocol: OtlpProtocol,

    /// Sample this share of new traces, 0 to 1 (a caller's decision is
    /// followed); instead of OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG,
    /// whose default is every trace.
    #[arg(long = "trace-sample-ratio", value_parser = traces::sample_ratio, global = true)]
    pub sample_ratio: Option<f64>,

    /// Whose incoming trace context a call continues: `services` (a caller
    /// with a shop service's client certificate or service token), `all`,
    /// or `none`. Other callers start a new trace linked to theirs.
    #[arg(long = "trace-trust", env = "SHOP_TRACE_TRUST", value_parser = one_of(&TraceTrust::NAMED), default_value = "services", global = true)]
    pub trust: TraceTrust,
}

impl From<&LogArgs> for LogConfig {
    fn from(args: &LogArgs) -> Self {
        Self {
            format: args.format,
            log_rpcs: args.log_rpcs,
            keep: None,
        }
    }
}

impl From<&TraceArgs> for TraceConfig {
    fn from(args: &TraceArgs) -> Self {
        Self {
            endpoint: args.endpoint.clone(),
            protocol: args.protocol,
            sample_ratio: args.sample_ratio,
            trust: args.trust,
            keep: None,
        }
    }
}

impl From<&ServerTlsArgs> for ServerTlsConfig {
    fn from(args: &ServerTlsArgs) -> Self {
        Self {
            tls_cert: args.tls_cert.clone(),
            tls_key: args.tls_key.clone(),
            tls_client_ca: args.tls_client_ca.clone(),
            tls_require_service_cert: args.tls_require_service_cert,
            tls_allow_plaintext: args.tls_allow_plaintext,
            // Which services a client certificate may name: the shop's.
            service_names: shop_proto::identity::service_names(),
        }
    }
}

impl From<&ClientTlsArgs> for ClientTlsConfig {
    fn from(args: &ClientTlsArgs) -> Self {
        Self {
            tls_ca: args.tls_ca.clone(),
            tls_client_cert: args.tls_client_cert.clone(),
            tls_client_key: args.tls_client_key.clone(),
        }
    }
}

impl KitArgs {
    /// The services' HTTP settings; CORS origins default to the gateway's
    /// own (wherever `gateway_port` puts it) and the web dev server.
    pub fn http(&self, gateway_port: u16) -> HttpConfig {
        let cors_origins = if self.http.cors_origins.is_empty() {
            HttpConfig::gateway_origins(self.host, gateway_port, self.serves_tls())
        } else {
            self.http.cors_origins.clone()
        };
        HttpConfig {
            cors_origins,
            tls: (&self.server_tls).into(),
            ..self.process_http()
        }
    }

    /// The HTTP settings of the process's own port (`--metrics-port`): the
    /// kit's limits and drain, in plain HTTP, for no browser (no CORS).
    pub fn process_http(&self) -> HttpConfig {
        let http = &self.http;
        HttpConfig {
            cors_origins: Vec::new(),
            max_request_bytes: http.max_request_bytes,
            shutdown_grace_secs: http.shutdown_grace_secs,
            drain_ms: http.drain_ms,
            max_connections: http.max_connections,
            max_streams_per_connection: http.max_streams_per_connection,
            header_read_timeout_secs: http.header_read_timeout_secs,
            idle_timeout_secs: http.idle_timeout_secs,
            metrics_port: http.metrics_port,
            max_calls_in_flight: http.max_calls_in_flight,
            in_process_calls: http.in_process_calls,
            clients: ClientAddressing {
                proxies: http.trusted_proxies.clone(),
                header: http.client_address_header,
                hops: http.trusted_hops.and_then(std::num::NonZeroU8::new),
                ipv6_limit_prefix: http.rate_limit_ipv6_prefix,
            },
            stream_heartbeat_secs: http.stream_heartbeat_secs,
            tls: ServerTlsConfig::default(),
        }
    }
}
