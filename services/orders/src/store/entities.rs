//! The orders database's tables, as sea-orm entities.

pub mod order {
    use sea_orm::entity::prelude::*;

    /// An order: its lines (a JSON array, fixed once placed) and, beside
    /// them, where its saga stands (they change together: one row, one
    /// statement per transition).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub idempotency_key: String,
        pub status: String,
        /// Empty, or a `CancelReason` as stored; its words beside it.
        pub cancel_reason: String,
        pub cancel_message: String,
        pub total_minor_units: i64,
        pub currency_code: String,
        pub payment_token: String,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
        pub version: i64,
        pub lines: String,
        pub saga_step: String,
        pub saga_payment_id: String,
        pub saga_attempts: i32,
        pub saga_next_attempt_at_ms: i64,
        pub saga_deadline_at_ms: i64,
        pub saga_cancel_requested: bool,
        pub saga_cancel_reason: String,
        pub saga_cancel_message: String,
        pub saga_lease_until_ms: i64,
        pub saga_traceparent: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_history {
    use sea_orm::entity::prelude::*;

    /// The read model behind ListOrders: one row per order, as its latest
    /// event tells it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub user_id: String,
        pub status: String,
        pub cancel_reason: String,
        pub cancel_message: String,
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
