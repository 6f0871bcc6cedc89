//! The catalog's database: sea-orm entities and queries. The only module
//! that touches the database; it speaks domain types, never proto.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Func, LikeExpr},
};
use shop_kit::db::StorageError;

use shop_kit::events::{Event, Ledger};

mod categories;
mod stock_postgres;

pub use categories::Category;

use crate::{
    domain::{Money, NewProduct, PageRequest, Product, ReservationStatus},
    error::CatalogError,
    events::StockChanged,
};

mod product {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub sku: String,
        pub name: String,
        pub description: String,
        pub price_minor_units: i64,
        pub currency_code: String,
        pub stock_on_hand: i32,
        /// Bumped by every stock change; stock.changed events carry it.
        pub stock_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod reservation {
    use sea_orm::entity::prelude::*;

    /// A reservation and its items (a JSON array, fixed once reserved).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub status: String,
        pub updated_at: i64,
        pub items: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A reserved item as its reservation's row holds it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReservedItem {
    product_id: String,
    quantity: i32,
}

/// The items a reservation row holds, read strictly.
fn reserved_items(row: &reservation::Model) -> Result<Vec<ReservedItem>, CatalogError> {
    serde_json::from_str(&row.items).map_err(|_| StorageError::unknown("items", &row.items).into())
}

/// Adds `delta` to a product's stock unless that would go below zero, in
/// one conditional statement that reads the stock back: the change, or
/// `None` if it did not happen.
async fn change_stock(
    db: &impl ConnectionTrait,
    id: &str,
    delta: i32,
) -> Result<Option<StockChanged>, CatalogError> {
    let updated = product::Entity::update_many()
        .col_expr(
            product::Column::StockOnHand,
            Expr::col(product::Column::StockOnHand).add(delta),
        )
        .col_expr(
            product::Column::StockVersion,
            Expr::col(product::Column::StockVersion).add(1),
        )
        .filter(product::Column::Id.eq(id))
        .filter(Expr::col(product::Column::StockOnHand).add(delta).gte(0))
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().next().map(|row| StockChanged {
        product_id: row.id,
        stock_on_hand: row.stock_on_hand,
        version: row.stock_version,
    }))
}

/// `items` in the order their products' rows are locked: by product id,
/// the same in every transaction, so two orders naming the same products in
/// another order never wait for each other in a circle (PostgreSQL aborts
/// one of them as a deadlock after a second's wait).
fn in_lock_order<T>(items: &[T], product_id: impl Fn(&T) -> &String) -> Vec<&T> {
    let mut ordered: Vec<&T> = items.iter().collect();
    ordered.sort_by(|a, b| product_id(a).cmp(product_id(b)));
    ordered
}

/// The stock.changed events of `changes`.
fn stock_events(changes: &[StockChanged]) -> Vec<Event> {
    changes.iter().map(StockChanged::event).collect()
}

/// Why a product's stock could not change by `delta`: it is not there, or
/// it has too little.
async fn refusal(
    db: &impl ConnectionTrait,
    id: &str,
    delta: i32,
) -> Result<CatalogError, CatalogError> {
    let on_hand = product::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(|row| row.stock_on_hand);
    Ok(match on_hand {
        None => CatalogError::ProductNotFound { id: id.to_owned() },
        Some(on_hand) => CatalogError::InsufficientStock {
            id: id.to_owned(),
            on_hand,
            requested: delta.saturating_neg(),
        },
    })
}

