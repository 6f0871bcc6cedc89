//! Starting, serving alone and migrating a service of the registry
//! (`crate::registry`): what the launcher does alike for each.

use std::{future::Future, pin::Pin};

use shop_kit::app::{self, Basics};
use shop_migrations::{Applied, MigrateError, MigratorTrait};

use crate::launch::{Launcher, Started};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A service the launcher starts from its [`Basics`] alone.
#[derive(Debug)]
pub struct Added {
    /// Its name: in logs, flags, the banner, its database's file.
    pub name: &'static str,
    /// Its port unless `--NAME-port` says otherwise: its contract's
    /// (`kit.policy.v1.deployment`), as are its peers.
    pub port: u16,
    pub start: for<'a> fn(Launcher<'a>, Basics) -> Boxed<'a, Result<Started, app::StartError>>,
    pub migrate: for<'a> fn(
        &'a sea_orm::DatabaseConnection,
        &'static str,
    ) -> Boxed<'a, Result<Applied, MigrateError>>,
}

/// One line of the registry: a service's crate (whose `Config` is made
/// from [`Basics`] and whose `migration::Migrator` is its schema), its name
/// and the constant of its contract's port (`shop_proto::identity::ports`:
/// a service whose contract says no port does not compile). (Unused while
/// the registry is empty.)
#[allow(unused_macros)]
macro_rules! added {
    ($krate:ident, $name:literal, $port:ident) => {
        $crate::added::Added {
            name: $name,
            port: shop_proto::identity::ports::$port,
            start: $crate::added::start::<$krate::Config>,
            migrate: $crate::added::migrate::<$krate::migration::Migrator>,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use added;

/// How [`added!`] starts a service. (Unused while the registry is empty.)
#[allow(dead_code)]
pub fn start<S>(launch: Launcher<'_>, basics: Basics) -> Boxed<'_, Result<Started, app::StartError>>
where
    S: app::Service + From<Basics>,
{
    let database = basics.database_url.to_string();
    Box::pin(launch.start(database, S::from(basics)))
}

/// How [`added!`] migrates a service. (Unused while the registry is empty.)
#[allow(dead_code)]
pub fn migrate<'a, M: MigratorTrait + 'static>(
    db: &'a sea_orm::DatabaseConnection,
    name: &'static str,
) -> Boxed<'a, Result<Applied, MigrateError>> {
    Box::pin(shop_migrations::up::<M>(db, name))
}
