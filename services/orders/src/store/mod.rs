//! The orders database: the only module that touches it. Orders with their
//! lines and, in the order's row, where its saga stands; the outbox; and
//! the order history (the read model behind ListOrders, [`History`]).
//!
//! What an order costs here, on the way it usually goes: one statement per
//! change, its event recorded with it ([`Ledger::record`]: on PostgreSQL
//! the outbox row joins the change in the same statement, with no
//! `BEGIN` or `COMMIT`): one to place it (the order's row, with its lines
//! and its saga, and its event), one per saga transition, one to finish
//! it (the row, its event). The driver that placed it holds its saga from
//! the start, so nothing is claimed or read back between steps.

mod entities;
mod history;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IdenStatic, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, OnConflict},
};
use shop_kit::db::StorageError;
use shop_kit::events::Ledger;

use crate::{
    domain::{
        Cancellation, Line, Order, OrderStatus,
        saga::{Saga, Step},
    },
    error::OrdersError,
    events::{self, ItemSnapshot, OrderSnapshot},
};
use entities::order;
pub use history::{HISTORY_CONSUMER, History};

/// The order a row holds; its lines are read strictly (a row whose lines
/// do not parse is a corrupt record, never an order without lines).
fn assemble(row: order::Model) -> Result<Order, OrdersError> {
    let lines: Vec<ItemSnapshot> =
        serde_json::from_str(&row.lines).map_err(|_| StorageError::unknown("lines", &row.lines))?;
    Ok(Order {
        lines: lines
            .into_iter()
            .map(|line| Line {
                product_id: line.product_id,
                product_name: line.product_name,
                quantity: line.quantity,
                unit_price_minor_units: line.unit_price_minor_units,
            })
            .collect(),
        id: row.id,
        user_id: row.user_id,
        currency_code: row.currency_code,
        total_minor_units: row.total_minor_units,
        status: OrderStatus::parse(&row.status)?,
        cancellation: Cancellation::from_stored(&row.cancel_reason, &row.cancel_message)?,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
        version: row.version,
    })
}

/// A saga as its driver holds it: the order, where the saga stands, what
/// its steps need, and until when this driver holds it (the lease it must
/// still hold to record a transition).
#[derive(Clone, Debug)]
pub struct HeldSaga {
    pub order: Order,
    pub saga: Saga,
    pub payment_token: String,
    pub traceparent: String,
    pub lease_until_ms: i64,
}

impl HeldSaga {
    fn of(row: order::Model) -> Result<Self, OrdersError> {
        let saga = Saga {
            step: Step::parse(&row.saga_step)
                .ok_or_else(|| StorageError::unknown("saga_step", &row.saga_step))?,
            attempts: u32::try_from(row.saga_attempts).map_err(|_| {
                StorageError::unknown("saga_attempts", &row.saga_attempts.to_string())
            })?,
            deadline_at_ms: row.saga_deadline_at_ms,
            cancel_requested: row.saga_cancel_requested,
            cancellation: Cancellation::from_stored(
                &row.saga_cancel_reason,
                &row.saga_cancel_message,
            )?,
            payment_id: row.saga_payment_id.clone(),
        };
        let payment_token = row.payment_token.clone();
        let traceparent = row.saga_traceparent.clone();
        let lease_until_ms = row.saga_lease_until_ms;
        Ok(Self {
            order: assemble(row)?,
            saga,
            payment_token,
            traceparent,
            lease_until_ms,
        })
    }
}

/// An order to place, with what its saga needs.
#[derive(Clone, Debug)]
pub struct NewOrder<'a> {
    pub order: Order,
    pub idempotency_key: &'a str,
    pub payment_token: &'a str,
    pub deadline_at_ms: i64,
    pub traceparent: &'a str,
    /// The placing driver holds the saga until then.
    pub lease_until_ms: i64,
}

/// What placing an order did.
#[derive(Debug)]
pub enum Placed {
    /// Stored, its saga held by the caller.
    New(HeldSaga),
    /// The customer's key had placed this order already, paid with this
    /// token.
    Existing { order: Order, payment_token: String },
}

/// A saga's next state, written in one conditional UPDATE.
#[derive(Clone, Debug)]
pub struct SagaUpdate {
    pub step: Step,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub cancellation: Option<Cancellation>,
    pub payment_id: String,
    /// Until when the driver holds the saga after this (0: it lets go).
    pub lease_until_ms: i64,
}

/// Query access to orders' own database (its sagas included).
#[derive(Clone, Debug)]
pub struct Store {
    /// The database, and the relay its committed order events go to.
    pub ledger: Ledger,
}

