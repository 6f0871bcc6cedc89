//! No planner statistics on the payloads of orders, the history and the outbox
//! (see `crate::statistics`). Expand: nothing an earlier release reads changes.

use sea_orm_migration::prelude::*;

use crate::statistics::{self, OUTBOX_PAYLOADS};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(
            manager,
            "orders",
            &[
                "lines",
                "saga_traceparent",
                "cancel_message",
                "saga_cancel_message",
            ],
            false,
        )
        .await?;
        statistics::gather(
            manager,
            "order_history",
            &["items", "cancel_message"],
            false,
        )
        .await?;
        statistics::gather(manager, "orders_outbox", OUTBOX_PAYLOADS, false).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(
            manager,
            "orders",
            &[
                "lines",
                "saga_traceparent",
                "cancel_message",
                "saga_cancel_message",
            ],
            true,
        )
        .await?;
        statistics::gather(manager, "order_history", &["items", "cancel_message"], true).await?;
        statistics::gather(manager, "orders_outbox", OUTBOX_PAYLOADS, true).await?;
        Ok(())
    }
}
