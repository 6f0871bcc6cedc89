//! The users service's schema: accounts, refresh tokens, signing keys.

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_users;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261121_000001_create_users::Migration)]
    }

    fn migration_table_name() -> DynIden {
        "users_migrations".into_iden()
    }
}
