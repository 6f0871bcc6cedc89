//! The catalog's database: sea-orm entities and queries. The only module
//! that touches the database; it speaks domain types, never proto.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr,
    sea_query::{Expr, Func, LikeExpr},
};

use crate::{
    domain::{Money, NewProduct, PageRequest, Product},
    error::CatalogError,
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
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
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
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
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
        let mut rows = select.limit(page.size + 1).all(&self.db).await?;
        let more = rows.len() as u64 > page.size;
        rows.truncate(usize::try_from(page.size).unwrap_or(usize::MAX));
        Ok((rows.into_iter().map(Product::from).collect(), more))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Product>, CatalogError> {
        Ok(product::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(Product::from))
    }

    /// The stock on hand of each known product among `ids`.
    pub async fn stock_of(&self, ids: &[String]) -> Result<Vec<(String, i32)>, CatalogError> {
        let rows = product::Entity::find()
            .filter(product::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.stock_on_hand)).collect())
    }

    pub async fn count(&self) -> Result<u64, CatalogError> {
        Ok(product::Entity::find().count(&self.db).await?)
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
        };
        match product::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(product),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(CatalogError::DuplicateSku { sku: product.sku })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Adds `delta` (negative to take away) to a product's stock in one
    /// conditional UPDATE, so concurrent changes never take it below zero.
    /// Returns the new stock on hand.
    pub async fn adjust_stock(&self, id: &str, delta: i32) -> Result<i32, CatalogError> {
        let updated = product::Entity::update_many()
            .col_expr(
                product::Column::StockOnHand,
                Expr::col(product::Column::StockOnHand).add(delta),
            )
            .filter(product::Column::Id.eq(id))
            .filter(Expr::col(product::Column::StockOnHand).add(delta).gte(0))
            .exec(&self.db)
            .await?;
        let current = self
            .get(id)
            .await?
            .ok_or_else(|| CatalogError::ProductNotFound { id: id.to_owned() })?;
        if updated.rows_affected == 0 {
            return Err(CatalogError::InsufficientStock {
                id: id.to_owned(),
                on_hand: current.stock_on_hand,
                requested: -delta,
            });
        }
        Ok(current.stock_on_hand)
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
