//! `shop`: starts the whole shop (every service in one process, each on its
//! own port with its own database), or one service with `shop serve NAME`.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use shop_proto::identity;

/// mimalloc instead of glibc's malloc: glibc keeps the large blocks a burst
/// of password hashes frees (19 MiB each, in per-thread arenas) resident
/// for good; mimalloc returns them to the system (see the hardening tests).
/// Built without transparent huge pages (Cargo.toml says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use shop_kit::{
    HttpConfig, Shutdown, app,
    auth::TokenKeys,
    client::PeerTarget,
    db,
    observe::{metrics::Metrics, telemetry},
    tls::{ClientTls, ClientTlsFlags, DevCa, ServerTlsFlags},
};

#[derive(Parser, Debug)]
#[command(
    name = "shop",
    version,
    about = "connect-shop: a shop of Rust microservices speaking Connect, gRPC and gRPC-Web",
    long_about = "Starts every service of connect-shop in one process (the default), each on its \
                  own port with its own SQLite file, migrations applied and demo data seeded. \
                  `shop serve <service>` runs one service alone.\n\n\
                  Every flag can also be set by the environment variable shown with it."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    shop: ShopArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start every service in one process (the default).
    Run,
    /// Apply the services' database migrations and exit (e.g. as a
    /// Kubernetes Job before a rollout); every service also applies them
    /// at start, one replica at a time.
    Migrate {
        /// The services to migrate (default: all four).
        #[arg(value_enum)]
        services: Vec<StoredService>,
        /// The database, when one service is named (default: the service's
        /// own --<service>-database-url, else SQLite under --data-dir).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Write a development CA and the shop's certificates into DIR, for
    /// `shop --tls-dir DIR`: DIR/ca.pem and ca-key.pem; per service a
    /// server certificate (<service>.pem, <service>-key.pem: localhost,
    /// 127.0.0.1 and its Kubernetes names) and a client certificate
    /// (<service>-client.pem, <service>-client-key.pem:
    /// spiffe://connect-shop/<service>). Run again, it renews the
    /// certificates under the CA already in DIR (running services reload
    /// them and keep trusting each other); the CA is replaced only with
    /// --new-ca.
    Certs {
        dir: PathBuf,
        /// Another name or IP address every server certificate carries
        /// (repeatable), e.g. the machine's name.
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// Make a new CA even if DIR holds one (every service must then
        /// get the new files before they trust each other again).
        #[arg(long)]
        new_ca: bool,
    },
    /// Run a single service.
    Serve {
        #[arg(value_enum)]
        service: ServiceName,
        /// The service's database, e.g. postgres://shop:secret@localhost/catalog
        /// (default: the service's own --<service>-database-url, else SQLite
        /// under --data-dir).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ServiceName {
    Users,
    Catalog,
    Orders,
    Payments,
    Gateway,
}

/// The services that keep a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StoredService {
    Users,
    Catalog,
    Orders,
    Payments,
}

impl ServiceName {
    const ALL: [Self; 5] = [
        Self::Users,
        Self::Catalog,
        Self::Orders,
        Self::Payments,
        Self::Gateway,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Catalog => "catalog",
            Self::Orders => "orders",
            Self::Payments => "payments",
            Self::Gateway => "gateway",
        }
    }
}

impl StoredService {
    const ALL: [Self; 4] = [Self::Users, Self::Catalog, Self::Orders, Self::Payments];

    fn name(self) -> &'static str {
        ServiceName::from(self).name()
    }
}

impl From<StoredService> for ServiceName {
    fn from(service: StoredService) -> Self {
        match service {
            StoredService::Users => Self::Users,
            StoredService::Catalog => Self::Catalog,
            StoredService::Orders => Self::Orders,
            StoredService::Payments => Self::Payments,
        }
    }
}

#[derive(Args, Debug)]
struct ShopArgs {
    /// Folder for the services' SQLite files (one per service).
    #[arg(long, env = "SHOP_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,

