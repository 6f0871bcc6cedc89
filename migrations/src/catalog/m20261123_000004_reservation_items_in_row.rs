//! A reservation's items (which never change once reserved) move into its
//! row as a JSON array: reserving writes one row instead of two, releasing
//! reads one.

use sea_orm_migration::prelude::*;

use crate::json_lines::{self, Field};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StockReservations {
    Table,
    Items,
}

/// An item's JSON name, its column in stock_reservation_items and its type.
const ITEM_FIELDS: [Field<'static>; 2] = [
    ("productId", "product_id", "TEXT"),
    ("quantity", "quantity", "INTEGER"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StockReservations::Table)
                    // [{"productId", "quantity"}]; `[]` for a release
                    // recorded before any reservation.
                    .add_column(
                        ColumnDef::new(StockReservations::Items)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        json_lines::fold_into(
            manager,
            ("stock_reservations", "id", "items"),
            ("stock_reservation_items", "reservation_id", "product_id"),
            &ITEM_FIELDS,
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE stock_reservation_items")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE stock_reservation_items (reservation_id VARCHAR NOT NULL \
                 REFERENCES stock_reservations (id) ON DELETE CASCADE, \
                 product_id VARCHAR NOT NULL, quantity INTEGER NOT NULL CHECK (quantity > 0), \
                 PRIMARY KEY (reservation_id, product_id))",
            )
            .await?;
        json_lines::unfold_from(
            manager,
            ("stock_reservations", "id", "items"),
            ("stock_reservation_items", "reservation_id", None),
            &ITEM_FIELDS,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(StockReservations::Table)
                    .drop_column(StockReservations::Items)
                    .to_owned(),
            )
            .await
    }
}
