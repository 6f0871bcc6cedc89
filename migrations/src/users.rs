//! The users service's schema: accounts, refresh tokens, signing keys.

use sea_orm_migration::prelude::*;

// A module per file of src/users/, and `in_order()`: a new migration is a
// new file there (build.rs).
include!(concat!(env!("OUT_DIR"), "/users.rs"));

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        in_order()
    }

    fn migration_table_name() -> DynIden {
        "users_migrations".into_iden()
    }
}