    /// Address every service listens on.
    #[arg(long, env = "SHOP_HOST", default_value = "127.0.0.1", global = true)]
    host: IpAddr,

    /// Port of the users service.
    #[arg(long, env = "USERS_PORT", default_value_t = 8081, global = true)]
    users_port: u16,

    /// Database of the users service (default: SQLite under --data-dir).
    #[arg(long, env = "USERS_DATABASE_URL", global = true)]
    users_database_url: Option<String>,

    /// Where the services reach the users service (its public keys, service
    /// tokens): a URL, a comma-separated list of URLs (replicas), or
    /// dns:///host:port, looked up again every few seconds (default: its
    /// --host and --users-port).
    #[arg(long, env = "USERS_URL", global = true)]
    users_url: Option<PeerTarget>,

    /// Port of the catalog service.
    #[arg(long, env = "CATALOG_PORT", default_value_t = 8082, global = true)]
    catalog_port: u16,

    /// Port of the orders service.
    #[arg(long, env = "ORDERS_PORT", default_value_t = 8083, global = true)]
    orders_port: u16,

    /// Database of the orders service (default: SQLite under --data-dir).
    #[arg(long, env = "ORDERS_DATABASE_URL", global = true)]
    orders_database_url: Option<String>,

    /// Where orders and the gateway reach the catalog: a URL, a list of
    /// URLs, or dns:///host:port (default: its --host and --catalog-port).
    #[arg(long, env = "CATALOG_URL", global = true)]
    catalog_url: Option<PeerTarget>,

