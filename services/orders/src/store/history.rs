//! The order history: a denormalized view of each customer's orders (lines
//! with product names, totals, status), kept from the order events (CQRS)
//! and read by ListOrders, which completes it with the orders it has not
//! caught up with yet, so a customer reads their own writes on any replica.
//! Events come in batches, each handled at once whatever its size, in one
//! statement: the orders, each at its newest version, upserted where they
//! are newer than what is held (so a redelivered event changes nothing).

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use shop_kit::events::Event;

use super::entities::{order, order_history};
use crate::{
    domain::{Cancellation, Cursor, Order},
    error::OrdersError,
    events::{self, OrderSnapshot},
};

/// The history's row of each order among `events`, at its newest version,
/// in the order of their ids. Replicas record their batches at once, and
/// an upsert locks its rows in the order it lists them: two batches that
/// share orders, each in its own order, could wait for each other until
/// PostgreSQL broke the deadlock (seen in a soak: both waited for its
/// `deadlock_timeout`, a second by default, then the batch was delivered
/// again). In one order, the later waits for the earlier, which then
/// finishes.
fn newest<'a>(
    events: impl Iterator<Item = &'a Event>,
) -> Result<Vec<order_history::Model>, OrdersError> {
    let mut newest: HashMap<&str, Order> = HashMap::new();
    for event in events {
        let order = events::order_of(event).map_err(OrdersError::MalformedEvent)?;
        if newest
            .get(event.aggregate_id.as_str())
            .is_none_or(|known| known.version < order.version)
        {
            newest.insert(event.aggregate_id.as_str(), order);
        }
    }
    let mut newest: Vec<Order> = newest.into_values().collect();
    newest.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    newest.into_iter().map(history_row).collect()
}

/// The history's row of `order`.
fn history_row(order: Order) -> Result<order_history::Model, OrdersError> {
    let items = serde_json::to_string(&OrderSnapshot::of(&order).items)
        .map_err(|e| OrdersError::MalformedEvent(e.to_string()))?;
    let (cancel_reason, cancel_message) = Cancellation::to_stored(order.cancellation.as_ref());
    Ok(order_history::Model {
        order_id: order.id,
        user_id: order.user_id,
        status: order.status.as_str().to_owned(),
        cancel_reason: cancel_reason.to_owned(),
        cancel_message,
        currency_code: order.currency_code,
        total_minor_units: order.total_minor_units,
        items,
        created_at_ms: order.created_at_ms,
        updated_at_ms: order.updated_at_ms,
        version: order.version,
    })
}

/// An order's row replaces the history's only where it is newer: the same
/// event again, or older news, changes nothing.
fn newer_replaces() -> OnConflict {
    use order_history::Column as C;
    let newer = Expr::col((order_history::Entity, C::Version))
        .lt(Expr::col((Alias::new("excluded"), C::Version)));
    OnConflict::column(C::OrderId)
        .update_columns([
            C::Status,
            C::CancelReason,
            C::CancelMessage,
            C::Items,
            C::UpdatedAtMs,
            C::Version,
        ])
        .action_and_where(newer)
        .to_owned()
}

/// The consumer that keeps the order history.
pub const HISTORY_CONSUMER: &str = "order-history";

#[derive(Clone, Debug)]
pub struct History {
    db: DatabaseConnection,
}

