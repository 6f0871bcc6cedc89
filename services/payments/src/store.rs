//! The payments database: the only module that touches it.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr,
};

use crate::{
    domain::{Amount, Payment, PaymentStatus},
    error::PaymentsError,
};

mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub idempotency_key: String,
        pub reference: String,
        pub amount_minor_units: i64,
        pub currency_code: String,
        pub status: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl From<payment::Model> for Payment {
    fn from(row: payment::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            reference: row.reference,
            amount: Amount {
                currency_code: row.currency_code,
                minor_units: row.amount_minor_units,
            },
            status: PaymentStatus::parse(&row.status),
        }
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

    pub async fn by_key(&self, user_id: &str, key: &str) -> Result<Option<Payment>, PaymentsError> {
        Ok(payment::Entity::find()
            .filter(payment::Column::UserId.eq(user_id))
            .filter(payment::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
            .map(Payment::from))
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<Payment>, PaymentsError> {
        Ok(payment::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(Payment::from))
    }

    /// Records a captured charge; if the caller's key was recorded already
    /// (a racing repeat), returns that one instead.
    pub async fn record_capture(
        &self,
        key: &str,
        payment: Payment,
        now: i64,
    ) -> Result<Payment, PaymentsError> {
        let row = payment::ActiveModel {
            id: Set(payment.id.clone()),
            user_id: Set(payment.user_id.clone()),
            idempotency_key: Set(key.to_owned()),
            reference: Set(payment.reference.clone()),
            amount_minor_units: Set(payment.amount.minor_units),
            currency_code: Set(payment.amount.currency_code.clone()),
            status: Set(PaymentStatus::Captured.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match payment::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(payment),
            Err(error) if shop_kit::database::is_unique_violation(&error) => self
                .by_key(&payment.user_id, key)
                .await?
                .ok_or(PaymentsError::Database(error)),
            Err(error) => Err(error.into()),
        }
    }

    /// Marks a captured payment refunded, once.
    pub async fn refund(&self, id: &str, now: i64) -> Result<(), PaymentsError> {
        payment::Entity::update_many()
            .col_expr(
                payment::Column::Status,
                Expr::value(PaymentStatus::Refunded.as_str()),
            )
            .col_expr(payment::Column::UpdatedAt, Expr::value(now))
            .filter(payment::Column::Id.eq(id))
            .filter(payment::Column::Status.eq(PaymentStatus::Captured.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
