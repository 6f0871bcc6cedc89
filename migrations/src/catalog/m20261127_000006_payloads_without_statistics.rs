//! No planner statistics on the payloads of reservations and the outbox
//! (see `crate::statistics`). Expand: nothing an earlier release reads changes.

use sea_orm_migration::prelude::*;

use crate::statistics::{self, OUTBOX_PAYLOADS};

/// Each table and its payload columns.
const PAYLOADS: &[(&str, &[&str])] = &[
    ("stock_reservations", &["items"]),
    ("catalog_outbox", OUTBOX_PAYLOADS),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(manager, PAYLOADS, false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        statistics::gather(manager, PAYLOADS, true).await
    }
}
