//! The catalog's categories: reference data its migrations write, read in
//! the order the shop shows them.

use sea_orm::{EntityTrait, QueryOrder};

use super::Store;
use crate::error::CatalogError;

mod category {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "categories")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        #[sea_orm(unique)]
        pub position: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A group of products the shop shows together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    pub name: String,
}

impl Store {
    /// Every category, in the order the shop shows them.
    pub async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        Ok(category::Entity::find()
            .order_by_asc(category::Column::Position)
            .all(self.ledger.db())
            .await?
            .into_iter()
            .map(|row| Category {
                id: row.id,
                name: row.name,
            })
            .collect())
    }
}
