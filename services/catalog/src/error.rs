//! Everything that can go wrong in the catalog, typed; mapped to Connect
//! codes once, in `api`.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request itself is wrong; `field` names the offending field.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// A page token this service did not issue (tokens are opaque: no
    /// schema can tell a valid-looking one from a made-up one).
    #[error("page_token: is not a token this service issued")]
    PageTokenNotIssued,

    #[error("product {id:?} not found")]
    ProductNotFound { id: String },

    /// A stock change would take a product below zero.
    #[error("product {id:?} has {on_hand} in stock, {requested} requested")]
    InsufficientStock {
        id: String,
        on_hand: i32,
        requested: i32,
    },

    #[error("reservation {id:?} not found")]
    ReservationNotFound { id: String },

    /// The reservation was already settled the other way.
    #[error("reservation {id:?} is already {status}")]
    ReservationSettled { id: String, status: &'static str },

    #[error("a product with SKU {sku:?} already exists")]
    DuplicateSku { sku: String },

    /// Its own database failed, or holds what this code cannot read.
    #[error(transparent)]
    Storage(#[from] shop_kit::db::StorageError),
}

impl CatalogError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DbErr> for CatalogError {
    fn from(error: DbErr) -> Self {
        Self::Storage(error.into())
    }
}
