//! The orders database: the only module that touches it.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};

use crate::{
    domain::{Cursor, Line, Order, OrderStatus},
    error::OrdersError,
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

fn assemble(row: order::Model, items: &[order_item::Model]) -> Order {
    let mut lines: Vec<&order_item::Model> =
        items.iter().filter(|i| i.order_id == row.id).collect();
    lines.sort_by_key(|i| i.line);
    Order {
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
        status: OrderStatus::parse(&row.status),
        cancel_reason: row.cancel_reason,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
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
        Ok(rows.into_iter().map(|row| assemble(row, &items)).collect())
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

    /// Stores a new order and its lines in one transaction. If the
    /// customer's key was used already (a racing repeat), returns that
    /// order instead, and `false`.
    pub async fn create(
        &self,
        order: Order,
        key: &str,
        payment_token: &str,
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
        };
        if let Err(error) = order::Entity::insert(row).exec(&txn).await {
            txn.rollback().await?;
            if !shop_kit::database::is_unique_violation(&error) {
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
        txn.commit().await?;
        Ok((order, true))
    }

    /// One page of a customer's orders, newest first, and whether more follow.
    pub async fn list(
        &self,
        user_id: &str,
        size: u64,
        after: Option<&Cursor>,
    ) -> Result<(Vec<Order>, bool), OrdersError> {
        let mut select = order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .order_by_desc(order::Column::CreatedAtMs)
            .order_by_desc(order::Column::Id);
        if let Some(cursor) = after {
            select = select.filter(
                Condition::any()
                    .add(order::Column::CreatedAtMs.lt(cursor.created_at_ms))
                    .add(
                        Condition::all()
                            .add(order::Column::CreatedAtMs.eq(cursor.created_at_ms))
                            .add(order::Column::Id.lt(cursor.id.as_str())),
                    ),
            );
        }
        let mut rows = select.limit(size + 1).all(&self.db).await?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        Ok((self.with_lines(rows).await?, more))
    }

    /// Moves a pending order to cancelled; whether it moved.
    pub async fn cancel(&self, id: &str, reason: &str, now_ms: i64) -> Result<bool, OrdersError> {
        let moved = order::Entity::update_many()
            .col_expr(
                order::Column::Status,
                Expr::value(OrderStatus::Cancelled.as_str()),
            )
            .col_expr(order::Column::CancelReason, Expr::value(reason))
            .col_expr(order::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(order::Column::Id.eq(id))
            .filter(order::Column::Status.eq(OrderStatus::Pending.as_str()))
            .exec(&self.db)
            .await?;
        Ok(moved.rows_affected == 1)
    }
}
