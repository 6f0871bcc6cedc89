//! The consumer's side of at-least-once delivery: a consumer records each
//! event id it handles, in the same transaction as the handling, and skips
//! an id it has seen, so a redelivered event changes nothing.

use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, OnConflict, Query},
};

/// One consumer's record of handled events, in its service's
/// `<service>_processed_events` table.
#[derive(Clone, Debug)]
pub struct Inbox {
    table: String,
    consumer: String,
}

impl Inbox {
    pub fn new(service: &str, consumer: &str) -> Self {
        Self {
            table: format!("{service}_processed_events"),
            consumer: consumer.to_owned(),
        }
    }

    /// Records `event_id` as handled; `false` if it was already, in which
    /// case the caller must change nothing (and roll back its transaction).
    pub async fn first_delivery<C: ConnectionTrait>(
        &self,
        conn: &C,
        event_id: &str,
    ) -> Result<bool, DbErr> {
        let insert = Query::insert()
            .into_table(Alias::new(&self.table))
            .columns([
                Alias::new("consumer"),
                Alias::new("event_id"),
                Alias::new("processed_at_ms"),
            ])
            .values_panic([
                self.consumer.clone().into(),
                event_id.to_owned().into(),
                chrono::Utc::now().timestamp_millis().into(),
            ])
            .on_conflict(
                OnConflict::columns([Alias::new("consumer"), Alias::new("event_id")])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        Ok(conn.execute(&insert).await?.rows_affected() == 1)
    }
}
