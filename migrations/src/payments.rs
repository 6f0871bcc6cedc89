//! The payments service's schema.

use sea_orm_migration::prelude::*;

// A module per file of src/payments/, and `in_order()`: a new migration is a
// new file there (build.rs).
include!(concat!(env!("OUT_DIR"), "/payments.rs"));

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        in_order()
    }

    fn migration_table_name() -> DynIden {
        "payments_migrations".into_iden()
    }
}
