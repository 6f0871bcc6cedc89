//! The orders service's schema.

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_orders;
mod m20261121_000002_create_sagas_and_events;
mod m20261123_000003_one_row_per_order;
mod m20261123_000005_cancel_reasons;
mod m20261123_000006_outbox_claims;
mod m20261127_000007_payloads_without_statistics;
mod m20261127_000008_saga_steps_in_place;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_orders::Migration),
            Box::new(m20261121_000002_create_sagas_and_events::Migration),
            Box::new(m20261123_000003_one_row_per_order::Migration),
            Box::new(m20261123_000005_cancel_reasons::Migration),
            Box::new(m20261123_000006_outbox_claims::Migration),
            Box::new(m20261127_000007_payloads_without_statistics::Migration),
            Box::new(m20261127_000008_saga_steps_in_place::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "orders_migrations".into_iden()
    }
}
