//! The catalog's schema.

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_products;
mod m20261121_000002_create_reservations;
mod m20261121_000003_stock_events;
mod m20261123_000004_reservation_items_in_row;
mod m20261123_000005_outbox_claims;
mod m20261127_000006_payloads_without_statistics;

/// Applies the catalog's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_products::Migration),
            Box::new(m20261121_000002_create_reservations::Migration),
            Box::new(m20261121_000003_stock_events::Migration),
            Box::new(m20261123_000004_reservation_items_in_row::Migration),
            Box::new(m20261123_000005_outbox_claims::Migration),
            Box::new(m20261127_000006_payloads_without_statistics::Migration),
        ]
    }

    // Each service keeps its own history table, so two services may even
    // share one PostgreSQL database without touching each other's tables.
    fn migration_table_name() -> DynIden {
        "catalog_migrations".into_iden()
    }
}
