//! The transactional outbox: an event is a row written in the same database
//! transaction as the state change it reports, so neither exists without the
//! other; the relay publishes the rows in commit order and marks them sent.

use sea_orm::{
    ConnectionTrait, DbErr, QueryResult, Statement,
    sea_query::{Alias, Condition, Expr, ExprTrait, LockBehavior, LockType, Order, Query},
};
use shop_kit_db::Params;

use super::Event;

/// One service's outbox table (`<service>_outbox`, see the migrations).
#[derive(Clone, Debug)]
pub struct Outbox {
    table: String,
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

impl Outbox {
    pub fn new(service: &str) -> Self {
        Self {
            table: format!("{service}_outbox"),
        }
    }

    /// Records `event` on `conn`, which should be the transaction that
    /// makes the change the event reports.
    pub async fn append<C: ConnectionTrait>(&self, conn: &C, event: &Event) -> Result<(), DbErr> {
        self.append_all(conn, std::slice::from_ref(event)).await
    }

    /// Records `events` in one statement, in their order.
    pub async fn append_all<C: ConnectionTrait>(
        &self,
        conn: &C,
        events: &[Event],
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let mut insert = Query::insert()
            .into_table(col(&self.table))
            .columns([
                col("id"),
                col("event_type"),
                col("aggregate_id"),
                col("aggregate_version"),
                col("occurred_at_ms"),
                col("traceparent"),
                col("data"),
            ])
            .to_owned();
        for event in events {
            let data =
                serde_json::to_string(&event.data).map_err(|e| DbErr::Custom(e.to_string()))?;
            insert
                .values([
                    event.id.clone().into(),
                    event.event_type.clone().into(),
                    event.aggregate_id.clone().into(),
                    event.version.into(),
                    event.occurred_at_ms().into(),
                    event.traceparent.clone().into(),
                    data.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        conn.execute(&insert).await?;
        Ok(())
    }

    /// One PostgreSQL statement that makes `change` (a PostgreSQL
    /// statement with a `RETURNING` clause) and records `events` only if it
    /// returned a row, answering those rows: the change is a common table
    /// expression, and the outbox insert another that reads it. A single
    /// statement is atomic by itself, so the pair takes one round trip and
    /// no `BEGIN` or `COMMIT`.
    pub(crate) fn with_change(
        &self,
        mut change: Statement,
        events: &[Event],
    ) -> Result<Statement, DbErr> {
        if events.is_empty() {
            return Ok(change);
        }
        let mut params = Params::after(&mut change);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let data =
                serde_json::to_string(&event.data).map_err(|e| DbErr::Custom(e.to_string()))?;
            rows.push(format!(
                "({}, {}, {}, {}, {}, {}, {})",
                params.add(event.id.clone()),
                params.add(event.event_type.clone()),
                params.add(event.aggregate_id.clone()),
                params.add(event.version),
                params.add(event.occurred_at_ms()),
                params.add(event.traceparent.clone()),
                params.add(data),
            ));
        }
        let insert = self.insert_rows_of(&format!(
            "SELECT * FROM (VALUES {}) AS event WHERE EXISTS (SELECT 1 FROM change)",
            rows.join(", ")
        ));
        Ok(params.statement(format!(
            "WITH change AS ({}), recorded AS ({insert}) SELECT * FROM change",
            change.sql
        )))
    }

    /// `INSERT INTO` this outbox the rows `select` yields: an event's id,
    /// type, aggregate id and version, `occurred_at_ms` (see
    /// [`Event::occurred_at_ms`]), traceparent and data (JSON text), in
    /// that order. For a service whose events' facts are known only inside
    /// the statement that changes them (say a stock level after its
    /// update), to record them in that same statement.
    pub fn insert_rows_of(&self, select: &str) -> String {
        format!(
            "INSERT INTO \"{}\" (\"id\", \"event_type\", \"aggregate_id\", \
             \"aggregate_version\", \"occurred_at_ms\", \"traceparent\", \"data\") {select}",
            self.table
        )
    }

    /// Claims, until `until_ms`, the oldest `limit` events recorded before
    /// `before_ms` that are not published and not claimed (or whose claim
    /// lapsed before `now_ms`), in commit order: one statement. Replicas
    /// sharing the database each get their own (PostgreSQL skips rows
    /// another claim has locked; SQLite has one writer at a time).
    pub(crate) async fn claim<C: ConnectionTrait>(
        &self,
        conn: &C,
        source: &str,
        limit: u64,
        before_ms: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<Event>, DbErr> {
        let due = Query::select()
            .column(col("seq"))
            .from(col(&self.table))
            .and_where(Expr::col(col("published_at_ms")).is_null())
            .and_where(Expr::col(col("occurred_at_ms")).lt(before_ms))
            .cond_where(
                Condition::any()
                    .add(Expr::col(col("claimed_until_ms")).is_null())
                    .add(Expr::col(col("claimed_until_ms")).lt(now_ms)),
            )
            .order_by(col("seq"), Order::Asc)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let claim = Query::update()
            .table(col(&self.table))
            .value(col("claimed_until_ms"), until_ms)
            .and_where(Expr::col(col("seq")).in_subquery(due))
            .returning(Query::returning().columns(COLUMNS.map(col)))
            .to_owned();
        let mut rows = conn
            .query_all(&claim)
            .await?
            .into_iter()
            .map(|row| read(&row, source))
            .collect::<Result<Vec<_>, DbErr>>()?;
        rows.sort_by_key(|(seq, _, _)| *seq);
        Ok(rows.into_iter().map(|(_, event, _)| event).collect())
    }

    /// Gives up a claim (the delivery failed): the next poll takes them.
    pub(crate) async fn unclaim<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[&str],
    ) -> Result<(), DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        let update = Query::update()
            .table(col(&self.table))
            .value(col("claimed_until_ms"), Expr::null())
            .and_where(Expr::col(col("id")).is_in(ids.iter().copied()))
            .to_owned();
        conn.execute(&update).await?;
        Ok(())
    }

    /// Every event the outbox holds, in commit order, and whether it was
    /// published (for operators and tests): those waiting for the relay,
    /// and those published within [`super::KEEP_PUBLISHED_FOR`].
    pub async fn recorded<C: ConnectionTrait>(
        &self,
        conn: &C,
        source: &str,
    ) -> Result<Vec<(Event, bool)>, DbErr> {
        let rows = self.select(conn, source, None, |_| {}).await?;
        Ok(rows
            .into_iter()
            .map(|(_, event, published)| (event, published))
            .collect())
    }

    async fn select<C: ConnectionTrait>(
        &self,
        conn: &C,
        source: &str,
        limit: Option<u64>,
        filter: impl FnOnce(&mut sea_orm::sea_query::SelectStatement),
    ) -> Result<Vec<(i64, Event, bool)>, DbErr> {
        let mut select = Query::select()
            .columns(COLUMNS.map(col))
            .from(col(&self.table))
            .order_by(col("seq"), Order::Asc)
            .to_owned();
        filter(&mut select);
        if let Some(limit) = limit {
            select.limit(limit);
        }
        let rows = conn.query_all(&select).await?;
        rows.iter().map(|row| read(row, source)).collect()
    }

    /// Marks the events `ids` published, in one statement.
    pub(crate) async fn mark_published<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[&str],
        now_ms: i64,
    ) -> Result<(), DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        let update = Query::update()
            .table(col(&self.table))
            .value(col("published_at_ms"), now_ms)
            .and_where(Expr::col(col("published_at_ms")).is_null())
            .and_where(Expr::col(col("id")).is_in(ids.iter().copied()))
            .to_owned();
        conn.execute(&update).await?;
        Ok(())
    }

