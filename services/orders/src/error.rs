//! Everything that can go wrong in orders, typed; mapped to Connect codes
//! once, in `api`.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// A page token this service did not issue (tokens are opaque).
    #[error("page_token: is not a token this service issued")]
    PageTokenNotIssued,

    /// Lines of one product add up to more than an order may hold of it
    /// (each line is within the contract's bounds; their sum is a rule
    /// across lines).
    #[error("items.quantity: at most {max} of one product ({product_id:?}: {wanted})")]
    TooManyOfOneProduct {
        product_id: String,
        wanted: i32,
        max: i32,
    },

    /// Not found, or not the caller's: existence must not leak.
    #[error("order {id:?} not found")]
    NotFound { id: String },

    /// An order line names a product the catalog does not have (the
    /// catalog's words name it).
    #[error("items.product_id: {0}")]
    UnknownProduct(String),

    #[error("order {id:?} is {status} and can no longer be cancelled")]
    NotCancellable { id: String, status: &'static str },

    /// The customer's key placed a different order before: a repeat must
    /// ask for the same products, quantities and payment token.
    #[error(
        "idempotency_key: {key:?} already placed a different order; use a new key for a new order"
    )]
    KeyReused { key: String },

    /// The payment processor never issued this token (its words).
    #[error("{0}")]
    UnknownPaymentToken(String),

    /// No room for the call, here (too many calls to the peer in flight)
    /// or at the peer (it refused it unprocessed): said as the kit's
    /// `busy_message` says it, never as the peer being down.
    #[error("{0}")]
    Busy(String),

    /// A service this one depends on did not answer.
    #[error("the {service} service is unavailable, try again later")]
    Unavailable { service: &'static str },

    /// The caller's deadline passed while the {service} service was asked:
    /// the caller's doing, not the service's (which may be fine).
    #[error("the call's deadline passed while the {service} service was asked")]
    DeadlinePassed { service: &'static str },

    /// An order event this service cannot read (never a client's doing).
    #[error("malformed order event: {0}")]
    MalformedEvent(String),

    #[error("events: {0}")]
    Events(#[from] shop_kit::events::EventsError),

    /// Its own database failed, or holds what this code cannot read.
    #[error(transparent)]
    Storage(#[from] shop_kit::db::StorageError),
}

impl OrdersError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DbErr> for OrdersError {
    fn from(error: DbErr) -> Self {
        Self::Storage(error.into())
    }
}
