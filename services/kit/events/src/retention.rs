//! How long an outbox keeps the events it has published, and the task that
//! deletes the older ones: the broker has them (JetStream keeps them for
//! `STREAM_MAX_AGE`) and its consumers have handled them, so the outbox
//! needs only what waits for the relay. Without it the table, its indexes
//! and its vacuums grow with every event ever sent.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use shop_kit_shutdown::Shutdown;

use super::Outbox;

/// A published event stays in the outbox this long (for an operator
/// asking what was sent lately, and [`Outbox::recorded`]), then goes.
pub const KEEP_PUBLISHED_FOR: Duration = Duration::from_secs(10 * 60);
/// How often the outbox is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Events deleted per statement, at most: a sweep that finds more (the
/// first after an upgrade, say) deletes them a batch at a time.
const DELETE_BATCH: u64 = 1_000;

/// Deletes, every [`SWEEP_EVERY`] until `shutdown`, the events of
/// `service`'s outbox published more than [`KEEP_PUBLISHED_FOR`] ago.
/// A failed sweep is retried at the next.
pub(crate) async fn sweep_published(
    db: DatabaseConnection,
    service: String,
    outbox: Outbox,
    shutdown: Shutdown,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            _ = every.tick() => {}
        }
        let keep_since = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(super::millis(KEEP_PUBLISHED_FOR));
        match sweep(&db, &outbox, keep_since, &shutdown).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::debug!(%service, deleted, "published events deleted from the outbox");
                metrics::counter!("shop_outbox_pruned_total", "service" => service.clone())
                    .increment(deleted);
            }
            Err(error) => {
                tracing::warn!(%service, %error, "could not delete published events");
            }
        }
    }
}

/// Deletes every event published before `keep_since_ms`, a batch at a
/// time; how many.
async fn sweep(
    db: &DatabaseConnection,
    outbox: &Outbox,
    keep_since_ms: i64,
    shutdown: &Shutdown,
) -> Result<u64, sea_orm::DbErr> {
    let mut deleted = 0;
    while !shutdown.is_triggered() {
        let batch = outbox.prune(db, keep_since_ms, DELETE_BATCH).await?;
        deleted += batch;
        if batch < DELETE_BATCH {
            break;
        }
    }
    Ok(deleted)
}