    /// Deletes at most `limit` events published before `before_ms` (the
    /// broker has them; the outbox only needs what is not yet published),
    /// in one statement; how many it deleted. Rows another replica is
    /// deleting at the same moment are skipped (PostgreSQL).
    pub async fn prune<C: ConnectionTrait>(
        &self,
        conn: &C,
        before_ms: i64,
        limit: u64,
    ) -> Result<u64, DbErr> {
        let published = Query::select()
            .column(col("seq"))
            .from(col(&self.table))
            .and_where(Expr::col(col("published_at_ms")).lt(before_ms))
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let delete = Query::delete()
            .from_table(col(&self.table))
            .and_where(Expr::col(col("seq")).in_subquery(published))
            .to_owned();
        Ok(conn.execute(&delete).await?.rows_affected())
    }

    /// How many events wait for the relay.
    pub async fn backlog<C: ConnectionTrait>(&self, conn: &C) -> Result<u64, DbErr> {
        let count = Query::select()
            .expr_as(Expr::col(col("seq")).count(), col("n"))
            .from(col(&self.table))
            .and_where(Expr::col(col("published_at_ms")).is_null())
            .to_owned();
        let n: i64 = match conn.query_one(&count).await? {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The columns an event is read from.
const COLUMNS: [&str; 9] = [
    "seq",
    "id",
    "event_type",
    "aggregate_id",
    "aggregate_version",
    "occurred_at_ms",
    "traceparent",
    "data",
    "published_at_ms",
];

/// One outbox row: its place in commit order, the event, whether published.
fn read(row: &QueryResult, source: &str) -> Result<(i64, Event, bool), DbErr> {
    let data: String = row.try_get("", "data")?;
    let at: i64 = row.try_get("", "occurred_at_ms")?;
    let published: Option<i64> = row.try_get("", "published_at_ms")?;
    let event = Event {
        id: row.try_get("", "id")?,
        event_type: row.try_get("", "event_type")?,
        source: source.to_owned(),
        time: rfc3339(at),
        aggregate_id: row.try_get("", "aggregate_id")?,
        version: row.try_get("", "aggregate_version")?,
        traceparent: row.try_get("", "traceparent")?,
        data: serde_json::from_str(&data).map_err(|e| DbErr::Custom(e.to_string()))?,
    };
    Ok((row.try_get("", "seq")?, event, published.is_some()))
}

pub(crate) fn occurred_at_ms(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| chrono::Utc::now().timestamp_millis())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
