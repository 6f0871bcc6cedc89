//! A service as the launcher knows it: its contract's description
//! (`kit.policy.v1.deployment`: port, database, events, peers) and what its
//! crate says of itself (`shop_kit::deploy::Deployable`: its flags, the
//! shop-wide settings it reads, how its `Config` is made), with how it is
//! started and migrated. Alike for every service: the launcher keeps no
//! code of its own for any one.

use std::{future::Future, pin::Pin};

use clap::{ArgMatches, Command, FromArgMatches};
use shop_kit::{
    app::{self, BoxError},
    deploy::{DemoAccount, Deployable, Given, Shared, Try},
};
use shop_migrations::{Applied, MigrateError, MigratorTrait};
use shop_proto::identity::Deployed;

use crate::launch::{Launcher, Started};

pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// How a service starts, once its `Config` is made.
pub type Starting<'a> = Boxed<'a, Result<Started, app::StartError>>;

/// A service configured, to be started.
pub type Configured = Box<dyn for<'a> FnOnce(Launcher<'a>) -> Starting<'a> + Send>;

/// How a service's schema is applied.
pub type Migrating<'a> = Boxed<'a, Result<Applied, MigrateError>>;

/// Why a service's `Config` could not be made from its flags.
#[derive(Debug, thiserror::Error)]
#[error("{service}")]
pub struct ConfigureError {
    pub service: &'static str,
    #[source]
    pub source: BoxError,
}

/// One service of the registry (see the module).
pub struct Registered {
    /// Its contract's description, its name included.
    pub deployed: &'static Deployed,
    /// What `shop serve NAME --help` says it is.
    pub about: &'static str,
    /// The shop-wide settings it reads.
    pub shares: &'static [Shared],
    /// Whether it serves the web app (the services' CORS origins default
    /// to its origin).
    pub serves_web_app: bool,
    /// Its own flags, added to a command.
    pub flags: fn(Command) -> Command,
    /// What a newcomer is offered to try it with, once it seeded what the
    /// text says.
    pub tries: fn(&str) -> Vec<Try>,
    /// The demo account it made, by what it says it seeded.
    pub demo_account: fn(&str) -> Option<DemoAccount>,
    /// Its `Config`, made from its flags (read from the matches) and what
    /// the launcher found, ready to start.
    pub configure: fn(&ArgMatches, Given) -> Result<Configured, ConfigureError>,
    /// Its schema, applied (a service whose contract declares a database).
    pub migrate: Option<for<'a> fn(&'a sea_orm::DatabaseConnection, &'static str) -> Migrating<'a>>,
}

impl Registered {
    pub fn name(&self) -> &'static str {
        self.deployed.name
    }

    pub fn shares(&self, setting: Shared) -> bool {
        self.shares.contains(&setting)
    }
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("deployed", self.deployed)
            .finish_non_exhaustive()
    }
}

/// One line of the registry: a service's crate (whose `Config` is
/// [`Deployable`]) and the constant of its contract's description
/// (`shop_proto::identity::described`: a service the contract does not
/// describe does not compile); `migrated` when it keeps a database, whose
/// schema is its crate's `migration::Migrator`.
macro_rules! service {
    ($krate:ident, $described:ident) => {
        $crate::registered::service!(@ $krate, $described, None)
    };
    ($krate:ident, $described:ident, migrated) => {
        $crate::registered::service!(
            @ $krate,
            $described,
            Some($crate::registered::migrate::<$krate::migration::Migrator>)
        )
    };
    (@ $krate:ident, $described:ident, $migrate:expr) => {
        $crate::registered::Registered {
            deployed: shop_proto::identity::described::$described,
            about: <$krate::Config as shop_kit::deploy::Deployable>::ABOUT,
            shares: <$krate::Config as shop_kit::deploy::Deployable>::SHARES,
            serves_web_app: <$krate::Config as shop_kit::deploy::Deployable>::SERVES_WEB_APP,
            flags: <<$krate::Config as shop_kit::deploy::Deployable>::Flags as clap::Args>::augment_args,
            tries: <$krate::Config as shop_kit::deploy::Deployable>::tries,
            demo_account: <$krate::Config as shop_kit::deploy::Deployable>::demo_account,
            configure: $crate::registered::configure::<$krate::Config>,
            migrate: $migrate,
        }
    };
}
pub(crate) use service;

/// How [`service!`] configures a service: before anything binds, so
/// that a flag that does not hold stops the start first.
pub fn configure<S: Deployable>(
    matches: &ArgMatches,
    given: Given,
) -> Result<Configured, ConfigureError> {
    let failed = |source: BoxError| ConfigureError {
        service: S::NAME,
        source,
    };
    let flags = S::Flags::from_arg_matches(matches).map_err(|e| failed(e.into()))?;
    let database = given
        .database_url
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let config = S::configure(flags, given).map_err(failed)?;
    Ok(Box::new(move |launch: Launcher<'_>| -> Starting<'_> {
        Box::pin(launch.start(database, config))
    }))
}

/// How [`service!`] migrates a service.
pub fn migrate<'a, M: MigratorTrait + 'static>(
    db: &'a sea_orm::DatabaseConnection,
    name: &'static str,
) -> Migrating<'a> {
    Box::pin(shop_migrations::up::<M>(db, name))
}
