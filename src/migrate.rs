//! `shop migrate`: each service's migrations, applied under its lock.

use shop_kit::db;

use crate::cli::{Migrate, common::database_url, services::ServicesArgs};

pub async fn run(
    migrate: &Migrate,
    args: &ServicesArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    // Every service with a database, or those named.
    let services: Vec<_> = args
        .services
        .iter()
        .filter(|flags| {
            migrate.services.is_empty()
                || migrate
                    .services
                    .iter()
                    .any(|name| name == flags.service.name())
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
    for flags in services {
        let name = flags.service.name();
        let Some(apply) = flags.service.migrate else {
            continue;
        };
        let url = database_url(flags.database.as_deref(), data_dir, name, alone);
        let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("{name} database {url}: {e}");
        let db = db::connect(name, url.expose())
            .await
            .map_err(|e| failed(&e))?;
        let applied = apply(&db, name).await.map_err(|e| failed(&e))?;
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
