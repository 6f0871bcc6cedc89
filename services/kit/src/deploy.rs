//! How the launcher starts any service from the command line, the shop's
//! first five and the ones `just new-service` adds alike: the service says
//! what flags of its own it takes and how its `Config` is made from them
//! and from what the launcher found for it ([`Given`]); the contract says
//! the rest (its port, database, events and peers:
//! `kit.policy.v1.deployment`), so the launcher keeps no code of its own
//! for any one service.

use std::collections::BTreeMap;

use secrecy::SecretString;
use shop_kit_client::{PeerTarget, Peers};

use crate::app::{Basics, BoxError, Service};

/// A service the launcher can start (see the module).
pub trait Deployable: Service {
    /// What `shop serve NAME --help` says the service is, in a line.
    const ABOUT: &'static str;
    /// The shop-wide settings it reads beyond its contract's: each is then
    /// a flag of `shop serve NAME`, and once of the whole shop.
    const SHARES: &'static [Shared] = &[];
    /// Whether it serves the web app: the services' CORS origins default
    /// to its origin.
    const SERVES_WEB_APP: bool = false;
    /// Its own flags (a clap `Args` struct; [`NoFlags`] when it has none),
    /// listed under its name in `shop --help` and by `shop serve NAME`.
    type Flags: clap::Args + clap::FromArgMatches + Send + 'static;

    /// Its `Config`, from its flags and what the launcher found.
    fn configure(flags: Self::Flags, given: Given) -> Result<Self, BoxError>;

    /// What a newcomer is offered to try it with once it runs, having
    /// seeded what `seeded` says (the banner prints each as a command).
    fn tries(seeded: &str) -> Vec<Try> {
        let _ = seeded;
        Vec::new()
    }

    /// The demo account it made, if it made one (`seeded` says what it
    /// seeded): the dashboard signs in with it.
    fn demo_account(seeded: &str) -> Option<DemoAccount> {
        let _ = seeded;
        None
    }
}

/// A call a newcomer is offered to try a running service with: a method
/// of its contract (`shop.catalog.v1.CatalogService/ListProducts`) and how
/// to call it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Try {
    /// Connect with a JSON body (`curl -d BODY`).
    Post { method: &'static str, body: String },
    /// Connect GET of an idempotent method, its message as JSON in the URL.
    Get {
        method: &'static str,
        message: &'static str,
    },
    /// gRPC, the method's schema read from the service's reflection
    /// (`buf curl --reflect`).
    Grpc { method: &'static str },
}

/// A demo account's credentials, known to whoever reads the banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoAccount {
    pub email: &'static str,
    pub password: &'static str,
}

/// A shop-wide setting a service reads (see [`Deployable::SHARES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// The secret the services share to get service tokens
    /// (`--service-secret`): one value for every service of one start.
    ServiceSecret,
    /// Whether empty databases get demo data (`--no-demo-data`).
    DemoData,
}

/// What the launcher found for a service: its contract's share
/// ([`Basics`]'s parts, each only if the contract declares it) and the
/// shop-wide settings.
#[derive(Clone, Debug)]
pub struct Given {
    /// Its database, when its contract says it keeps one.
    pub database_url: Option<shop_kit_db::DatabaseUrl>,
    /// NATS for events; in process when `None`.
    pub nats: Option<shop_kit_events::NatsServer>,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: shop_kit_auth::TokenKeys,
    /// The services its contract says it calls, where they are.
    pub peers: Peers,
    /// The services' shared secret (empty unless the service shares it).
    pub service_secret: SecretString,
    /// Whether empty databases get demo data.
    pub demo_data: bool,
    /// Whether this is the whole shop on a host only this machine reaches
    /// (what is safe to offer there, such as a known demo account, is not
    /// elsewhere).
    pub whole_shop_on_loopback: bool,
    /// Where every other service of the shop is, by name (for what tells a
    /// browser where to call them).
    pub places: BTreeMap<&'static str, PeerTarget>,
}

/// A service that declares a database but is given none.
#[derive(Debug, thiserror::Error)]
#[error("the launcher gave no database, though the contract declares one (database: true)")]
pub struct NoDatabase;

impl Given {
    /// What a service with a database, events, the users' keys and its
    /// peers needs, and nothing else.
    pub fn basics(self) -> Result<Basics, NoDatabase> {
        Ok(Basics {
            database_url: self.database_url.ok_or(NoDatabase)?,
            nats: self.nats,
            token_keys: self.token_keys,
            peers: self.peers,
        })
    }
}

/// The flags of a service that takes none of its own.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct NoFlags {}
