use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    UserId,
    ChargedBy,
    IdempotencyKey,
}

/// Who made each charge: the customer themself, or one of the shop's
/// services on the customer's behalf (the orders saga). Only a service may
/// undo a service's charge, and the two keep their idempotency keys apart,
/// so a customer can neither refund nor void the charge for an order.
/// Charges made before this migration are taken as the shop's: the safe side.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .add_column(
                        ColumnDef::new(Payments::ChargedBy)
                            .string()
                            .not_null()
                            .default("service"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("payments_idempotency")
                    .table(Payments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_idempotency_by_payer")
                    .table(Payments::Table)
                    .col(Payments::UserId)
                    .col(Payments::ChargedBy)
                    .col(Payments::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("payments_idempotency_by_payer")
                    .table(Payments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_idempotency")
                    .table(Payments::Table)
                    .col(Payments::UserId)
                    .col(Payments::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .drop_column(Payments::ChargedBy)
                    .to_owned(),
            )
            .await
    }
}