impl History {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Applies a batch of order events, in one statement: each order at
    /// its newest version in the batch, only where that is newer than what
    /// the history holds. An event delivered again (at least once) is not
    /// newer than itself, so it changes nothing; no record of handled
    /// events is needed.
    pub async fn record(&self, batch: &[Event]) -> Result<(), OrdersError> {
        let rows = newest(batch.iter())?;
        if rows.is_empty() {
            return Ok(());
        }
        order_history::Entity::insert_many(rows.into_iter().map(order_history::ActiveModel::from))
            .on_conflict(newer_replaces())
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// One page of a customer's order history, newest first, and whether
    /// more follow: what the history holds, with the orders it has not
    /// caught up with yet (their events still on their way, perhaps through
    /// another replica's consumer) taken from the orders table as they are.
    pub async fn page(
        &self,
        user_id: &str,
        size: u64,
        after: Option<&Cursor>,
    ) -> Result<(Vec<Order>, bool), OrdersError> {
        // Lagging first: the history only ever moves forward, so an order
        // it catches up with in between is found by one read or the other,
        // and the newer of the two versions is kept.
        let lagging = self.lagging(user_id, size, after).await?;
        let (mut orders, mut more) = self.held(user_id, size, after).await?;
        if lagging.is_empty() {
            return Ok((orders, more));
        }
        for newer in lagging {
            match orders.iter_mut().find(|held| held.id == newer.id) {
                Some(held) if held.version >= newer.version => {}
                Some(held) => *held = newer,
                None => orders.push(newer),
            }
        }
        orders.sort_by(|a, b| {
            (b.created_at_ms, b.id.as_str()).cmp(&(a.created_at_ms, a.id.as_str()))
        });
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if orders.len() > size {
            orders.truncate(size);
            more = true;
        }
        Ok((orders, more))
    }

    /// What the history holds: one page, and whether more follow.
    async fn held(
        &self,
        user_id: &str,
        size: u64,
        after: Option<&Cursor>,
    ) -> Result<(Vec<Order>, bool), OrdersError> {
        let mut select = order_history::Entity::find()
            .filter(order_history::Column::UserId.eq(user_id))
            .order_by_desc(order_history::Column::CreatedAtMs)
            .order_by_desc(order_history::Column::OrderId);
        if let Some(cursor) = after {
            select = select.filter(before(
                order_history::Column::CreatedAtMs,
                order_history::Column::OrderId,
                cursor,
            ));
        }
        let mut rows = select.limit(size + 1).all(&self.db).await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        rows.into_iter()
            .map(|row| {
                let items: Vec<events::ItemSnapshot> = serde_json::from_str(&row.items)
                    .map_err(|e| OrdersError::MalformedEvent(e.to_string()))?;
                OrderSnapshot {
                    id: row.order_id,
                    user_id: row.user_id,
                    status: row.status,
                    cancel_reason: row.cancel_reason,
                    cancel_message: Some(row.cancel_message),
                    currency_code: row.currency_code,
                    total_minor_units: row.total_minor_units,
                    items,
                    created_at_ms: row.created_at_ms,
                    updated_at_ms: row.updated_at_ms,
                }
                .into_order(row.version)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|orders| (orders, more))
    }

    /// The customer's orders of this page the history lacks or holds at an
    /// older version, from the orders table (one statement).
    async fn lagging(
        &self,
        user_id: &str,
        size: u64,
        after: Option<&Cursor>,
    ) -> Result<Vec<Order>, OrdersError> {
        let caught_up = Query::select()
            .expr(Expr::val(1))
            .from(order_history::Entity)
            .and_where(
                Expr::col((order_history::Entity, order_history::Column::OrderId))
                    .equals((order::Entity, order::Column::Id)),
            )
            .and_where(
                Expr::col((order_history::Entity, order_history::Column::Version))
                    .gte(Expr::col((order::Entity, order::Column::Version))),
            )
            .to_owned();
        let mut select = order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .filter(Expr::exists(caught_up).not())
            .order_by_desc(order::Column::CreatedAtMs)
            .order_by_desc(order::Column::Id);
        if let Some(cursor) = after {
            select = select.filter(before(
                order::Column::CreatedAtMs,
                order::Column::Id,
                cursor,
            ));
        }
        select
            .limit(size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(super::assemble)
            .collect()
    }
}

/// Rows after `cursor` in newest-first order: created before it, or at the
/// same instant with a smaller id.
fn before(created_at: impl ColumnTrait, id: impl ColumnTrait, cursor: &Cursor) -> Condition {
    Condition::any()
        .add(created_at.lt(cursor.created_at_ms))
        .add(
            Condition::all()
                .add(created_at.eq(cursor.created_at_ms))
                .add(id.lt(cursor.id.as_str())),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::OrderStatus, events::order_event};

    #[test]
    fn a_batch_is_recorded_at_each_orders_newest_version_in_the_order_of_the_ids() {
        let events: Vec<Event> = [
            ("o3", 1),
            ("o1", 2),
            ("o2", 1),
            ("o1", 3),
            ("o3", 2),
            ("o1", 1),
        ]
        .into_iter()
        .map(|(id, version)| order_event(&Order::sample(id, version, OrderStatus::Pending)))
        .collect();
        let rows: Vec<(String, i64)> = newest(events.iter())
            .expect("rows")
            .into_iter()
            .map(|row| (row.order_id, row.version))
            .collect();
        assert_eq!(rows, [("o1".into(), 3), ("o2".into(), 1), ("o3".into(), 2)]);
    }
}
