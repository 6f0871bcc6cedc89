use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    UserId,
    IdempotencyKey,
    Reference,
    AmountMinorUnits,
    CurrencyCode,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Payments::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Payments::UserId).string().not_null())
                    .col(ColumnDef::new(Payments::IdempotencyKey).string().not_null())
                    .col(ColumnDef::new(Payments::Reference).string().not_null())
                    .col(
                        ColumnDef::new(Payments::AmountMinorUnits)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Payments::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    // captured | refunded
                    .col(ColumnDef::new(Payments::Status).string().not_null())
                    .col(ColumnDef::new(Payments::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Payments::UpdatedAt).big_integer().not_null())
                    .check(Expr::col(Payments::AmountMinorUnits).gt(0))
                    .to_owned(),
            )
            .await?;
        // One charge per caller and idempotency key, whatever races.
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await
    }
}
