//! sea-orm migrations, one migrator per service: each service owns its
//! schema and its own database, and applies its migrator at start (or
//! `shop migrate` does, as a Kubernetes Job would) through [`up`]: one
//! process at a time.
//!
//! Migrations expand, then contract (docs/migrations.md): a migration only
//! adds what the release before it can ignore (a table, a nullable column,
//! an index), so that release still runs on the migrated schema and a
//! rollback needs no restore; one that removes or changes what the release
//! before it reads is a *contract* migration, says so in its name
//! ([`CONTRACT`]), and ships once no running release reads it. A release
//! runs on a database a newer one expanded, and refuses one a newer one
//! contracted.

pub mod catalog;
pub mod events;
mod json_lines;
mod lock;
pub mod orders;
pub mod payments;
mod statistics;
pub mod users;

pub use lock::MigrationLock;
use sea_orm_migration::sea_orm::{DatabaseConnection, DbErr};
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};

/// What marks a contract migration's name, e.g.
/// `m20270101_000007_contract_drop_orders_note`: the release before it
/// cannot run on the schema it leaves.
pub const CONTRACT: &str = "_contract_";

/// Why a service's schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database holds a contract migration this binary does not have:
    /// a newer version of the shop removed or changed what this one reads.
    #[error(
        "the {service} database was contracted by a newer version of the shop \
         ({} unknown to this one, removing what it reads): run that version \
         (or restore a backup taken before it); not starting",
        unknown.join(", ")
    )]
    Newer {
        service: &'static str,
        unknown: Vec<String>,
    },
    #[error("waiting for the {service} migrations lock: {reason}")]
    Lock {
        service: &'static str,
        reason: String,
    },
    #[error("migrating the {service} database: {source}")]
    Database {
        service: &'static str,
        source: DbErr,
    },
}

/// What [`up`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The migrations it applied, in order (none if it was up to date).
    pub now: Vec<String>,
    /// The newest migration the database has now.
    pub latest: Option<String>,
    /// Expand migrations a newer release applied, which this one does not
    /// know and runs on anyway (a rollback).
    pub newer: Vec<String>,
}

/// Brings `service`'s database up to date with `M`'s migrations, holding
/// the service's migrations lock meanwhile (a PostgreSQL advisory lock;
/// for SQLite, a lock on a file beside the database), so replicas started
/// at the same moment apply each migration once. Runs on a database a
/// newer release expanded (saying so), and refuses one it contracted.
pub async fn up<M: MigratorTrait>(
    db: &DatabaseConnection,
    service: &'static str,
) -> Result<Applied, MigrateError> {
    let (applied, lock) = up_holding::<M>(db, service).await?;
    lock.release().await;
    Ok(applied)
}

/// As [`up`], but hands back the migrations lock still held: the service
/// makes its first rows under it (a signing key, ...), so replicas started
/// together make them once, then releases it.
pub async fn up_holding<M: MigratorTrait>(
    db: &DatabaseConnection,
    service: &'static str,
) -> Result<(Applied, MigrationLock), MigrateError> {
    let failed = |source| MigrateError::Database { service, source };
    let held = MigrationLock::take(db, service).await?;
    let migrated = async {
        let known: Vec<String> = M::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let applied: Vec<String> = M::get_migration_models(db)
            .await
            .map_err(failed)?
            .into_iter()
            .map(|applied| applied.version)
            .collect();
        let unknown: Vec<String> = applied
            .iter()
            .filter(|version| !known.contains(version))
            .cloned()
            .collect();
        if unknown.iter().any(|name| name.contains(CONTRACT)) {
            return Err(MigrateError::Newer { service, unknown });
        }
        if !unknown.is_empty() {
            tracing::warn!(
                service,
                newer = unknown.join(", "),
                "the database was expanded by a newer release: running on it (a rollback)"
            );
        }
        // (Not sea-orm's pending list, nor its `up` with nothing to apply:
        // both refuse applied migrations they have no file for.)
        let pending: Vec<String> = known
            .iter()
            .filter(|version| !applied.contains(version))
            .cloned()
            .collect();
        if !pending.is_empty() {
            M::up(db, None).await.map_err(failed)?;
            tracing::info!(
                service,
                latest = known.last().map(String::as_str).unwrap_or_default(),
                "{} migration{} applied",
                pending.len(),
                if pending.len() == 1 { "" } else { "s" }
            );
        }
        Ok(Applied {
            now: pending,
            latest: unknown.last().or(known.last()).cloned(),
            newer: unknown,
        })
    }
    .await;
    match migrated {
        Ok(applied) => Ok((applied, held)),
        Err(error) => {
            held.release().await;
            Err(error)
        }
    }
}
