//! The orders database: the only module that touches it. Orders and their
//! lines, each order's saga state, the outbox, and the order history (the
//! read model behind ListOrders).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};
use shop_kit::db::UnknownStoredValue;
use shop_kit::events::{Event, Inbox, Outbox};

use crate::{
    domain::{
        Cursor, Line, Order, OrderStatus,
        saga::{Saga, Step},
    },
    error::OrdersError,
    events::{self, OrderSnapshot},
};

mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub idempotency_key: String,
        pub status: String,
        pub cancel_reason: String,
        pub total_minor_units: i64,
        pub currency_code: String,
        pub payment_token: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod order_item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub line: i32,
        pub product_id: String,
        pub product_name: String,
        pub quantity: i32,
        pub unit_price_minor_units: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod order_saga {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_sagas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub step: String,
        pub payment_id: String,
        pub attempts: i32,
        pub next_attempt_at_ms: i64,
        pub deadline_at_ms: i64,
        pub cancel_requested: bool,
        pub cancel_reason: String,
        pub lease_until_ms: i64,
        pub traceparent: String,
        pub updated_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod order_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub user_id: String,
        pub status: String,
        pub cancel_reason: String,
        pub currency_code: String,
        pub total_minor_units: i64,
        pub items: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The consumer that keeps the order history.
const HISTORY_CONSUMER: &str = "order-history";

fn assemble(row: order::Model, items: &[order_item::Model]) -> Result<Order, OrdersError> {
    let mut lines: Vec<&order_item::Model> =
        items.iter().filter(|i| i.order_id == row.id).collect();
    lines.sort_by_key(|i| i.line);
    Ok(Order {
        lines: lines
            .into_iter()
            .map(|i| Line {
                product_id: i.product_id.clone(),
                product_name: i.product_name.clone(),
                quantity: i.quantity,
                unit_price_minor_units: i.unit_price_minor_units,
            })
            .collect(),
        id: row.id,
        user_id: row.user_id,
        currency_code: row.currency_code,
        total_minor_units: row.total_minor_units,
        status: OrderStatus::parse(&row.status)?,
        cancel_reason: row.cancel_reason,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
        version: row.version,
    })
}

/// A saga as stored, with what its steps need besides the order.
#[derive(Clone, Debug)]
pub struct StoredSaga {
    pub saga: Saga,
    pub payment_token: String,
    pub traceparent: String,
}

/// A saga's next state, written in one conditional UPDATE.
#[derive(Clone, Debug)]
pub struct SagaUpdate {
    pub step: Step,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub cancel_reason: String,
    pub payment_id: String,
    pub lease_until_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            outbox: Outbox::new(events::SERVICE),
        }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn with_lines(&self, rows: Vec<order::Model>) -> Result<Vec<Order>, OrdersError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let items = order_item::Entity::find()
            .filter(order_item::Column::OrderId.is_in(rows.iter().map(|r| r.id.as_str())))
            .all(&self.db)
            .await?;
        rows.into_iter().map(|row| assemble(row, &items)).collect()
    }

    pub async fn by_key(&self, user_id: &str, key: &str) -> Result<Option<Order>, OrdersError> {
        let row = order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .filter(order::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?;
        Ok(self.with_lines(row.into_iter().collect()).await?.pop())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Order>, OrdersError> {
        let row = order::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?;
        Ok(self.with_lines(row.into_iter().collect()).await?.pop())
    }

    /// Stores a new order, its lines, its saga (at its first step) and its
    /// order.created event in one transaction. If the customer's key was
    /// used already (a racing repeat), returns that order instead, and
    /// `false`.
    pub async fn create(
        &self,
        order: Order,
        key: &str,
        payment_token: &str,
        deadline_at_ms: i64,
        traceparent: &str,
    ) -> Result<(Order, bool), OrdersError> {
        let txn = self.db.begin().await?;
        let row = order::ActiveModel {
            id: Set(order.id.clone()),
            user_id: Set(order.user_id.clone()),
            idempotency_key: Set(key.to_owned()),
            status: Set(order.status.as_str().to_owned()),
            cancel_reason: Set(order.cancel_reason.clone()),
            total_minor_units: Set(order.total_minor_units),
            currency_code: Set(order.currency_code.clone()),
            payment_token: Set(payment_token.to_owned()),
            created_at_ms: Set(order.created_at_ms),
            updated_at_ms: Set(order.updated_at_ms),
            version: Set(order.version),
        };
        if let Err(error) = order::Entity::insert(row).exec(&txn).await {
            txn.rollback().await?;
            if !shop_kit::db::is_unique_violation(&error) {
                return Err(error.into());
            }
            let existing = self
                .by_key(&order.user_id, key)
                .await?
                .ok_or(OrdersError::Database(error))?;
            return Ok((existing, false));
        }
        for (line_no, line) in (0i32..).zip(&order.lines) {
            let item = order_item::ActiveModel {
                order_id: Set(order.id.clone()),
                line: Set(line_no),
                product_id: Set(line.product_id.clone()),
                product_name: Set(line.product_name.clone()),
                quantity: Set(line.quantity),
                unit_price_minor_units: Set(line.unit_price_minor_units),
            };
            order_item::Entity::insert(item).exec(&txn).await?;
        }
        let saga = order_saga::ActiveModel {
            order_id: Set(order.id.clone()),
            step: Set(Step::ReserveStock.as_str().to_owned()),
            payment_id: Set(String::new()),
            attempts: Set(0),
            next_attempt_at_ms: Set(order.created_at_ms),
            deadline_at_ms: Set(deadline_at_ms),
            cancel_requested: Set(false),
            cancel_reason: Set(String::new()),
            lease_until_ms: Set(0),
            traceparent: Set(traceparent.to_owned()),
            updated_at_ms: Set(order.created_at_ms),
        };
        order_saga::Entity::insert(saga).exec(&txn).await?;
        self.outbox
            .append(&txn, &events::order_event(&order, traceparent))
            .await?;
        txn.commit().await?;
        Ok((order, true))
    }

    /// An order with its saga, read once for a step: the saga's state, the
    /// payment token its charge needs, and the order itself.
    pub async fn saga(&self, order_id: &str) -> Result<Option<(StoredSaga, Order)>, OrdersError> {
        let Some(row) = order_saga::Entity::find_by_id(order_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(order_row) = order::Entity::find_by_id(order_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let payment_token = order_row.payment_token.clone();
        let Some(order) = self.with_lines(vec![order_row]).await?.pop() else {
            return Ok(None);
        };
        let stored = StoredSaga {
            saga: Saga {
                step: Step::parse(&row.step)
                    .ok_or_else(|| UnknownStoredValue::new("step", &row.step))?,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                deadline_at_ms: row.deadline_at_ms,
                cancel_requested: row.cancel_requested,
                cancel_reason: row.cancel_reason,
                payment_id: row.payment_id,
            },
            payment_token,
            traceparent: row.traceparent,
        };
        Ok(Some((stored, order)))
    }

    /// Takes the saga for one driver until `until_ms`, unless another
    /// holds it or it is done; whether it was taken.
    pub async fn claim(
        &self,
        order_id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, OrdersError> {
        let claimed = order_saga::Entity::update_many()
            .col_expr(order_saga::Column::LeaseUntilMs, Expr::value(until_ms))
            .filter(order_saga::Column::OrderId.eq(order_id))
            .filter(order_saga::Column::LeaseUntilMs.lt(now_ms))
            .filter(order_saga::Column::Step.ne(Step::Done.as_str()))
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Moves the saga from step `from` to `update`, and when the order
    /// becomes final, the order too, with its event: one transaction, and
    /// only if the saga still is at `from` (so no step is recorded twice).
    pub async fn advance(
        &self,
        order_id: &str,
        from: Step,
        update: &SagaUpdate,
        finished: Option<(&Order, &str)>,
    ) -> Result<bool, OrdersError> {
        let txn = self.db.begin().await?;
        let moved = order_saga::Entity::update_many()
            .col_expr(order_saga::Column::Step, Expr::value(update.step.as_str()))
            .col_expr(
                order_saga::Column::Attempts,
                Expr::value(i32::try_from(update.attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(
                order_saga::Column::NextAttemptAtMs,
                Expr::value(update.next_attempt_at_ms),
            )
            .col_expr(
                order_saga::Column::CancelReason,
                Expr::value(update.cancel_reason.as_str()),
            )
            .col_expr(
                order_saga::Column::PaymentId,
                Expr::value(update.payment_id.as_str()),
            )
            .col_expr(
                order_saga::Column::LeaseUntilMs,
                Expr::value(update.lease_until_ms),
            )
            .col_expr(
                order_saga::Column::UpdatedAtMs,
                Expr::value(update.next_attempt_at_ms),
            )
            .filter(order_saga::Column::OrderId.eq(order_id))
            .filter(order_saga::Column::Step.eq(from.as_str()))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        if let Some((order, traceparent)) = finished {
            order::Entity::update_many()
                .col_expr(order::Column::Status, Expr::value(order.status.as_str()))
                .col_expr(
                    order::Column::CancelReason,
                    Expr::value(order.cancel_reason.as_str()),
                )
                .col_expr(order::Column::UpdatedAtMs, Expr::value(order.updated_at_ms))
                .col_expr(order::Column::Version, Expr::value(order.version))
                .filter(order::Column::Id.eq(order_id))
                .exec(&txn)
                .await?;
            self.outbox
                .append(&txn, &events::order_event(order, traceparent))
                .await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Asks the saga to turn back; whether it was still running.
    pub async fn request_cancel(&self, order_id: &str) -> Result<bool, OrdersError> {
        let flagged = order_saga::Entity::update_many()
            .col_expr(order_saga::Column::CancelRequested, Expr::value(true))
            .filter(order_saga::Column::OrderId.eq(order_id))
            .filter(order_saga::Column::Step.ne(Step::Done.as_str()))
            .exec(&self.db)
            .await?;
        Ok(flagged.rows_affected == 1)
    }

    /// Sagas not done, due and not held by a live driver.
    pub async fn due_sagas(&self, now_ms: i64, limit: u64) -> Result<Vec<String>, OrdersError> {
        Ok(order_saga::Entity::find()
            .filter(order_saga::Column::Step.ne(Step::Done.as_str()))
            .filter(order_saga::Column::NextAttemptAtMs.lte(now_ms))
            .filter(order_saga::Column::LeaseUntilMs.lt(now_ms))
            .order_by_asc(order_saga::Column::NextAttemptAtMs)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.order_id)
            .collect())
    }

    /// How many sagas are still running (for operators and tests).
    pub async fn running_sagas(&self) -> Result<u64, OrdersError> {
        Ok(order_saga::Entity::find()
            .filter(order_saga::Column::Step.ne(Step::Done.as_str()))
            .count(&self.db)
            .await?)
    }

    /// Applies an order event to the history, once per event and only if
    /// it is newer than what the history holds.
    pub async fn record_history(&self, event: &Event) -> Result<(), OrdersError> {
        let order = events::order_of(event).map_err(OrdersError::MalformedEvent)?;
        let txn = self.db.begin().await?;
        if !Inbox::new(events::SERVICE, HISTORY_CONSUMER)
            .first_delivery(&txn, &event.id)
            .await?
        {
            txn.rollback().await?;
            return Ok(());
        }
        let items = serde_json::to_string(&OrderSnapshot::of(&order).items)
            .map_err(|e| OrdersError::MalformedEvent(e.to_string()))?;
        let row = order_history::ActiveModel {
            order_id: Set(order.id.clone()),
            user_id: Set(order.user_id.clone()),
            status: Set(order.status.as_str().to_owned()),
            cancel_reason: Set(order.cancel_reason.clone()),
            currency_code: Set(order.currency_code.clone()),
            total_minor_units: Set(order.total_minor_units),
            items: Set(items),
            created_at_ms: Set(order.created_at_ms),
            updated_at_ms: Set(order.updated_at_ms),
            version: Set(order.version),
        };
        let known = order_history::Entity::find_by_id(order.id.clone())
            .one(&txn)
            .await?;
        match known {
            None => {
                order_history::Entity::insert(row).exec(&txn).await?;
            }
            Some(known) if known.version < order.version => {
                order_history::Entity::update(row).exec(&txn).await?;
            }
            Some(_) => {}
        }
        txn.commit().await?;
        Ok(())
    }

    /// One page of a customer's order history, newest first, and whether
    /// more follow.
    pub async fn history(
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
            select = select.filter(
                Condition::any()
                    .add(order_history::Column::CreatedAtMs.lt(cursor.created_at_ms))
                    .add(
                        Condition::all()
                            .add(order_history::Column::CreatedAtMs.eq(cursor.created_at_ms))
                            .add(order_history::Column::OrderId.lt(cursor.id.as_str())),
                    ),
            );
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
}
