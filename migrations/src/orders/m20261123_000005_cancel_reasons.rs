//! Why an order was cancelled becomes a reason programs branch on plus the
//! words for the customer: each `cancel_reason` column (the order's, its
//! saga's, the history's) gets a `cancel_message` beside it, takes the words
//! there and keeps the reason they name. Words this service never wrote stop
//! the migration rather than being guessed at.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, reason column, message column)
const CANCELLATIONS: [(&str, &str, &str); 3] = [
    ("orders", "cancel_reason", "cancel_message"),
    ("orders", "saga_cancel_reason", "saga_cancel_message"),
    ("order_history", "cancel_reason", "cancel_message"),
];

/// How the words of each reason began (or, for `timed_out` alone, also
/// ended), as earlier versions wrote them; the orders domain reads events
/// of those versions the same way (`CancelReason::of_legacy_words`).
const LEGACY_WORDS: [(&str, &str); 10] = [
    ("out of stock%", "out_of_stock"),
    ("no longer in the catalog%", "not_in_catalog"),
    ("your card was declined%", "card_declined"),
    ("the payment was refused%", "payment_refused"),
    ("the payment was voided%", "payment_refused"),
    ("cancelled at your request%", "customer_request"),
    ("not completed in time%", "timed_out"),
    (
        "%was unavailable until the order''s time ran out",
        "timed_out",
    ),
    ("the stock reservation was released%", "stock_lost"),
    ("the stock set aside for it was lost%", "stock_lost"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // First, before anything changes: every cancelled row's words must
        // name a reason.
        for (table, reason, _) in CANCELLATIONS {
            let known: Vec<String> = LEGACY_WORDS
                .iter()
                .map(|(words, _)| format!("{reason} LIKE '{words}'"))
                .collect();
            let unknown = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!(
                        "SELECT {reason} FROM {table} WHERE {reason} <> '' AND NOT ({})",
                        known.join(" OR ")
                    ),
                ))
                .await?;
            if let Some(row) = unknown {
                let words: String = row.try_get("", reason)?;
                return Err(DbErr::Migration(format!(
                    "{table}.{reason}: no known cancel reason for the words {words:?}; \
                     change them to words an earlier version wrote and migrate again"
                )));
            }
        }
        for (table, reason, message) in CANCELLATIONS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(
                            ColumnDef::new(Alias::new(message))
                                .text()
                                .not_null()
                                .default(""),
                        )
                        .to_owned(),
                )
                .await?;
            let case: String = LEGACY_WORDS
                .iter()
                .map(|(words, code)| format!(" WHEN {reason} LIKE '{words}' THEN '{code}'"))
                .collect();
            db.execute_unprepared(&format!(
                "UPDATE {table} SET {message} = {reason}, \
                 {reason} = CASE{case} END WHERE {reason} <> ''"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (table, reason, message) in CANCELLATIONS {
            db.execute_unprepared(&format!(
                "UPDATE {table} SET {reason} = {message} WHERE {reason} <> ''"
            ))
            .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(message))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
