//! sea-orm migrations, one migrator per service: each service owns its
//! schema and its own database, and applies its migrator at start (or
//! `shop migrate` does, as a Kubernetes Job would) through [`up`]: one
//! process at a time, and never on a database a newer version migrated.

pub mod catalog;
pub mod events;
mod json_lines;
mod lock;
pub mod orders;
pub mod payments;
pub mod users;

use sea_orm_migration::sea_orm::{DatabaseConnection, DbErr};
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};

/// Why a service's schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database holds migrations this binary does not have: a newer
    /// version of the shop migrated it, and this one would misread it.
    #[error(
        "the {service} database was migrated by a newer version of the shop \
         ({} unknown to this one): run that version (or restore a backup \
         taken before it); not starting",
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
}

/// Brings `service`'s database up to date with `M`'s migrations, holding
/// the service's migrations lock meanwhile (a PostgreSQL advisory lock;
/// for SQLite, a lock on a file beside the database), so replicas started
/// at the same moment apply each migration once. Refuses a database that
/// holds migrations `M` does not know.
pub async fn up<M: MigratorTrait>(
    db: &DatabaseConnection,
    service: &'static str,
) -> Result<Applied, MigrateError> {
    let failed = |source| MigrateError::Database { service, source };
    let held = lock::Held::take(db, service).await?;
    let migrated = async {
        let known: Vec<String> = M::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let unknown: Vec<String> = M::get_migration_models(db)
            .await
            .map_err(failed)?
            .into_iter()
            .map(|applied| applied.version)
            .filter(|version| !known.contains(version))
            .collect();
        if !unknown.is_empty() {
            return Err(MigrateError::Newer { service, unknown });
        }
        let pending: Vec<String> = M::get_pending_migrations(db)
            .await
            .map_err(failed)?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        M::up(db, None).await.map_err(failed)?;
        Ok(Applied {
            now: pending,
            latest: known.last().cloned(),
        })
    }
    .await;
    held.release().await;
    migrated
}
