//! The catalog's schema.

use sea_orm_migration::prelude::*;

// A module per file of src/catalog/, and `in_order()`: a new migration is a
// new file there (build.rs).
include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// Applies the catalog's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        in_order()
    }

    // Each service keeps its own history table, so two services may even
    // share one PostgreSQL database without touching each other's tables.
    fn migration_table_name() -> DynIden {
        "catalog_migrations".into_iden()
    }
}
