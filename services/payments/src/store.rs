//! The payments database: the only module that touches it.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QueryTrait,
    sea_query::{Expr, OnConflict},
};
use shop_kit::events::Ledger;

use crate::{
    domain::{Amount, Payer, Payment, PaymentStatus},
    error::PaymentsError,
    events,
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
        pub charged_by: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl TryFrom<payment::Model> for Payment {
    type Error = PaymentsError;

    fn try_from(row: payment::Model) -> Result<Self, PaymentsError> {
        Ok(Self {
            status: PaymentStatus::parse(&row.status)?,
            charged_by: Payer::parse(&row.charged_by)?,
            id: row.id,
            user_id: row.user_id,
            reference: row.reference,
            amount: Amount {
                currency_code: row.currency_code,
                minor_units: row.amount_minor_units,
            },
        })
    }
}

/// Query access to payments' own database.
#[derive(Clone, Debug)]
pub struct Store {
    /// The database, and the relay its committed payment events go to.
    pub ledger: Ledger,
}

impl Store {
    /// The payment `payer` made for `user_id` with `key`: a customer's keys
    /// and the services' keys for that customer never meet.
    pub async fn by_key(
        &self,
        user_id: &str,
        payer: Payer,
        key: &str,
    ) -> Result<Option<Payment>, PaymentsError> {
        payment::Entity::find()
            .filter(payment::Column::UserId.eq(user_id))
            .filter(payment::Column::ChargedBy.eq(payer.as_str()))
            .filter(payment::Column::IdempotencyKey.eq(key))
            .one(self.ledger.db())
            .await?
            .map(Payment::try_from)
            .transpose()
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<Payment>, PaymentsError> {
        payment::Entity::find_by_id(id.to_owned())
            .one(self.ledger.db())
            .await?
            .map(Payment::try_from)
            .transpose()
    }

    /// Records a captured charge with its payment.captured event; if the
    /// caller's key was recorded already (a racing repeat, or voided),
    /// returns that one instead.
    pub async fn record_capture(
        &self,
        key: &str,
        payment: Payment,
        now: i64,
    ) -> Result<Payment, PaymentsError> {
        self.record_first(key, payment, now).await
    }

    /// Records that no charge will be made with the caller's key, unless
    /// one was: then returns that one.
    pub async fn record_void(
        &self,
        key: &str,
        voided: Payment,
        now: i64,
    ) -> Result<Payment, PaymentsError> {
        self.record_first(key, voided, now).await
    }

    /// Inserts `payment` for `key` (and its event) unless the key has a
    /// payment already, which it returns instead.
    async fn record_first(
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
            status: Set(payment.status.as_str().to_owned()),
            charged_by: Set(payment.charged_by.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // A repeat (or a key voided first) inserts nothing: no error, so
        // the transaction stays usable on PostgreSQL too.
        let first = OnConflict::columns([
            payment::Column::UserId,
            payment::Column::ChargedBy,
            payment::Column::IdempotencyKey,
        ])
        .do_nothing()
        .to_owned();
        let mut insert = payment::Entity::insert(row).on_conflict(first).into_query();
        insert.returning_col(payment::Column::Id);
        let event = events::payment_event(&payment).into_iter().collect();
        if self.ledger.record(&insert, event).await?.is_empty() {
            return self
                .by_key(&payment.user_id, payment.charged_by, key)
                .await?
                .ok_or(PaymentsError::from(sea_orm::DbErr::RecordNotFound(
                    "the payment its key names".to_owned(),
                )));
        }
        Ok(payment)
    }

    /// Marks a captured payment refunded, once, with its payment.refunded
    /// event; the payment as it then is (`None` if unknown).
    pub async fn refund(&self, id: &str, now: i64) -> Result<Option<Payment>, PaymentsError> {
        let txn = shop_kit::db::begin(self.ledger.db()).await?;
        let moved = payment::Entity::update_many()
            .col_expr(
                payment::Column::Status,
                Expr::value(PaymentStatus::Refunded.as_str()),
            )
            .col_expr(payment::Column::UpdatedAt, Expr::value(now))
            .filter(payment::Column::Id.eq(id))
            .filter(payment::Column::Status.eq(PaymentStatus::Captured.as_str()))
            .exec_with_returning(&txn)
            .await?;
        let Some(refunded) = moved.into_iter().next() else {
            txn.rollback().await?;
            return self.by_id(id).await;
        };
        let refunded = Payment::try_from(refunded)?;
        let event = events::payment_event(&refunded);
        self.ledger.commit(txn, event.into_iter().collect()).await?;
        Ok(Some(refunded))
    }
}
