//! Everything that can go wrong in the users service, typed; mapped to
//! Connect codes once, in `api`.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The request itself is wrong; `field` names the offending field.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    #[error("email: an account with this email already exists")]
    EmailTaken,

    /// Deliberately vague: which of the two was wrong is not said.
    #[error("wrong email or password")]
    WrongCredentials,

    #[error("the refresh token is invalid, expired or already used: sign in again")]
    InvalidRefreshToken,

    #[error("the account no longer exists")]
    UnknownUser,

    #[error("the client certificate names the service {certified}, not {asked}")]
    CertifiedAsAnother { certified: String, asked: String },

    #[error("signing key: {0}")]
    SigningKey(String),

    #[error("password hashing: {0}")]
    Hashing(String),

    /// Every password-hashing slot is busy: the shop is saturated.
    #[error("too many sign-ins at this moment: try again in a second")]
    HashingBusy,

    /// Too many attempts from this address, or failed log-ins for this
    /// email; the same words whether or not the account exists.
    #[error("too many sign-in attempts: try again in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: std::time::Duration },

    /// Its own database failed, or holds what this code cannot read.
    #[error(transparent)]
    Storage(#[from] shop_kit::db::StorageError),
}

impl UsersError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DbErr> for UsersError {
    fn from(error: DbErr) -> Self {
        Self::Storage(error.into())
    }
}
