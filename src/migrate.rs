//! `shop migrate`: each service's migrations, applied under its lock.

use shop_kit::db;
use shop_migrations as m;

use crate::cli::{Migrate, StoredService};

pub async fn run(migrate: &Migrate, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let services = if migrate.services.is_empty() {
        StoredService::ALL.to_vec()
    } else {
        migrate.services.clone()
    };
    // DATABASE_URL names one database: only for one service.
    let alone = services.len() == 1;
    if !alone && std::env::var_os("DATABASE_URL").is_some() {
        anyhow::bail!(
            "DATABASE_URL names one database: migrate one service with it, or give each \
             its own --<service>-database-url (<SERVICE>_DATABASE_URL)"
        );
    }
    for service in services {
        let name = service.name();
        let url = match service {
            StoredService::Users => migrate.users.resolve(data_dir, alone),
            StoredService::Catalog => migrate.catalog.resolve(data_dir, alone),
            StoredService::Orders => migrate.orders.resolve(data_dir, alone),
            StoredService::Payments => migrate.payments.resolve(data_dir, alone),
        };
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
