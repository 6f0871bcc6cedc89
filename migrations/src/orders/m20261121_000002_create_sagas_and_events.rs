use sea_orm_migration::prelude::*;

use crate::events;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    Version,
}

#[derive(DeriveIden)]
enum OrderSagas {
    Table,
    OrderId,
    Step,
    PaymentId,
    Attempts,
    NextAttemptAtMs,
    DeadlineAtMs,
    CancelRequested,
    CancelReason,
    LeaseUntilMs,
    Traceparent,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum OrderHistory {
    Table,
    OrderId,
    UserId,
    Status,
    CancelReason,
    CurrencyCode,
    TotalMinorUnits,
    Items,
    CreatedAtMs,
    UpdatedAtMs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Each status change bumps it; events carry it.
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(
                        ColumnDef::new(Orders::Version)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await?;
        // Where each order's saga stands; written with the order, then after
        // every step.
        manager
            .create_table(
                Table::create()
                    .table(OrderSagas::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OrderSagas::OrderId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    // reserve_stock | charge | commit_stock | refund | release_stock | done
                    .col(ColumnDef::new(OrderSagas::Step).string().not_null())
                    .col(ColumnDef::new(OrderSagas::PaymentId).string().not_null())
                    .col(ColumnDef::new(OrderSagas::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(OrderSagas::NextAttemptAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderSagas::DeadlineAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderSagas::CancelRequested)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderSagas::CancelReason).string().not_null())
                    .col(
                        ColumnDef::new(OrderSagas::LeaseUntilMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrderSagas::Traceparent).string().not_null())
                    .col(
                        ColumnDef::new(OrderSagas::UpdatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderSagas::Table, OrderSagas::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Recovery looks for the sagas still running.
        manager
            .create_index(
                Index::create()
                    .name("order_sagas_by_step")
                    .table(OrderSagas::Table)
                    .col(OrderSagas::Step)
                    .col(OrderSagas::NextAttemptAtMs)
                    .to_owned(),
            )
            .await?;
        // The read model behind ListOrders, built from the order events.
        manager
            .create_table(
                Table::create()
                    .table(OrderHistory::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OrderHistory::OrderId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OrderHistory::UserId).string().not_null())
                    .col(ColumnDef::new(OrderHistory::Status).string().not_null())
                    .col(
                        ColumnDef::new(OrderHistory::CancelReason)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderHistory::CurrencyCode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderHistory::TotalMinorUnits)
                            .big_integer()
                            .not_null(),
                    )
                    // The lines with product names and prices, JSON.
                    .col(ColumnDef::new(OrderHistory::Items).text().not_null())
                    .col(
                        ColumnDef::new(OrderHistory::CreatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderHistory::UpdatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderHistory::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("order_history_by_user_newest")
                    .table(OrderHistory::Table)
                    .col(OrderHistory::UserId)
                    .col(OrderHistory::CreatedAtMs)
                    .col(OrderHistory::OrderId)
                    .to_owned(),
            )
            .await?;
        events::create_outbox(manager, "orders").await?;
        events::create_processed_events(manager, "orders").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        events::drop_processed_events(manager, "orders").await?;
        events::drop_outbox(manager, "orders").await?;
        manager
            .drop_table(Table::drop().table(OrderHistory::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OrderSagas::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .drop_column(Orders::Version)
                    .to_owned(),
            )
            .await
    }
}
