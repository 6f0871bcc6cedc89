//! Flags more than one service takes: written once here, given to each
//! service that reads them and once to the whole shop; and where a service
//! finds its peers and its database.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::Args;
use secrecy::SecretString;
use shop_kit::{client::PeerTarget, tls::ClientTls};

/// Where this process finds its peers when no `--<peer>-url` says: their
/// ports on `--host`, over https when the shop serves TLS.
#[derive(Clone, Debug)]
pub struct Neighbourhood {
    pub host: IpAddr,
    pub https: bool,
    /// The client TLS a peer is called with.
    pub tls: Option<ClientTls>,
}

impl Neighbourhood {
    /// A peer: as configured (named by its flag in messages), else its
    /// port on --host.
    pub fn peer(
        &self,
        configured: Option<&PeerTarget>,
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

/// The NATS server events go to (each service whose contract declares
/// events).
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