async fn reservation_status(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<ReservationStatus>, CatalogError> {
    reservation::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(|row| status_of(&row))
        .transpose()
}

/// The status a reservation row holds, read strictly.
fn status_of(row: &reservation::Model) -> Result<ReservationStatus, CatalogError> {
    ReservationStatus::parse(&row.status)
        .ok_or_else(|| StorageError::unknown("status", &row.status).into())
}

impl From<product::Model> for Product {
    fn from(row: product::Model) -> Self {
        Self {
            id: row.id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            price: Money {
                currency_code: row.currency_code,
                minor_units: row.price_minor_units,
            },
            stock_on_hand: row.stock_on_hand,
        }
    }
}

/// Query access to the catalog's own database.
#[derive(Clone, Debug)]
pub struct Store {
    /// The database, and the relay its committed stock events go to.
    pub ledger: Ledger,
}

impl Store {
    /// Names and prices of `ids`, in one statement, in no order.
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<Product>, CatalogError> {
        Ok(product::Entity::find()
            .filter(product::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(self.ledger.db())
            .await?
            .into_iter()
            .map(Product::from)
            .collect())
    }

    /// One page in SKU order, plus whether more follow.
    pub async fn list(&self, page: &PageRequest) -> Result<(Vec<Product>, bool), CatalogError> {
        let mut select = product::Entity::find().order_by_asc(product::Column::Sku);
        if let Some(after) = &page.after_sku {
            select = select.filter(product::Column::Sku.gt(after.as_str()));
        }
        if let Some(text) = &page.query {
            let pattern = format!("%{}%", escape_like(text));
            let matches = |column: product::Column| {
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            select = select.filter(
                Condition::any()
                    .add(matches(product::Column::Name))
                    .add(matches(product::Column::Sku))
                    .add(matches(product::Column::Description)),
            );
        }
        let mut rows = select.limit(page.size + 1).all(self.ledger.db()).await?;
        let more = rows.len() as u64 > page.size;
        rows.truncate(usize::try_from(page.size).unwrap_or(usize::MAX));
        Ok((rows.into_iter().map(Product::from).collect(), more))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Product>, CatalogError> {
        Ok(product::Entity::find_by_id(id.to_owned())
            .one(self.ledger.db())
            .await?
            .map(Product::from))
    }

    /// The stock on hand of each known product among `ids`.
    pub async fn stock_of(&self, ids: &[String]) -> Result<Vec<StockChanged>, CatalogError> {
        let rows = product::Entity::find()
            .filter(product::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(self.ledger.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| StockChanged {
                product_id: r.id,
                stock_on_hand: r.stock_on_hand,
                version: r.stock_version,
            })
            .collect())
    }

    pub async fn count(&self) -> Result<u64, CatalogError> {
        Ok(product::Entity::find().count(self.ledger.db()).await?)
    }

    pub async fn insert(&self, new: NewProduct) -> Result<Product, CatalogError> {
        let product = new.into_product();
        let row = product::ActiveModel {
            id: Set(product.id.clone()),
            sku: Set(product.sku.clone()),
            name: Set(product.name.clone()),
            description: Set(product.description.clone()),
            price_minor_units: Set(product.price.minor_units),
            currency_code: Set(product.price.currency_code.clone()),
            stock_on_hand: Set(product.stock_on_hand),
            stock_version: Set(0),
        };
        match product::Entity::insert(row).exec(self.ledger.db()).await {
            Ok(_) => Ok(product),
            Err(error) if shop_kit::db::is_unique_violation(&error) => {
                Err(CatalogError::DuplicateSku { sku: product.sku })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Adds `delta` (negative to take away) to a product's stock in one
    /// conditional UPDATE, so concurrent changes never take it below zero,
    /// with its stock.changed event. Returns the new stock on hand.
    pub async fn adjust_stock(&self, id: &str, delta: i32) -> Result<i32, CatalogError> {
        let txn = shop_kit::db::begin(self.ledger.db()).await?;
        let Some(change) = change_stock(&txn, id, delta).await? else {
            let refused = refusal(&txn, id, delta).await?;
            txn.rollback().await?;
            return Err(refused);
        };
        let on_hand = change.stock_on_hand;
        self.ledger.commit(txn, stock_events(&[change])).await?;
        Ok(on_hand)
    }

    /// Takes every line's quantity out of stock and records the reservation,
    /// atomically: all lines or none (on PostgreSQL in one statement, see
    /// `stock_postgres`; elsewhere in one transaction). A reservation id seen before
    /// returns its status and changes nothing (a released one, even one
    /// released before it was ever made, stays released).
    pub async fn reserve(
        &self,
        id: &str,
        lines: &[(String, i32)],
        now: i64,
    ) -> Result<ReservationStatus, CatalogError> {
        let items: Vec<ReservedItem> = lines
            .iter()
            .map(|(product_id, quantity)| ReservedItem {
                product_id: product_id.clone(),
                quantity: *quantity,
            })
            .collect();
        let items = serde_json::to_string(&items).map_err(|e| DbErr::Custom(e.to_string()))?;
        if self.ledger.db().get_database_backend() == DbBackend::Postgres {
            return self.reserve_in_one_statement(id, lines, items, now).await;
        }
        let txn = shop_kit::db::begin(self.ledger.db()).await?;
        // Claim the id first: a concurrent twin fails here and reads ours.
        let claim = reservation::ActiveModel {
            id: Set(id.to_owned()),
            status: Set(ReservationStatus::Reserved.as_str().to_owned()),
            updated_at: Set(now),
            items: Set(items),
        };
        if let Err(error) = reservation::Entity::insert(claim)
            .exec_without_returning(&txn)
            .await
        {
            txn.rollback().await?;
            if !shop_kit::db::is_unique_violation(&error) {
                return Err(error.into());
            }
            let status = reservation_status(self.ledger.db(), id)
                .await?
                .ok_or_else(|| CatalogError::ReservationNotFound { id: id.to_owned() })?;
            return Ok(status);
        }
        let mut changes = Vec::with_capacity(lines.len());
        for (product_id, quantity) in in_lock_order(lines, |(id, _)| id) {
            match change_stock(&txn, product_id, -quantity).await? {
                Some(change) => changes.push(change),
                None => {
                    let refused = refusal(&txn, product_id, -quantity).await?;
                    txn.rollback().await?;
                    return Err(refused);
                }
            }
        }
        self.ledger.commit(txn, stock_events(&changes)).await?;
        Ok(ReservationStatus::Reserved)
    }

    /// Moves a reservation from reserved to `to` (released puts the stock
    /// back), once; repeating the same move is harmless, the opposite one is
    /// refused. Releasing an id never reserved records it released, so a
    /// reservation still on its way (a timed-out call) cannot land after
    /// its compensation. On PostgreSQL a release reads the reservation,
    /// then settles it and puts its stock back in one statement (see
    /// `stock_postgres`); elsewhere, and for an id never reserved, in one
    /// transaction.
    pub async fn settle(
        &self,
        id: &str,
        to: ReservationStatus,
        now: i64,
    ) -> Result<ReservationStatus, CatalogError> {
        let settle = reservation::Entity::update_many()
            .col_expr(reservation::Column::Status, Expr::value(to.as_str()))
            .col_expr(reservation::Column::UpdatedAt, Expr::value(now))
            .filter(reservation::Column::Id.eq(id))
            .filter(reservation::Column::Status.eq(ReservationStatus::Reserved.as_str()));
        if to != ReservationStatus::Released {
            // A sale moves no stock: one statement.
            if settle.exec(self.ledger.db()).await?.rows_affected == 1 {
                return Ok(to);
            }
            let status = reservation_status(self.ledger.db(), id).await?;
            return settled_already(id, to, status);
        }
        if self.ledger.db().get_database_backend() == DbBackend::Postgres
            && let Some(row) = reservation::Entity::find_by_id(id.to_owned())
                .one(self.ledger.db())
                .await?
        {
            let status = status_of(&row)?;
            if status != ReservationStatus::Reserved {
                return settled_already(id, to, Some(status));
            }
            let items = reserved_items(&row)?;
            if !items.is_empty() {
                return self.release_in_one_statement(id, &items, now).await;
            }
        }
        let txn = shop_kit::db::begin(self.ledger.db()).await?;
        let Some(released) = settle.exec_with_returning(&txn).await?.into_iter().next() else {
            let status = reservation_status(&txn, id).await?;
            if status.is_none() {
                let tombstone = reservation::ActiveModel {
                    id: Set(id.to_owned()),
                    status: Set(to.as_str().to_owned()),
                    updated_at: Set(now),
                    items: Set("[]".to_owned()),
                };
                reservation::Entity::insert(tombstone)
                    .exec_without_returning(&txn)
                    .await?;
                txn.commit().await?;
                return Ok(to);
            }
            txn.rollback().await?;
            return settled_already(id, to, status);
        };
        let mut changes = Vec::new();
        let items = reserved_items(&released)?;
        for item in in_lock_order(&items, |item| &item.product_id) {
            changes.extend(change_stock(&txn, &item.product_id, item.quantity).await?);
        }
        self.ledger.commit(txn, stock_events(&changes)).await?;
        Ok(to)
    }
}

/// The answer to settling a reservation that is not reserved (any more):
/// the same move again is fine, another is refused.
fn settled_already(
    id: &str,
    to: ReservationStatus,
    status: Option<ReservationStatus>,
) -> Result<ReservationStatus, CatalogError> {
    match status {
        None => Err(CatalogError::ReservationNotFound { id: id.to_owned() }),
        Some(status) if status == to => Ok(status),
        Some(status) => Err(CatalogError::ReservationSettled {
            id: id.to_owned(),
            status: status.as_str(),
        }),
    }
}

/// Escapes LIKE wildcards so user text matches literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
