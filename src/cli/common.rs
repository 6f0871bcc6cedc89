//! Flags more than one service takes: written once here, flattened into
//! each service that needs them and once into the whole shop.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::Args;
use secrecy::SecretString;
use shop_kit::{client::PeerTarget, tls::ClientTls};

/// Each service's port unless told otherwise, as its contract says
/// (`kit.policy.v1.deployment`): for its `--<service>-port` flag and for
/// where `shop serve` looks for its peers.
pub use shop_proto::identity::ports as port;

/// Where this process finds its peers when no `--<peer>-url` says: their
/// ports on `--host`, over https when the shop serves TLS.
#[derive(Clone, Debug)]
pub struct Neighbourhood {
    pub host: IpAddr,
    pub https: bool,
    /// The client TLS a peer is called with.
    pub tls: Option<ClientTls>,
    pub users: u16,
    pub catalog: u16,
    pub orders: u16,
    pub payments: u16,
}

impl Neighbourhood {
    /// A peer: as configured (named by its flag in messages), else its
    /// port on --host.
    pub fn peer(
        &self,
        configured: &Option<PeerTarget>,
        flag: &'static str,
        port: u16,
    ) -> PeerTarget {
        match configured {
            Some(target) => target.clone().from_origin(flag).with_tls(self.tls.clone()),
            None => self.at(port),
        }
    }

    /// The service at `port` on --host.
    pub fn at(&self, port: u16) -> PeerTarget {
        let addr = SocketAddr::new(self.host, port);
        let target = if self.https {
            PeerTarget::https(addr)
        } else {
            PeerTarget::addr(addr)
        };
        target.with_tls(self.tls.clone())
    }
}

/// Where a service listens unless told otherwise, as its contract says.
pub fn default_port(service: &str) -> Option<u16> {
    shop_proto::identity::deployed(service).map(|deployed| deployed.port)
}

#[rustfmt::skip] // rustfmt indents the attribute further at every run
macro_rules! peer_flag {
    ($name:ident, $flag:literal, $env:literal, $port:path, $service:ident, $what:literal) => {
        #[derive(Args, Clone, Debug, Default)]
        pub struct $name {
            #[arg(
                id = $flag,
                long = $flag,
                env = $env,
                value_name = "URL",
                help = peer_help($what, stringify!($service), $port)
            )]
            pub url: Option<PeerTarget>,
        }

        impl $name {
            /// The peer as configured, else its port in `around`.
            pub fn target(&self, around: &Neighbourhood) -> PeerTarget {
                around.peer(&self.url, concat!("--", $flag), around.$service)
            }
        }
    };
}

/// A peer flag's help, with the port it defaults to.
fn peer_help(what: &str, service: &str, port: u16) -> String {
    format!(
        "Where this service reaches {what}: a URL, a comma-separated list of URLs \
         (replicas), or dns:///host:port, looked up again every few seconds (default: \
         the whole shop's --{service}-port on --host; a service alone finds it at port \
         {port} there)"
    )
}

peer_flag!(
    UsersPeer,
    "users-url",
    "USERS_URL",
    port::USERS,
    users,
    "the users service (its public keys, service tokens)"
);
peer_flag!(
    CatalogPeer,
    "catalog-url",
    "CATALOG_URL",
    port::CATALOG,
    catalog,
    "the catalog"
);
peer_flag!(
    OrdersPeer,
    "orders-url",
    "ORDERS_URL",
    port::ORDERS,
    orders,
    "the orders service"
);
peer_flag!(
    PaymentsPeer,
    "payments-url",
    "PAYMENTS_URL",
    port::PAYMENTS,
    payments,
    "the payments service"
);

/// The NATS server events go to (catalog, orders, payments).
#[derive(Args, Clone, Debug, Default)]
pub struct Events {
    /// NATS server for the services' events (JetStream), e.g.
    /// nats://localhost:4222, or tls://nats:4222 for TLS; a token
    /// (nats://TOKEN@host:4222) or a user and password
    /// (nats://USER:PASSWORD@host:4222) in it authenticate, as in every
    /// NATS client (default: events stay in this process).
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// The CA certificates (PEM) NATS's TLS certificate is checked against
    /// (default: the system's).
    #[arg(long, env = "NATS_CA", requires = "nats_url")]
    pub nats_ca: Option<PathBuf>,
}

impl Events {
    pub fn nats(&self) -> Option<shop_kit::events::NatsServer> {
        let url = self.nats_url.as_ref()?;
        Some(shop_kit::events::NatsServer::new(url).with_ca(self.nats_ca.clone()))
    }
}

/// The secret the users service checks and orders shows for service
/// tokens.
#[derive(Args, Clone, Debug, Default)]
pub struct ServiceSecret {
    /// The secret the shop's services share to get service tokens from the
    /// users service (default: a random one per start, which only works
    /// when both run in this process).
    #[arg(
        id = "service_secret",
        long = "service-secret",
        value_name = "SECRET",
        env = "SHOP_SERVICE_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<SecretString>,
}

/// Whether empty databases get demo data (users, catalog).
#[derive(Args, Clone, Debug, Default)]
pub struct DemoData {
    /// Do not seed demo data into empty databases.
    #[arg(
        id = "no_demo_data",
        long = "no-demo-data",
        env = "SHOP_NO_DEMO_DATA",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub off: bool,
}

/// A service's database flag, its variable, and the rule reading them.
#[rustfmt::skip] // as peer_flag
macro_rules! database_flag {
    ($name:ident, $flag:literal, $env:literal, $service:literal) => {
        #[derive(Args, Clone, Debug, Default)]
        pub struct $name {
            #[arg(
                id = $flag,
                long = $flag,
                env = $env,
                value_name = "URL",
                help = database_help($service, $env)
            )]
            pub url: Option<String>,
        }

        impl $name {
            /// The database: see [`database_url`].
            pub fn resolve(&self, data_dir: &std::path::Path, alone: bool) -> shop_kit::db::DatabaseUrl {
                database_url(self.url.as_deref(), data_dir, $service, alone)
            }
        }
    };
}

database_flag!(
    UsersDatabase,
    "users-database-url",
    "USERS_DATABASE_URL",
    "users"
);
database_flag!(
    CatalogDatabase,
    "catalog-database-url",
    "CATALOG_DATABASE_URL",
    "catalog"
);
database_flag!(
    OrdersDatabase,
    "orders-database-url",
    "ORDERS_DATABASE_URL",
    "orders"
);
database_flag!(
    PaymentsDatabase,
    "payments-database-url",
    "PAYMENTS_DATABASE_URL",
    "payments"
);

/// A database flag's help: what it takes, and which setting wins.
pub fn database_help(service: &str, env: &str) -> String {
    format!(
        "Database of the {service} service, e.g. postgres://shop:secret@db/{service}. The first \
         given wins: this flag, {env}, DATABASE_URL (only when this service runs or migrates \
         alone), its SQLite file under --data-dir."
    )
}

/// The one rule for a service's database, most specific first: its own
/// flag, else its own variable (`own`, as clap read them), else
/// DATABASE_URL when this service is the only one (`shop serve`, `shop
/// migrate` of one), else its SQLite file under --data-dir.
pub fn database_url(
    own: Option<&str>,
    data_dir: &std::path::Path,
    service: &str,
    alone: bool,
) -> shop_kit::db::DatabaseUrl {
    let generic = || {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| alone && !url.trim().is_empty())
    };
    own.map(str::to_owned)
        .or_else(generic)
        .unwrap_or_else(|| shop_kit::db::sqlite_url(data_dir, service))
        .into()
}
