use sea_orm_migration::prelude::*;

use crate::events;

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

#[derive(DeriveIden)]
enum PaymentsRebuilt {
    Table,
}

const COLUMNS: &str = "id, user_id, idempotency_key, reference, amount_minor_units, currency_code, status, created_at, updated_at";

/// A key may now be voided (refunded before any charge): its row has no
/// amount. SQLite cannot change a CHECK in place, so the table is rebuilt,
/// the same way on both engines. And payments publishes payment.captured and
/// payment.refunded through its outbox.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // All or nothing on SQLite too: a half-rebuilt table would lose payments.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentsRebuilt::Table)
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
                    // captured | refunded | voided
                    .col(ColumnDef::new(Payments::Status).string().not_null())
                    .col(ColumnDef::new(Payments::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Payments::UpdatedAt).big_integer().not_null())
                    .check(
                        Expr::col(Payments::AmountMinorUnits)
                            .gt(0)
                            .or(Expr::col(Payments::Status).eq("voided")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO payments_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM payments"
            ))
            .await?;
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(PaymentsRebuilt::Table, Payments::Table)
                    .to_owned(),
            )
            .await?;
        // One charge (or void) per caller and idempotency key, whatever races.
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
        events::create_outbox(manager, "payments").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::drop_outbox(manager, "payments").await?;
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM payments WHERE status = 'voided'")
            .await?;
        Ok(())
    }
}
