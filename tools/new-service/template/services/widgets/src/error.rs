//! Everything that can go wrong in widgets, typed; mapped to Connect codes
//! once, in `api`.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum WidgetsError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    #[error("page_token: is not a token this service issued")]
    PageTokenNotIssued,

    #[error("request_id: already used for another widget; use a new one")]
    RequestIdReused,

    #[error("widget {id:?} not found")]
    NotFound { id: String },

    #[error("product_id: the catalog has no product {id:?}")]
    NoSuchProduct { id: String },

    /// The catalog did not answer whether the product exists.
    #[error("the catalog: {0}")]
    Catalog(tonic::Status),

    /// Its own database failed, or holds what this code cannot read.
    #[error(transparent)]
    Storage(#[from] shop_kit::db::StorageError),
}

impl From<DbErr> for WidgetsError {
    fn from(error: DbErr) -> Self {
        Self::Storage(error.into())
    }
}
