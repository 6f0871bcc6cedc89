//! `shop migrate`: each service's migrations, applied under its lock.

use shop_kit::db;
use shop_migrations as m;

use crate::{
    added::Added,
    cli::{Migrate, StoredService, added::AddedArgs, common::database_url},
};

/// A service with a database: one of the first, or of the registry.
#[derive(Clone, Copy)]
enum Stored {
    First(StoredService),
    Added(&'static Added),
}

pub async fn run(
    migrate: &Migrate,
    added: &AddedArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let names = if migrate.services.is_empty() {
        StoredService::all_names()
    } else {
        migrate.services.iter().map(String::as_str).collect()
    };
    let services: Vec<Stored> = names
        .iter()
        .filter_map(|name| {
            StoredService::named(name)
                .map(Stored::First)
                .or_else(|| crate::registry::named(name).map(Stored::Added))
        })
        .collect();
    // DATABASE_URL names one database: only for one service.
    let alone = services.len() == 1;
    if !alone && std::env::var_os("DATABASE_URL").is_some() {
        anyhow::bail!(
            "DATABASE_URL names one database: migrate one service with it, or give each \
             its own --<service>-database-url (<SERVICE>_DATABASE_URL)"
        );
    }
    for service in services {
        let (name, url) = match service {
            Stored::First(first) => (
                first.name(),
                match first {
                    StoredService::Users => migrate.users.resolve(data_dir, alone),
                    StoredService::Catalog => migrate.catalog.resolve(data_dir, alone),
                    StoredService::Orders => migrate.orders.resolve(data_dir, alone),
                    StoredService::Payments => migrate.payments.resolve(data_dir, alone),
                },
            ),
            Stored::Added(service) => {
                let given = added
                    .flags
                    .iter()
                    .find(|flags| std::ptr::eq(flags.added, service))
                    .and_then(|flags| flags.database.as_deref());
                (
                    service.name,
                    database_url(given, data_dir, service.name, alone),
                )
            }
        };
        let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("{name} database {url}: {e}");
        let db = db::connect(name, url.expose())
            .await
            .map_err(|e| failed(&e))?;
        let applied = match service {
            Stored::First(StoredService::Users) => m::up::<m::users::Migrator>(&db, name).await,
            Stored::First(StoredService::Catalog) => m::up::<m::catalog::Migrator>(&db, name).await,
            Stored::First(StoredService::Orders) => m::up::<m::orders::Migrator>(&db, name).await,
            Stored::First(StoredService::Payments) => {
                m::up::<m::payments::Migrator>(&db, name).await
            }
            Stored::Added(service) => (service.migrate)(&db, service.name).await,
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