    /// Port of the BFF gateway (and the web app).
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 8080, global = true)]
    gateway_port: u16,

    /// Where the gateway reaches the orders service: a URL, a list of URLs,
    /// or dns:///host:port (default: its --host and --orders-port).
    #[arg(long, env = "ORDERS_URL", global = true)]
    orders_url: Option<PeerTarget>,

    /// The users service as a browser reaches it, for the web app
    /// (default: the first URL of --users-url).
    #[arg(long, env = "PUBLIC_USERS_URL", global = true)]
    public_users_url: Option<String>,

    /// The catalog as a browser reaches it (default: the first URL of
    /// --catalog-url).
    #[arg(long, env = "PUBLIC_CATALOG_URL", global = true)]
    public_catalog_url: Option<String>,

    /// The orders service as a browser reaches it (default: the first URL
    /// of --orders-url).
    #[arg(long, env = "PUBLIC_ORDERS_URL", global = true)]
    public_orders_url: Option<String>,

    /// Serve the web app at / from this folder (index.html and assets, e.g.
    /// web-client/dist after `just web`) instead of the one built into the
    /// binary.
    #[arg(long, env = "SHOP_WEB_DIR", global = true)]
    web_dir: Option<PathBuf>,

    #[command(flatten)]
    rate_limit: shop_kit::rpc::rate_limit::RateLimitConfig,

    /// Port of the payments service.
    #[arg(long, env = "PAYMENTS_PORT", default_value_t = 8084, global = true)]
    payments_port: u16,

    /// Where orders reaches the payments service: a URL, a list of URLs, or
    /// dns:///host:port (default: its --host and --payments-port).
    #[arg(long, env = "PAYMENTS_URL", global = true)]
    payments_url: Option<PeerTarget>,

    /// An order not charged within this many seconds is cancelled (its
    /// stock released, any charge refunded).
    #[arg(
        long,
        env = "SHOP_ORDER_DEADLINE_SECS",
        default_value_t = 120,
        global = true
    )]
    order_deadline_secs: u64,

    /// Database of the payments service (default: SQLite under --data-dir).
    #[arg(long, env = "PAYMENTS_DATABASE_URL", global = true)]
    payments_database_url: Option<String>,

    /// Database of the catalog (default: SQLite under --data-dir), e.g.
    /// postgres://shop:secret@localhost/catalog.
    #[arg(long, env = "CATALOG_DATABASE_URL", global = true)]
    catalog_database_url: Option<String>,

    /// The secret the shop's services share to get service tokens from the
    /// users service (default: a random one per start).
    #[arg(
        long,
        env = "SHOP_SERVICE_SECRET",
        hide_env_values = true,
        global = true
    )]
    service_secret: Option<SecretString>,

    /// NATS server for the services' events (JetStream), e.g.
    /// nats://localhost:4222, or tls://nats:4222 for TLS; a token
    /// (nats://TOKEN@host:4222) or a user and password
    /// (nats://USER:PASSWORD@host:4222) in it authenticate, as in every
    /// NATS client (default: events stay in this process).
    #[arg(long, env = "NATS_URL", hide_env_values = true, global = true)]
    nats_url: Option<String>,

    /// The CA certificates (PEM) NATS's TLS certificate is checked against
    /// (default: the system's).
    #[arg(long, env = "NATS_CA", global = true, requires = "nats_url")]
    nats_ca: Option<PathBuf>,

    /// Do not seed demo data into empty databases.
    #[arg(long, env = "SHOP_NO_DEMO_DATA", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    no_demo_data: bool,

    /// Create the demo account (a known email and password) even where it
    /// is not created by default: by default only the whole shop started
    /// on a loopback --host gets it, never `shop serve` nor a shop others
    /// can reach.
    #[arg(
        long,
        env = "SHOP_DEMO_ACCOUNT",
        global = true,
        conflicts_with = "no_demo_data"
    )]
    demo_account: bool,

    /// A file with the Ed25519 key (PKCS#8, PEM or DER) the users service
    /// signs access tokens with, e.g. from `openssl genpkey -algorithm
    /// ed25519` (default: a key created in and kept by the users database).
    #[arg(long, env = "SHOP_SIGNING_KEY_FILE", global = true)]
    signing_key_file: Option<PathBuf>,

    /// The same key as PEM text (e.g. from a secret store), instead of a file.
    #[arg(
        long,
        env = "SHOP_SIGNING_KEY",
        hide_env_values = true,
        global = true,
        conflicts_with = "signing_key_file"
    )]
    signing_key: Option<SecretString>,

    #[command(flatten)]
    hashing: shop_users::passwords::HashingConfig,

    #[command(flatten)]
    throttle: shop_users::throttle::ThrottleConfig,

    /// Stock every demo product starts with (default: each its own, a few
    /// dozen); e.g. 1000000 for a load test.
    #[arg(long, env = "SHOP_DEMO_STOCK", value_parser = clap::value_parser!(i32).range(0..), global = true)]
    demo_stock: Option<i32>,

    #[command(flatten)]
    logs: telemetry::LogConfig,

    #[command(flatten)]
    traces: shop_kit::observe::traces::TraceConfig,

    #[command(flatten)]
    http: HttpConfig,

    #[command(flatten)]
    client_tls: ClientTlsFlags,

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
    tls_dir: Option<PathBuf>,
}

/// How one service speaks TLS: what it serves, and how it calls its peers.
struct ServiceTls {
    server: ServerTlsFlags,
    client: Option<ClientTls>,
}

impl ShopArgs {
    /// A service's database: its own flag, else `shop serve`'s DATABASE_URL,
    /// else its SQLite file under --data-dir.
    fn database_url(&self, own: Option<&str>, serve: Option<&str>, name: &str) -> db::DatabaseUrl {
        own.or(serve)
            .map_or_else(|| db::sqlite_url(&self.data_dir, name), str::to_owned)
            .into()
    }

    /// Whether the demo account is created: asked for, or the whole shop
    /// on a host only this machine reaches.
    fn demo_account(&self, whole_shop: bool) -> bool {
        !self.no_demo_data && (self.demo_account || (whole_shop && self.host.is_loopback()))
    }

