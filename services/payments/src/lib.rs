//! The payments service: charges and refunds, served as
//! `shop.payments.v1.PaymentService` (customers) and the internal
//! `shop.payments.v1.OrderPaymentService` (the orders saga). Each charge is recorded exactly once
//! per caller and idempotency key; the processor is a deterministic fake
//! (see `domain::authorize`).

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod flags;
pub mod store;

/// Its schema, as `shop migrate payments` and its start apply it.
pub use shop_migrations::payments as migration;

use std::time::{SystemTime, UNIX_EPOCH};

use shop_kit::{
    RpcServer, Shutdown,
    app::{Context, Service, StartFailure},
    auth::TokenKeys,
    db::DatabaseUrl,
    events::{Broker, Ledger},
};

pub use error::PaymentsError;

use crate::{
    domain::{Amount, Charge, Payer, Payment, PaymentStatus},
    store::Store,
};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Charges and refunds.
#[derive(Clone, Debug)]
pub struct Payments {
    store: Store,
}

impl Payments {
    /// Opens the database (migrations applied), with events going through
    /// `broker` until `shutdown`.
    pub async fn open(
        database_url: &str,
        broker: Broker,
        shutdown: &Shutdown,
    ) -> Result<Self, PaymentsError> {
        let db = shop_kit::db::connect("payments", database_url).await?;
        shop_migrations::up::<shop_migrations::payments::Migrator>(&db, "payments")
            .await
            .map_err(shop_kit::db::StorageError::migrate)?;
        let ledger = Ledger::start(db, events::SERVICE, broker, Vec::new(), shutdown);
        Ok(Self {
            store: Store { ledger },
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Charges once per (caller, idempotency key): a repeat returns the
    /// first charge; a repeat with another amount is refused.
    pub async fn charge(&self, charge: &Charge<'_>) -> Result<Payment, PaymentsError> {
        let &Charge {
            customer: user_id,
            payer,
            idempotency_key,
            reference,
            currency_code,
            minor_units,
            payment_token,
        } = charge;
        let key = domain::idempotency_key(idempotency_key)?;
        let amount = Amount::new(currency_code, minor_units)?;
        // The processor charges once per key (a repeat is told apart by
        // it and by the store): authorized, then recorded unless the key
        // has its payment already, which is returned instead.
        domain::authorize(payment_token)?;
        let payment = Payment {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            reference: reference.to_owned(),
            amount: amount.clone(),
            status: PaymentStatus::Captured,
            charged_by: payer,
        };
        let recorded = self.store.record_capture(key, payment, now_secs()).await?;
        if recorded.status == PaymentStatus::Voided {
            return Err(PaymentsError::KeyVoided);
        }
        if recorded.amount != amount {
            return Err(PaymentsError::KeyReused {
                existing: recorded.amount.to_string(),
                requested: amount.to_string(),
            });
        }
        Ok(recorded)
    }

    /// The caller's own payment; anyone else's does not exist for them.
    pub async fn own(&self, user_id: &str, payment_id: &str) -> Result<Payment, PaymentsError> {
        self.store
            .by_id(payment_id)
            .await?
            .filter(|payment| payment.user_id == user_id)
            .ok_or_else(|| PaymentsError::NotFound {
                id: payment_id.to_owned(),
            })
    }

    /// Refunds the customer's payment, once, if `caller` may undo it.
    pub async fn refund(
        &self,
        caller: Payer,
        user_id: &str,
        payment_id: &str,
    ) -> Result<Payment, PaymentsError> {
        let payment = self.own(user_id, payment_id).await?;
        if !caller.may_undo(payment.charged_by) {
            return Err(PaymentsError::NotYourCharge);
        }
        self.store
            .refund(payment_id, now_secs())
            .await?
            .ok_or_else(|| PaymentsError::NotFound {
                id: payment_id.to_owned(),
            })
    }

    /// Undoes whatever `payer` charged with the customer's
    /// `idempotency_key`: refunds the payment if there is one, else voids
    /// the key so no charge is ever made with it (the call that would have
    /// made it may still be on its way). Keys are the payer's own: a
    /// customer's key never names a charge a service made.
    pub async fn refund_key(
        &self,
        payer: Payer,
        user_id: &str,
        idempotency_key: &str,
    ) -> Result<Payment, PaymentsError> {
        let key = domain::idempotency_key(idempotency_key)?;
        let voided = Payment {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            reference: String::new(),
            amount: Amount {
                currency_code: String::new(),
                minor_units: 0,
            },
            status: PaymentStatus::Voided,
            charged_by: payer,
        };
        let recorded = self.store.record_void(key, voided, now_secs()).await?;
        match recorded.status {
            PaymentStatus::Captured => self.refund(payer, user_id, &recorded.id).await,
            PaymentStatus::Refunded | PaymentStatus::Voided => Ok(recorded),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub payments: Payments,
}

/// Payments as it is started (by the launcher, `shop serve payments` and
/// the tests alike, through [`shop_kit::app::Launch`]).
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    /// NATS for events; in process when `None`.
    pub nats: Option<shop_kit::events::NatsServer>,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: TokenKeys,
}

impl Service for Config {
    const NAME: &'static str = "payments";
    type Handle = Payments;

    async fn open(&self, context: &Context) -> Result<Payments, StartFailure> {
        let broker = Broker::new(self.nats.as_ref(), Self::NAME).await?;
        Payments::open(self.database_url.expose(), broker, &context.shutdown)
            .await
            .map_err(|e| StartFailure::database(&self.database_url, e))
    }

    async fn seed(&self, _: &Payments) -> Result<String, StartFailure> {
        Ok("a fake processor: tok_visa, tok_declined, tok_unavailable".to_owned())
    }

    /// PaymentService on all three protocols (GetPayment and
    /// CheckPaymentToken also on GET), and the internal OrderPaymentService.
    async fn server(
        &self,
        payments: Payments,
        context: &Context,
    ) -> Result<RpcServer, StartFailure> {
        let server = context
            .server(payments.store().ledger.db(), &self.token_keys)
            .await?;
        let state = AppState { payments };
        Ok(server
            .serve(api::payment_service(state.clone()))
            .serve(api::order_payment_service(state)))
    }
}
