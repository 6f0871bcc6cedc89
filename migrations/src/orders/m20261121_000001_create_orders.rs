use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    IdempotencyKey,
    Status,
    CancelReason,
    TotalMinorUnits,
    CurrencyCode,
    PaymentToken,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    OrderId,
    Line,
    ProductId,
    ProductName,
    Quantity,
    UnitPriceMinorUnits,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Orders::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Orders::UserId).string().not_null())
                    .col(ColumnDef::new(Orders::IdempotencyKey).string().not_null())
                    // pending | confirmed | cancelled
                    .col(ColumnDef::new(Orders::Status).string().not_null())
                    .col(ColumnDef::new(Orders::CancelReason).string().not_null())
                    .col(
                        ColumnDef::new(Orders::TotalMinorUnits)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Orders::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Orders::PaymentToken).string().not_null())
                    .col(ColumnDef::new(Orders::CreatedAtMs).big_integer().not_null())
                    .col(ColumnDef::new(Orders::UpdatedAtMs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // One order per customer and idempotency key, whatever races.
        manager
            .create_index(
                Index::create()
                    .name("orders_idempotency")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A customer's orders, newest first.
        manager
            .create_index(
                Index::create()
                    .name("orders_by_user_newest")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::CreatedAtMs)
                    .col(Orders::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderItems::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(OrderItems::OrderId).string().not_null())
                    .col(ColumnDef::new(OrderItems::Line).integer().not_null())
                    .col(ColumnDef::new(OrderItems::ProductId).string().not_null())
                    .col(ColumnDef::new(OrderItems::ProductName).string().not_null())
                    .col(ColumnDef::new(OrderItems::Quantity).integer().not_null())
                    .col(
                        ColumnDef::new(OrderItems::UnitPriceMinorUnits)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(OrderItems::OrderId)
                            .col(OrderItems::Line),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderItems::Table, OrderItems::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OrderItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}