    fn users(
        &self,
        database_url: Option<&str>,
        whole_shop: bool,
    ) -> anyhow::Result<shop_users::Config> {
        let signing_key = match (&self.signing_key_file, &self.signing_key) {
            (Some(file), _) => Some(std::fs::read(file).map_err(|e| {
                anyhow::anyhow!("cannot read the signing key {}: {e}", file.display())
            })?),
            (None, Some(pem)) => Some(pem.expose_secret().as_bytes().to_vec()),
            (None, None) => None,
        };
        Ok(shop_users::Config {
            database_url: self.database_url(
                self.users_database_url.as_deref(),
                database_url,
                "users",
            ),
            demo_data: self.demo_account(whole_shop),
            service_secret: self.service_secret.clone().unwrap_or_default(),
            signing_key: signing_key.map(SecretSlice::from),
            hashing: self.hashing.clone(),
            throttle: self.throttle.clone(),
        })
    }

    /// The catalog's settings; `database_url` is `shop serve`'s DATABASE_URL.
    fn catalog(&self, database_url: Option<&str>, tls: &ServiceTls) -> shop_catalog::Config {
        shop_catalog::Config {
            database_url: self.database_url(
                self.catalog_database_url.as_deref(),
                database_url,
                "catalog",
            ),
            demo_data: !self.no_demo_data,
            demo_stock: self.demo_stock,
            nats: self.nats(),
            token_keys: self.token_keys(tls),
        }
    }

    fn orders(&self, database_url: Option<&str>, tls: &ServiceTls) -> shop_orders::Config {
        shop_orders::Config {
            database_url: self.database_url(
                self.orders_database_url.as_deref(),
                database_url,
                "orders",
            ),
            peers: shop_orders::Peers {
                users: self.users_peer(tls),
                catalog: self.peer(&self.catalog_url, "--catalog-url", self.catalog_port, tls),
                payments: self.peer(
                    &self.payments_url,
                    "--payments-url",
                    self.payments_port,
                    tls,
                ),
                service_secret: self.service_secret.clone().unwrap_or_default(),
            },
            nats: self.nats(),
            saga: shop_orders::SagaPolicy {
                deadline: std::time::Duration::from_secs(self.order_deadline_secs),
                ..shop_orders::SagaPolicy::default()
            },
            token_keys: self.token_keys(tls),
        }
    }

    fn payments(&self, database_url: Option<&str>, tls: &ServiceTls) -> shop_payments::Config {
        shop_payments::Config {
            database_url: self.database_url(
                self.payments_database_url.as_deref(),
                database_url,
                "payments",
            ),
            nats: self.nats(),
            token_keys: self.token_keys(tls),
        }
    }

    fn gateway(&self, tls: &ServiceTls) -> anyhow::Result<shop_gateway::Config> {
        let services = shop_gateway::ServicePeers {
            users: self.users_peer(tls),
            catalog: self.peer(&self.catalog_url, "--catalog-url", self.catalog_port, tls),
            orders: self.peer(&self.orders_url, "--orders-url", self.orders_port, tls),
        };
        // The browser calls the services directly, at URLs of its own.
        let browser = shop_gateway::ServiceUrls {
            users_url: public_url(&self.public_users_url, &services.users, "users")?,
            catalog_url: public_url(&self.public_catalog_url, &services.catalog, "catalog")?,
            orders_url: public_url(&self.public_orders_url, &services.orders, "orders")?,
        };
        Ok(shop_gateway::Config {
            browser,
            services,
            downstream: shop_kit::client::PeerPolicy::default(),
            cache: shop_gateway::CachePolicy::default(),
            rate_limit: self.rate_limit.clone(),
            web_dir: self.web_dir.clone(),
            token_keys: self.token_keys(tls),
        })
    }

    /// The NATS server events go to, if any.
    fn nats(&self) -> Option<shop_kit::events::NatsServer> {
        let url = self.nats_url.as_ref()?;
        Some(shop_kit::events::NatsServer::new(url).with_ca(self.nats_ca.clone()))
    }

    /// Every service verifies tokens with the users service's public keys.
    fn token_keys(&self, tls: &ServiceTls) -> TokenKeys {
        TokenKeys::FromUsers {
            users: self.users_peer(tls),
            rules: shop_proto::identity::token_rules(),
        }
    }

