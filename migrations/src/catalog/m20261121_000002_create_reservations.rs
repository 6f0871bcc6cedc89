use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StockReservations {
    Table,
    Id,
    Status,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockReservationItems {
    Table,
    ReservationId,
    ProductId,
    Quantity,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StockReservations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(StockReservations::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    // reserved | released | committed
                    .col(
                        ColumnDef::new(StockReservations::Status)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StockReservations::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StockReservationItems::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(StockReservationItems::ReservationId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StockReservationItems::ProductId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(StockReservationItems::Quantity)
                            .integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(StockReservationItems::ReservationId)
                            .col(StockReservationItems::ProductId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                StockReservationItems::Table,
                                StockReservationItems::ReservationId,
                            )
                            .to(StockReservations::Table, StockReservations::Id),
                    )
                    .check(Expr::col(StockReservationItems::Quantity).gt(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StockReservationItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(StockReservations::Table).to_owned())
            .await
    }
}
