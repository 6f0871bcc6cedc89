use sea_orm_migration::prelude::*;

use crate::events;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Payments publishes payment.captured and payment.refunded.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::create_outbox(manager, "payments").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::drop_outbox(manager, "payments").await
    }
}