    /// Whether the shop's services serve TLS (and so call each other over
    /// https by default).
    fn serves_tls(&self) -> bool {
        self.tls_dir.is_some() || self.http.tls.is_enabled()
    }

    /// How `service` speaks TLS: from --tls-dir, else the TLS flags (the
    /// clients' TLS loaded once, as `shared`).
    fn tls(&self, service: ServiceName, shared: &Option<ClientTls>) -> anyhow::Result<ServiceTls> {
        let Some(dir) = &self.tls_dir else {
            return Ok(ServiceTls {
                server: self.http.tls.clone(),
                client: shared.clone(),
            });
        };
        let name = service.name();
        let ca = dir.join("ca.pem");
        if !ca.exists() {
            anyhow::bail!(
                "--tls-dir {}: no ca.pem there; write the shop's certificates first with \
                 `shop certs {}`",
                dir.display(),
                dir.display()
            );
        }
        let client = ClientTls::load(
            ca.clone(),
            Some((
                dir.join(format!("{name}-client.pem")),
                dir.join(format!("{name}-client-key.pem")),
            )),
        )
        .map_err(|e| anyhow::anyhow!("{name}: TLS: {e}"))?;
        Ok(ServiceTls {
            server: ServerTlsFlags {
                tls_cert: Some(dir.join(format!("{name}.pem"))),
                tls_key: Some(dir.join(format!("{name}-key.pem"))),
                tls_client_ca: Some(ca),
                tls_require_service_cert: true,
                tls_allow_plaintext: false,
                service_names: identity::service_names(),
            },
            client: Some(client),
        })
    }

    /// Where `service` listens.
    fn addr(&self, service: ServiceName) -> SocketAddr {
        let port = match service {
            ServiceName::Users => self.users_port,
            ServiceName::Catalog => self.catalog_port,
            ServiceName::Orders => self.orders_port,
            ServiceName::Payments => self.payments_port,
            ServiceName::Gateway => self.gateway_port,
        };
        SocketAddr::new(self.host, port)
    }

    /// Where the users service answers (public keys, service tokens).
    fn users_peer(&self, tls: &ServiceTls) -> PeerTarget {
        self.peer(&self.users_url, "--users-url", self.users_port, tls)
    }

    /// A peer: as configured (named by its flag in messages), else its
    /// port on --host (over https when the shop serves TLS); called with
    /// the service's client TLS.
    fn peer(
        &self,
        configured: &Option<PeerTarget>,
        flag: &'static str,
        port: u16,
        tls: &ServiceTls,
    ) -> PeerTarget {
        let target = match configured {
            Some(target) => target.clone().from_origin(flag),
            None if self.serves_tls() => PeerTarget::https(SocketAddr::new(self.host, port)),
            None => PeerTarget::addr(SocketAddr::new(self.host, port)),
        };
        target.with_tls(tls.client.clone())
    }
}

