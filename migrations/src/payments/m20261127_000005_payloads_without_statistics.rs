//! No planner statistics on the payloads of the payments' outbox
//! (see `crate::statistics`). Expand: nothing an earlier release reads changes.

use sea_orm_migration::prelude::*;

use crate::statistics::{self, OUTBOX_PAYLOADS};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(manager, "payments_outbox", OUTBOX_PAYLOADS, false).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(manager, "payments_outbox", OUTBOX_PAYLOADS, true).await?;
        Ok(())
    }
}
