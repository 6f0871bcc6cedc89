//! Everything that can go wrong in payments, typed; mapped to Connect codes
//! once, in `api`.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// The processor refused the card; `reason` is machine-readable.
    #[error("the card was declined")]
    Declined { reason: &'static str },

    /// A token the processor never issued.
    #[error("payment_token: {token:?} is not a token this processor issued (try tok_visa)")]
    UnknownToken { token: String },

    #[error("the payment processor is unavailable, try again later")]
    ProcessorUnavailable,

    #[error("idempotency_key: already used for a charge of {existing}, not {requested}")]
    KeyReused { existing: String, requested: String },

    #[error("idempotency_key: voided by a refund before any charge; use a new key")]
    KeyVoided,

    #[error("you may only charge yourself")]
    NotYourself,

    #[error("payment {id:?} not found")]
    NotFound { id: String },

    /// Only the shop's services undo the charges they made (an order's).
    #[error("this charge was made by the shop for an order: cancel the order instead")]
    NotYourCharge,

    /// Its own database failed, or holds what this code cannot read.
    #[error(transparent)]
    Storage(#[from] shop_kit::db::StorageError),
}

impl PaymentsError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DbErr> for PaymentsError {
    fn from(error: DbErr) -> Self {
        Self::Storage(error.into())
    }
}
