//! The consumer's side of at-least-once delivery: a consumer records each
//! event id it handles, in the same transaction as the handling, and skips
//! an id it has seen, so a redelivered event changes nothing.

use std::collections::HashSet;

use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, OnConflict, Query},
};
use shop_kit_db::Params;

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
        Ok(!self.first_deliveries(conn, &[event_id]).await?.is_empty())
    }

    /// The PostgreSQL statement that records `event_ids` as handled and
    /// returns the ids seen for the first time (column `event_id`), its
    /// values added to `params`: to be a common table expression of the
    /// statement whose change it guards, so that the two take one round
    /// trip and need no transaction.
    pub fn first_deliveries_sql(&self, params: &mut Params, event_ids: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let rows: Vec<String> = event_ids
            .iter()
            .map(|id| {
                format!(
                    "({}, {}, {})",
                    params.add(self.consumer.clone()),
                    params.add((*id).to_owned()),
                    params.add(now)
                )
            })
            .collect();
        format!(
            "INSERT INTO \"{}\" (\"consumer\", \"event_id\", \"processed_at_ms\") VALUES {} \
             ON CONFLICT (\"consumer\", \"event_id\") DO NOTHING RETURNING \"event_id\"",
            self.table,
            rows.join(", ")
        )
    }

    /// Records `event_ids` as handled, in one statement; the ones seen for
    /// the first time (only those may change anything).
    pub async fn first_deliveries<C: ConnectionTrait>(
        &self,
        conn: &C,
        event_ids: &[&str],
    ) -> Result<HashSet<String>, DbErr> {
        if event_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut insert = Query::insert()
            .into_table(Alias::new(&self.table))
            .columns([
                Alias::new("consumer"),
                Alias::new("event_id"),
                Alias::new("processed_at_ms"),
            ])
            .on_conflict(
                OnConflict::columns([Alias::new("consumer"), Alias::new("event_id")])
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(Alias::new("event_id"))
            .to_owned();
        for id in event_ids {
            insert
                .values([
                    self.consumer.clone().into(),
                    (*id).to_owned().into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        conn.query_all(&insert)
            .await?
            .into_iter()
            .map(|row| row.try_get::<String>("", "event_id"))
            .collect()
    }
}
