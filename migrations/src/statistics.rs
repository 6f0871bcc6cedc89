//! Payload columns keep no planner statistics. A table that changes all the
//! time (orders, the history, the outboxes) is analyzed every minute or so
//! by autovacuum, and each analysis sorts a sample of 30,000 values of
//! every column under the database's collation, a JSON payload of hundreds
//! of bytes whose values all differ included. No query filters, joins or
//! sorts on these columns, so no plan reads their statistics. Measured on
//! the orders database after an hour of `just soak` (315,000 orders), CPU
//! per analysis: `orders` 550-574 to 472-510 ms, `orders_outbox` 318-328
//! to 200-224 ms. PostgreSQL only: nothing runs `ANALYZE` on the SQLite
//! files.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

/// Stops gathering statistics on the columns of each table (`gather`
/// false), or goes back to the server's default (`gather` true): one
/// statement per table.
pub async fn gather(
    manager: &SchemaManager<'_>,
    tables: &[(&str, &[&str])],
    gather: bool,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let target = if gather { -1 } else { 0 };
    for (table, columns) in tables {
        let alters: Vec<String> = columns
            .iter()
            .map(|column| format!("ALTER COLUMN \"{column}\" SET STATISTICS {target}"))
            .collect();
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER TABLE \"{table}\" {}", alters.join(", ")))
            .await?;
    }
    Ok(())
}

/// An outbox's payload columns.
pub const OUTBOX_PAYLOADS: &[&str] = &["data", "traceparent"];
