//! The widgets database: the only module that touches it.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, sea_query::OnConflict,
};
use shop_kit::events::Ledger;

use crate::{
    domain::{NewWidget, Page, Widget},
    error::WidgetsError,
    events,
};

mod widget {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "widgets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        pub request_id: String,
        pub title: String,
        pub description: String,
        pub product_id: String,
        pub created_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl From<widget::Model> for Widget {
    fn from(row: widget::Model) -> Self {
        Self {
            id: row.id,
            customer_id: row.customer_id,
            title: row.title,
            description: row.description,
            product_id: row.product_id,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// Query access to widgets' own database.
#[derive(Clone, Debug)]
pub struct Store {
    /// The database, and the relay its committed widget events go to.
    pub ledger: Ledger,
}

impl Store {
    pub async fn by_id(&self, id: &str) -> Result<Option<Widget>, WidgetsError> {
        Ok(widget::Entity::find_by_id(id.to_owned())
            .one(self.ledger.db())
            .await?
            .map(Widget::from))
    }

    /// Records `new` with its widget.created event, unless its customer's
    /// request id made a widget already: then returns that one (or refuses
    /// a request id reused for another widget).
    pub async fn create(&self, new: NewWidget, now_ms: i64) -> Result<Widget, WidgetsError> {
        let widget = Widget {
            id: uuid::Uuid::new_v4().to_string(),
            customer_id: new.customer_id.clone(),
            title: new.title.clone(),
            description: new.description.clone(),
            product_id: new.product_id.clone(),
            created_at_ms: now_ms,
        };
        let row = widget::ActiveModel {
            id: Set(widget.id.clone()),
            customer_id: Set(widget.customer_id.clone()),
            request_id: Set(new.request_id.clone()),
            title: Set(widget.title.clone()),
            description: Set(widget.description.clone()),
            product_id: Set(widget.product_id.clone()),
            created_at_ms: Set(now_ms),
        };
        // A repeat inserts nothing: no error, so the transaction stays
        // usable on PostgreSQL too.
        let first = OnConflict::columns([widget::Column::CustomerId, widget::Column::RequestId])
            .do_nothing()
            .to_owned();
        let mut insert = widget::Entity::insert(row).on_conflict(first).into_query();
        insert.returning_col(widget::Column::Id);
        let event = events::created(&widget);
        if !self.ledger.record(&insert, vec![event]).await?.is_empty() {
            return Ok(widget);
        }
        let made = widget::Entity::find()
            .filter(widget::Column::CustomerId.eq(&new.customer_id))
            .filter(widget::Column::RequestId.eq(&new.request_id))
            .one(self.ledger.db())
            .await?
            .map(Widget::from)
            .ok_or_else(|| {
                WidgetsError::from(sea_orm::DbErr::RecordNotFound(
                    "the widget its request id names".to_owned(),
                ))
            })?;
        if made.title != new.title
            || made.description != new.description
            || made.product_id != new.product_id
        {
            return Err(WidgetsError::RequestIdReused);
        }
        Ok(made)
    }

    /// A page of the customer's widgets, newest first, and whether more
    /// follow.
    pub async fn page(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<Widget>, bool), WidgetsError> {
        let mut query = widget::Entity::find().filter(widget::Column::CustomerId.eq(customer_id));
        if let Some(after) = &page.after {
            query = query.filter(
                Condition::any()
                    .add(widget::Column::CreatedAtMs.lt(after.created_at_ms))
                    .add(
                        Condition::all()
                            .add(widget::Column::CreatedAtMs.eq(after.created_at_ms))
                            .add(widget::Column::Id.lt(after.id.as_str())),
                    ),
            );
        }
        let mut widgets: Vec<Widget> = query
            .order_by_desc(widget::Column::CreatedAtMs)
            .order_by_desc(widget::Column::Id)
            .limit(page.size + 1)
            .all(self.ledger.db())
            .await?
            .into_iter()
            .map(Widget::from)
            .collect();
        let more = widgets.len() as u64 > page.size;
        widgets.truncate(usize::try_from(page.size).unwrap_or(usize::MAX));
        Ok((widgets, more))
    }
}
