//! The outbox's claim column: replicas sharing this database relay each
//! polled event once (see `crate::events::add_outbox_claims`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::add_outbox_claims(manager, "catalog").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::events::drop_outbox_claims(manager, "catalog").await
    }
}
