use sea_orm_migration::prelude::*;

use crate::events;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Products {
    Table,
    StockVersion,
}

/// The catalog publishes stock changes (stock.changed), each with the
/// product's stock version, which every change bumps.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .add_column(
                        ColumnDef::new(Products::StockVersion)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        events::create_outbox(manager, "catalog").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::drop_outbox(manager, "catalog").await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .drop_column(Products::StockVersion)
                    .to_owned(),
            )
            .await
    }
}