impl Store {
    /// The order, lines and all: one row.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, OrdersError> {
        self.one(order::Column::Id.eq(id)).await
    }

    async fn one(
        &self,
        condition: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<Option<Order>, OrdersError> {
        order::Entity::find()
            .filter(condition)
            .one(self.ledger.db())
            .await?
            .map(assemble)
            .transpose()
    }

    /// Stores a new order, its lines, its saga (at its first step, held by
    /// the caller) and its order.created event in one transaction. If the
    /// customer's key was used already, that order instead.
    pub async fn create(&self, new: NewOrder<'_>) -> Result<Placed, OrdersError> {
        let NewOrder {
            order,
            idempotency_key,
            payment_token,
            deadline_at_ms,
            traceparent,
            lease_until_ms,
        } = new;
        let lines = serde_json::to_string(&OrderSnapshot::of(&order).items)
            .map_err(|e| OrdersError::MalformedEvent(e.to_string()))?;
        let (cancel_reason, cancel_message) = Cancellation::to_stored(order.cancellation.as_ref());
        let row = order::ActiveModel {
            lines: Set(lines),
            id: Set(order.id.clone()),
            user_id: Set(order.user_id.clone()),
            idempotency_key: Set(idempotency_key.to_owned()),
            status: Set(order.status.as_str().to_owned()),
            cancel_reason: Set(cancel_reason.to_owned()),
            cancel_message: Set(cancel_message),
            total_minor_units: Set(order.total_minor_units),
            currency_code: Set(order.currency_code.clone()),
            payment_token: Set(payment_token.to_owned()),
            created_at_ms: Set(order.created_at_ms),
            updated_at_ms: Set(order.updated_at_ms),
            version: Set(order.version),
            saga_step: Set(Step::ReserveStock.as_str().to_owned()),
            saga_payment_id: Set(String::new()),
            saga_attempts: Set(0),
            saga_next_attempt_at_ms: Set(order.created_at_ms),
            saga_deadline_at_ms: Set(deadline_at_ms),
            saga_cancel_requested: Set(false),
            saga_cancel_reason: Set(String::new()),
            saga_cancel_message: Set(String::new()),
            saga_lease_until_ms: Set(lease_until_ms),
            saga_traceparent: Set(traceparent.to_owned()),
        };
        let event = events::order_event(&order);
        // A key used before inserts nothing (and records no event) rather
        // than failing: a replay is an answer, not an error in the
        // database's log.
        let mut insert = order::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([order::Column::UserId, order::Column::IdempotencyKey])
                    .do_nothing()
                    .to_owned(),
            )
            .into_query();
        insert.returning_col(order::Column::Id);
        let inserted = self.ledger.record(&insert, vec![event]).await?;
        if inserted.is_empty() {
            let existing = order::Entity::find()
                .filter(order::Column::UserId.eq(order.user_id.as_str()))
                .filter(order::Column::IdempotencyKey.eq(idempotency_key))
                .one(self.ledger.db())
                .await?
                .ok_or_else(|| {
                    OrdersError::from(DbErr::RecordNotFound(format!(
                        "the order of idempotency key {idempotency_key:?}, which refused a new one"
                    )))
                })?;
            return Ok(Placed::Existing {
                payment_token: existing.payment_token.clone(),
                order: assemble(existing)?,
            });
        }
        Ok(Placed::New(HeldSaga {
            saga: Saga {
                step: Step::ReserveStock,
                attempts: 0,
                deadline_at_ms,
                cancel_requested: false,
                cancellation: None,
                payment_id: String::new(),
            },
            order,
            payment_token: payment_token.to_owned(),
            traceparent: traceparent.to_owned(),
            lease_until_ms,
        }))
    }

    /// Takes the saga for one driver until `until_ms`, unless another holds
    /// it or it is done: the saga as it stands, read in the same statement.
    pub async fn claim(
        &self,
        order_id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<HeldSaga>, OrdersError> {
        let claimed = order::Entity::update_many()
            .col_expr(order::Column::SagaLeaseUntilMs, Expr::value(until_ms))
            .filter(order::Column::Id.eq(order_id))
            .filter(order::Column::SagaLeaseUntilMs.lt(now_ms))
            .filter(order::Column::SagaStep.ne(Step::Done.as_str()))
            .exec_with_returning(self.ledger.db())
            .await?;
        claimed.into_iter().next().map(HeldSaga::of).transpose()
    }

    /// Moves the saga `held` from its step to `update` (and, when the order
    /// becomes `finished`, the order too, with its event): one conditional
    /// statement, only if the saga is still at that step and still held by
    /// this driver, so no step is recorded twice. `None` if it was not
    /// (another driver has it now); else whether a cancel was asked for
    /// meanwhile.
    pub async fn advance(
        &self,
        held: &HeldSaga,
        update: &SagaUpdate,
        finished: Option<&Order>,
    ) -> Result<Option<bool>, OrdersError> {
        let (saga_reason, saga_message) = Cancellation::to_stored(update.cancellation.as_ref());
        let mut moved = order::Entity::update_many()
            .col_expr(order::Column::SagaStep, Expr::value(update.step.as_str()))
            .col_expr(
                order::Column::SagaAttempts,
                Expr::value(i32::try_from(update.attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(
                order::Column::SagaNextAttemptAtMs,
                Expr::value(update.next_attempt_at_ms),
            )
            .col_expr(order::Column::SagaCancelReason, Expr::value(saga_reason))
            .col_expr(order::Column::SagaCancelMessage, Expr::value(saga_message))
            .col_expr(
                order::Column::SagaPaymentId,
                Expr::value(update.payment_id.as_str()),
            )
            .col_expr(
                order::Column::SagaLeaseUntilMs,
                Expr::value(update.lease_until_ms),
            )
            .filter(order::Column::Id.eq(held.order.id.as_str()))
            .filter(order::Column::SagaStep.eq(held.saga.step.as_str()))
            .filter(order::Column::SagaLeaseUntilMs.eq(held.lease_until_ms));
        let mut event = None;
        if let Some(done) = finished {
            let (reason, message) = Cancellation::to_stored(done.cancellation.as_ref());
            moved = moved
                .col_expr(order::Column::Status, Expr::value(done.status.as_str()))
                .col_expr(order::Column::CancelReason, Expr::value(reason))
                .col_expr(order::Column::CancelMessage, Expr::value(message))
                .col_expr(order::Column::UpdatedAtMs, Expr::value(done.updated_at_ms))
                .col_expr(order::Column::Version, Expr::value(done.version));
            event = Some(events::order_event(done));
        }
        let mut statement = moved.into_query();
        statement.returning_col(order::Column::SagaCancelRequested);
        let rows = match event {
            None => self.ledger.db().query_all(&statement).await?,
            Some(event) => self.ledger.record(&statement, vec![event]).await?,
        };
        rows.first()
            .map(|row| row.try_get::<bool>("", order::Column::SagaCancelRequested.as_str()))
            .transpose()
            .map_err(OrdersError::from)
    }

    /// Lets go of a saga this driver holds (it stops before its end, e.g.
    /// for shutdown), so the next driver need not wait out the lease.
    pub async fn release(&self, held: &HeldSaga) -> Result<(), OrdersError> {
        order::Entity::update_many()
            .col_expr(order::Column::SagaLeaseUntilMs, Expr::value(0))
            .filter(order::Column::Id.eq(held.order.id.as_str()))
            .filter(order::Column::SagaLeaseUntilMs.eq(held.lease_until_ms))
            .exec(self.ledger.db())
            .await?;
        Ok(())
    }

    /// Asks the saga to turn back; whether it was still running.
    pub async fn request_cancel(&self, order_id: &str) -> Result<bool, OrdersError> {
        let flagged = order::Entity::update_many()
            .col_expr(order::Column::SagaCancelRequested, Expr::value(true))
            .filter(order::Column::Id.eq(order_id))
            .filter(order::Column::SagaStep.ne(Step::Done.as_str()))
            .exec(self.ledger.db())
            .await?;
        Ok(flagged.rows_affected == 1)
    }

    /// Sagas not done, due and not held by a live driver (read through the
    /// partial index of pending orders: an order is pending exactly while
    /// its saga runs, and a saga's steps change no indexed column, so
    /// PostgreSQL rewrites the row in place).
    pub async fn due_sagas(&self, now_ms: i64, limit: u64) -> Result<Vec<String>, OrdersError> {
        Ok(order::Entity::find()
            .select_only()
            .column(order::Column::Id)
            .filter(running())
            .filter(order::Column::SagaNextAttemptAtMs.lte(now_ms))
            .filter(order::Column::SagaLeaseUntilMs.lt(now_ms))
            .order_by_asc(order::Column::SagaNextAttemptAtMs)
            .limit(limit)
            .into_tuple::<String>()
            .all(self.ledger.db())
            .await?)
    }

    /// How many sagas are still running (for operators and tests).
    pub async fn running_sagas(&self) -> Result<u64, OrdersError> {
        Ok(order::Entity::find()
            .filter(running())
            .count(self.ledger.db())
            .await?)
    }
}

/// The orders whose saga runs, as the index `orders_pending` finds them
/// (its condition, `status = 'pending'`, must be in the query for either
/// database to use it).
fn running() -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(order::Column::Status.eq(OrderStatus::Pending.as_str()))
        .add(order::Column::SagaStep.ne(Step::Done.as_str()))
}
