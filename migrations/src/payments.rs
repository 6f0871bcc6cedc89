//! The payments service's schema.

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_payments;
mod m20261121_000002_voids_and_events;
mod m20261122_000003_charged_by;
mod m20261123_000004_outbox_claims;
mod m20261127_000005_payloads_without_statistics;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_payments::Migration),
            Box::new(m20261121_000002_voids_and_events::Migration),
            Box::new(m20261122_000003_charged_by::Migration),
            Box::new(m20261123_000004_outbox_claims::Migration),
            Box::new(m20261127_000005_payloads_without_statistics::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "payments_migrations".into_iden()
    }
}
