//! A saga's steps rewrite the order's row in place. PostgreSQL updates a
//! row without touching its indexes (a HOT update) only when no indexed
//! column changes, an index's condition included, and the row's page has
//! room for the new version. Each step changed `saga_step` and
//! `saga_next_attempt_at_ms`, both in `orders_saga_due`, so every step
//! added an entry to each of the table's four indexes (3.5% of the updates
//! were HOT in an hour of `just soak`), and autovacuum had them all to
//! clean.
//!
//! Now:
//! - the orders still pending are found through `orders_pending`, whose
//!   condition is on `status`, which changes once, when the order is
//!   finished (with its saga: a pending order's saga is running, a finished
//!   one's is done);
//! - `orders_saga_due` goes, and so does `orders_by_user_newest`, which
//!   nothing has read since ListOrders reads the order history.
//!
//! The table keeps filling its pages whole: a row changes in its first
//! second or so (later only while its saga waits out a peer), while its
//! page still has room or the versions before it can be pruned. Measured
//! in `just bench orders --profile production` (2,000 orders): 99% of the
//! steps in place with pages filled whole, 100% with them filled to 70%,
//! which doubled the table.
//!
//! The release before this one sweeps for due sagas through
//! `orders_saga_due`; on this schema its sweep reads the table instead (the
//! same answers, slower). No release has shipped that index, so none
//! loses it (docs/migrations.md: An index dropped).

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Same syntax on SQLite and PostgreSQL.
        db.execute_unprepared(
            "CREATE INDEX orders_pending ON orders (created_at_ms) WHERE status = 'pending'",
        )
        .await?;
        db.execute_unprepared("DROP INDEX orders_saga_due").await?;
        db.execute_unprepared("DROP INDEX orders_by_user_newest")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX orders_by_user_newest ON orders (user_id, created_at_ms, id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX orders_saga_due ON orders (saga_next_attempt_at_ms) \
             WHERE saga_step <> 'done'",
        )
        .await?;
        db.execute_unprepared("DROP INDEX orders_pending").await?;
        Ok(())
    }
}