/// A service's URL for the browser: as given, else the peer's first URL (a
/// `dns:///` target is no URL a browser can use).
fn public_url(given: &Option<String>, peer: &PeerTarget, service: &str) -> anyhow::Result<String> {
    given.clone().or_else(|| peer.first_url()).ok_or_else(|| {
        anyhow::anyhow!(
            "the gateway tells browsers where the {service} service is: give \
             --public-{service}-url (the {peer} a browser cannot call)"
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shop: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The process's metrics, before anything takes a metric handle (the
    // trace exporter counts the spans it drops).
    let metrics = Metrics::install();
    // Traces are exported on the runtime: set up inside it.
    let logs = {
        let _inside = runtime.enter();
        telemetry::init_tracing(&cli.shop.logs, &cli.shop.traces, &metrics)
    };
    let _logs = match logs {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("shop: traces: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, metrics)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `shop migrate`: each service's migrations, applied under its lock.
async fn migrate(
    shop: &ShopArgs,
    services: Vec<StoredService>,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    use shop_migrations as m;
    let services = if services.is_empty() {
        StoredService::ALL.to_vec()
    } else {
        services
    };
    if database_url.is_some() && services.len() > 1 {
        anyhow::bail!(
            "DATABASE_URL (--database-url) names one database: migrate one service with it, \
             or give each its own --<service>-database-url"
        );
    }
    for service in services {
        let name = service.name();
        let own = match service {
            StoredService::Users => shop.users_database_url.as_deref(),
            StoredService::Catalog => shop.catalog_database_url.as_deref(),
            StoredService::Orders => shop.orders_database_url.as_deref(),
            StoredService::Payments => shop.payments_database_url.as_deref(),
        };
        let url = shop.database_url(own, database_url.as_deref(), name);
        let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("{name} database {url}: {e}");
        let db = db::connect(name, url.expose())
            .await
            .map_err(|e| failed(&e))?;
        let applied = match service {
            StoredService::Users => m::up::<m::users::Migrator>(&db, name).await,
            StoredService::Catalog => m::up::<m::catalog::Migrator>(&db, name).await,
            StoredService::Orders => m::up::<m::orders::Migrator>(&db, name).await,
            StoredService::Payments => m::up::<m::payments::Migrator>(&db, name).await,
        }
        .map_err(|e| failed(&e))?;
        let latest = applied.latest.as_deref().unwrap_or("none");
        if !applied.newer.is_empty() {
            println!(
                "{name:<9} expanded by a newer release ({}): this one runs on it   db: {url}",
                applied.newer.join(", ")
            );
        } else if applied.now.is_empty() {
            println!("{name:<9} up to date at {latest}   db: {url}");
        } else {
            println!(
                "{name:<9} applied {}: {}; now at {latest}   db: {url}",
                applied.now.len(),
                applied.now.join(", ")
            );
        }
        let _ = db.close().await;
    }
    Ok(())
}

/// `shop certs`: a development CA (the one kept in `dir`, unless
/// `new_ca`) and the shop's certificates.
fn certs(dir: &std::path::Path, names: &[String], new_ca: bool) -> anyhow::Result<()> {
    let kept = if new_ca { None } else { DevCa::open(dir)? };
    let ca = match kept {
        Some(ca) => {
            println!("renewing under the CA kept in {}", dir.display());
            ca
        }
        None => DevCa::new("connect-shop development CA")?,
    };
    let written = ca
        .write_services(dir, &identity::service_names(), identity::NAMESPACE, names)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("wrote {} files to {}:", written.len(), dir.display());
    for file in &written {
        println!("  {}", file.display());
    }
    println!(
        "\nRun the shop on them:  shop --tls-dir {dir}\n\
         Call it:               curl --cacert {dir}/ca.pem https://localhost:8082/...",
        dir = dir.display()
    );
    Ok(())
}

async fn run(mut cli: Cli, metrics: Metrics) -> anyhow::Result<()> {
    if let Some(Command::Certs { dir, names, new_ca }) = &cli.command {
        return certs(dir, names, *new_ca);
    }
    // The browser app comes from the gateway: its origin, wherever the
    // gateway was moved to, may call the services (unless told otherwise).
    if cli.shop.http.cors_origins.is_empty() {
        cli.shop.http.cors_origins = HttpConfig::gateway_origins(
            cli.shop.host,
            cli.shop.gateway_port,
            cli.shop.serves_tls(),
        );
    }
    // Which services a client certificate may name: the shop's.
    cli.shop.http.tls.service_names = identity::service_names();
    if cli.shop.service_secret.is_none() {
        cli.shop.service_secret = Some(uuid::Uuid::new_v4().simple().to_string().into());
    }
    // Every service has its own database: a DATABASE_URL only makes sense
    // for `shop serve <service>` (and `shop migrate <service>`).
    let whole_shop = matches!(cli.command, None | Some(Command::Run));
    let (services, database_url) = match cli.command.unwrap_or(Command::Run) {
        Command::Migrate {
            services,
            database_url,
        } => return migrate(&cli.shop, services, database_url).await,
        Command::Certs { .. } => return Ok(()),
        Command::Run => (ServiceName::ALL.to_vec(), None),
        Command::Serve {
            service,
            database_url,
        } => (vec![service], database_url),
    };
    let shared_client_tls = cli.shop.client_tls.load()?;
    if cli.shop.http.tls.is_enabled() && shared_client_tls.is_none() {
        anyhow::bail!(
            "with --tls-cert the shop's services call each other over https: give --tls-ca \
             (the CA that signed their certificates), or run on `shop certs DIR` files with \
             --tls-dir DIR"
        );
    }
    let shutdown = Shutdown::on_signals(cli.shop.http.drain());
    let mut running = Vec::new();
    for service in services {
        let shop = &cli.shop;
        let db = database_url.as_deref();
        let tls = shop.tls(service, &shared_client_tls)?;
        let http = HttpConfig {
            tls: tls.server.clone(),
            ..shop.http.clone()
        };
        let launch = Launcher {
            addr: shop.addr(service),
            http: &http,
            shutdown: &shutdown,
            metrics: &metrics,
        };
        let mut started = match service {
            ServiceName::Users => {
                let users = shop.users(db, whole_shop)?;
                launch.start(users.database_url.to_string(), users).await?
            }
            ServiceName::Catalog => {
                let catalog = shop.catalog(db, &tls);
                launch
                    .start(catalog.database_url.to_string(), catalog)
                    .await?
            }
            ServiceName::Orders => {
                let orders = shop.orders(db, &tls);
                launch
                    .start(orders.database_url.to_string(), orders)
                    .await?
            }
            ServiceName::Payments => {
                let payments = shop.payments(db, &tls);
                launch
                    .start(payments.database_url.to_string(), payments)
                    .await?
            }
            ServiceName::Gateway => launch.start("none".to_owned(), shop.gateway(&tls)?).await?,
        };
        if service == ServiceName::Users && !shop.no_demo_data && !shop.demo_account(whole_shop) {
            started.seeded.push_str(
                " (only the whole shop on a loopback --host gets one; \
                 --demo-account asks for it)",
            );
        }
        running.push(started);
    }
    let metrics = match cli.shop.http.metrics_port {
        Some(port) => Some(serve_metrics(&cli.shop, port, &shutdown, metrics).await?),
        None => None,
    };
    print_banner(&running, metrics.as_ref(), &Calling::new(&cli.shop));
    for service in running {
        service.task.await??;
    }
    if let Some(metrics) = metrics {
        metrics.task.await??;
    }
    tracing::info!("shop stopped");
    Ok(())
}

/// `--metrics-port`: the process's metrics on a plain-HTTP listener of
/// their own (the services' ports no longer serve them).
async fn serve_metrics(
    shop: &ShopArgs,
    port: u16,
    shutdown: &Shutdown,
    metrics: Metrics,
) -> anyhow::Result<shop_kit::rpc::Listening> {
    let plain = HttpConfig {
        tls: ServerTlsFlags::default(),
        ..shop.http.clone()
    };
    let addr = SocketAddr::new(shop.host, port);
    shop_kit::rpc::start(
        addr,
        shop_kit::rpc::metrics_routes(metrics),
        shutdown.clone(),
        &plain,
    )
    .await
    .map_err(|e| anyhow::anyhow!("metrics on {addr}: {e}"))
}

/// Starts services the one way every service starts (`shop_kit::app`), on
/// the shop's host and ports, with its HTTP settings and shutdown signal.
struct Launcher<'a> {
    addr: SocketAddr,
    http: &'a HttpConfig,
    shutdown: &'a Shutdown,
    metrics: &'a Metrics,
}

impl Launcher<'_> {
    async fn start<S: app::Service>(
        &self,
        database: String,
        service: S,
    ) -> Result<Started, app::StartError> {
        let running = app::Launch::new(service)
            .addr(self.addr)
            .http(self.http.clone())
            .shutdown(self.shutdown.clone())
            .metrics(self.metrics.clone())
            .start()
            .await?;
        Ok(Started {
            name: running.name,
            addr: running.addr,
            database,
            seeded: running.seeded,
            task: running.task,
        })
    }
}

struct Started {
    name: &'static str,
    addr: SocketAddr,
    database: String,
    seeded: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How the banner's URLs and commands reach the services.
struct Calling {
    scheme: &'static str,
    /// curl's and buf curl's options for it (the CA to trust, or h2c).
    curl: String,
    buf: String,
}

impl Calling {
    fn new(shop: &ShopArgs) -> Self {
        let ca = match (&shop.tls_dir, &shop.client_tls.tls_ca) {
            (Some(dir), _) => Some(dir.join("ca.pem")),
            (None, Some(ca)) => Some(ca.clone()),
            (None, None) => None,
        };
        match ca.filter(|_| shop.serves_tls()) {
            Some(ca) => Self {
                scheme: "https",
                curl: format!("-s --cacert {}", ca.display()),
                buf: format!("--cacert {}", ca.display()),
            },
            None => Self {
                scheme: if shop.serves_tls() { "https" } else { "http" },
                curl: "-s".to_owned(),
                buf: "--http2-prior-knowledge".to_owned(),
            },
        }
    }

    /// A service's base URL (localhost, the name its certificate carries).
    fn url(&self, addr: SocketAddr) -> String {
        if self.scheme == "https" && addr.ip().is_loopback() {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("{}://{addr}", self.scheme)
        }
    }
}

fn print_banner(
    running: &[Started],
    metrics: Option<&shop_kit::rpc::Listening>,
    calling: &Calling,
) {
    println!("\nconnect-shop is running (Ctrl-C to stop)\n");
    for service in running {
        let url = calling.url(service.addr);
        println!(
            "  {:<9} {url}   Connect + gRPC + gRPC-Web   db: {}   seeded: {}",
            service.name, service.database, service.seeded
        );
        match metrics {
            None => println!("  {:<9} {url}/metrics  {url}/healthz  {url}/readyz", ""),
            Some(_) => println!("  {:<9} {url}/healthz  {url}/readyz", ""),
        }
    }
    if let Some(metrics) = metrics {
        println!("  {:<9} http://{}/metrics", "metrics", metrics.addr);
    }
    let curl = &calling.curl;
    if let Some(catalog) = running.iter().find(|s| s.name == "catalog") {
        let base = format!(
            "{}/shop.catalog.v1.CatalogService",
            calling.url(catalog.addr)
        );
        println!("\nTry:");
        println!(
            "  curl {curl} {base}/ListProducts -H 'Content-Type: application/json' -d '{{\"pageSize\": 3}}'"
        );
        println!(
            "  curl {curl} '{base}/GetProduct?connect=v1&encoding=json&message=%7B%22id%22%3A%22prod_mug%22%7D'"
        );
        println!(
            "  npx @bufbuild/buf curl {} --protocol grpc --reflect {base}/ListProducts",
            calling.buf
        );
    }
    if let Some(users) = running
        .iter()
        .find(|s| s.name == "users" && s.seeded.starts_with("demo account"))
    {
        println!(
            "  curl {curl} {}/shop.users.v1.UserService/LogIn -H 'Content-Type: application/json' -d '{{\"email\": \"{}\", \"password\": \"{}\"}}'",
            calling.url(users.addr),
            shop_users::DEMO_EMAIL,
            shop_users::DEMO_PASSWORD
        );
    }
    if let Some(gateway) = running.iter().find(|s| s.name == "gateway") {
        println!(
            "  curl {curl} {}/shop.bff.v1.MobileBffService/GetHome -H 'Content-Type: application/json' -d '{{}}'",
            calling.url(gateway.addr)
        );
    }
    println!("\n  The README walks from sign-up to a placed order with curl.");
    println!();
}
