//! A service's storage failure as its caller hears it: the same for every
//! service, so mapped here once.

use connectrpc_axum::{Code, ConnectError};
use shop_kit_db::StorageError;

/// `failure` of `service`'s own database as a Connect error: the detail is
/// logged here, never answered. A database that fails is `unavailable`
/// (it may answer again); a record this code cannot read, or a schema it
/// could not bring up to date, is `internal`.
pub fn storage_failure(service: &str, failure: &StorageError) -> ConnectError {
    match failure {
        StorageError::Database(error) => {
            tracing::error!(service, %error, "database error");
            ConnectError::new(
                Code::Unavailable,
                format!("the {service} database is unavailable"),
            )
        }
        StorageError::CorruptRecord(error) => {
            tracing::error!(service, %error, "unreadable record");
            ConnectError::new(Code::Internal, format!("the {service} service failed"))
        }
        StorageError::Migrate(error) => {
            tracing::error!(service, %error, "migrations");
            ConnectError::new(Code::Internal, format!("the {service} service failed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_hears_which_service_not_what_broke() {
        let down = storage_failure(
            "catalog",
            &sea_orm_error("connection refused to db.internal:5432").into(),
        );
        assert_eq!(down.code(), Code::Unavailable);
        assert_eq!(down.message(), Some("the catalog database is unavailable"));
        let corrupt = storage_failure("orders", &StorageError::unknown("status", "SHIPPED?"));
        assert_eq!(corrupt.code(), Code::Internal);
        assert!(!corrupt.message().unwrap_or_default().contains("SHIPPED"));
    }

    fn sea_orm_error(message: &str) -> sea_orm::DbErr {
        sea_orm::DbErr::Custom(message.to_owned())
    }
}
