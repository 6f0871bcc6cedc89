//! One row per order: its lines (which never change once placed) move into
//! it as a JSON array, and so does where its saga stands (the order and its
//! saga change together: created together, finished together). Placing an
//! order writes one row instead of three, each saga transition is one
//! statement, reading an order one row. Sagas still running are carried
//! over as they stand; the sweep finds them through a partial index holding
//! only the orders whose saga is not done.

use sea_orm_migration::prelude::*;

use crate::json_lines::{self, Field};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Lines,
    SagaStep,
    SagaPaymentId,
    SagaAttempts,
    SagaNextAttemptAtMs,
    SagaDeadlineAtMs,
    SagaCancelRequested,
    SagaCancelReason,
    SagaLeaseUntilMs,
    SagaTraceparent,
}

/// The new columns, each with the value an order without a saga row (none
/// exists: every order was created with its saga) would take: done.
fn columns() -> Vec<ColumnDef> {
    vec![
        // [{"productId", "productName", "quantity", "unitPriceMinorUnits"}]
        ColumnDef::new(Orders::Lines)
            .text()
            .not_null()
            .default("[]")
            .to_owned(),
        // reserve_stock | charge | commit_stock | refund | release_stock | done
        ColumnDef::new(Orders::SagaStep)
            .string()
            .not_null()
            .default("done")
            .to_owned(),
        ColumnDef::new(Orders::SagaPaymentId)
            .string()
            .not_null()
            .default("")
            .to_owned(),
        ColumnDef::new(Orders::SagaAttempts)
            .integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(Orders::SagaNextAttemptAtMs)
            .big_integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(Orders::SagaDeadlineAtMs)
            .big_integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(Orders::SagaCancelRequested)
            .boolean()
            .not_null()
            .default(false)
            .to_owned(),
        // Why the saga turns back, while it does (the order's own reason is
        // set when it ends).
        ColumnDef::new(Orders::SagaCancelReason)
            .string()
            .not_null()
            .default("")
            .to_owned(),
        // The driver holding the saga holds it until then.
        ColumnDef::new(Orders::SagaLeaseUntilMs)
            .big_integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(Orders::SagaTraceparent)
            .string()
            .not_null()
            .default("")
            .to_owned(),
    ]
}

/// An order line's JSON name, its column in order_items and its type.
const LINE_FIELDS: [Field<'static>; 4] = [
    ("productId", "product_id", "TEXT"),
    ("productName", "product_name", "TEXT"),
    ("quantity", "quantity", "INTEGER"),
    ("unitPriceMinorUnits", "unit_price_minor_units", "BIGINT"),
];

/// Old column in order_sagas -> new column in orders.
const CARRIED_OVER: [(&str, &str); 9] = [
    ("step", "saga_step"),
    ("payment_id", "saga_payment_id"),
    ("attempts", "saga_attempts"),
    ("next_attempt_at_ms", "saga_next_attempt_at_ms"),
    ("deadline_at_ms", "saga_deadline_at_ms"),
    ("cancel_requested", "saga_cancel_requested"),
    ("cancel_reason", "saga_cancel_reason"),
    ("lease_until_ms", "saga_lease_until_ms"),
    ("traceparent", "saga_traceparent"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        let set = CARRIED_OVER
            .iter()
            .map(|(old, new)| {
                format!("{new} = (SELECT s.{old} FROM order_sagas s WHERE s.order_id = orders.id)")
            })
            .collect::<Vec<_>>()
            .join(", ");
        db.execute_unprepared(&format!(
            "UPDATE orders SET {set} WHERE id IN (SELECT order_id FROM order_sagas)"
        ))
        .await?;
        db.execute_unprepared("DROP TABLE order_sagas").await?;
        json_lines::fold_into(
            manager,
            ("orders", "id", "lines"),
            ("order_items", "order_id", "line"),
            &LINE_FIELDS,
        )
        .await?;
        db.execute_unprepared("DROP TABLE order_items").await?;
        // Only the sagas still running, by when they are due: what the
        // recovery sweep reads (same syntax on SQLite and PostgreSQL).
        db.execute_unprepared(
            "CREATE INDEX orders_saga_due ON orders (saga_next_attempt_at_ms) \
             WHERE saga_step <> 'done'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX orders_saga_due").await?;
        db.execute_unprepared(
            "CREATE TABLE order_sagas (order_id VARCHAR NOT NULL PRIMARY KEY \
             REFERENCES orders (id) ON DELETE CASCADE, step VARCHAR NOT NULL, \
             payment_id VARCHAR NOT NULL, attempts INTEGER NOT NULL, \
             next_attempt_at_ms BIGINT NOT NULL, deadline_at_ms BIGINT NOT NULL, \
             cancel_requested BOOLEAN NOT NULL, cancel_reason VARCHAR NOT NULL, \
             lease_until_ms BIGINT NOT NULL, traceparent VARCHAR NOT NULL, \
             updated_at_ms BIGINT NOT NULL)",
        )
        .await?;
        let (old, new): (Vec<&str>, Vec<&str>) = CARRIED_OVER.iter().copied().unzip();
        db.execute_unprepared(&format!(
            "INSERT INTO order_sagas (order_id, {}, updated_at_ms) \
             SELECT id, {}, updated_at_ms FROM orders",
            old.join(", "),
            new.join(", ")
        ))
        .await?;
        db.execute_unprepared(
            "CREATE INDEX order_sagas_by_step ON order_sagas (step, next_attempt_at_ms)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TABLE order_items (order_id VARCHAR NOT NULL REFERENCES orders (id) \
             ON DELETE CASCADE, line INTEGER NOT NULL, product_id VARCHAR NOT NULL, \
             product_name VARCHAR NOT NULL, quantity INTEGER NOT NULL, \
             unit_price_minor_units BIGINT NOT NULL, PRIMARY KEY (order_id, line))",
        )
        .await?;
        json_lines::unfold_from(
            manager,
            ("orders", "id", "lines"),
            ("order_items", "order_id", Some("line")),
            &LINE_FIELDS,
        )
        .await?;
        for new in CARRIED_OVER.iter().map(|(_, new)| *new).chain(["lines"]) {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .drop_column(Alias::new(new))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
