//! Opening a service's own database: SQLite by default (a file per service,
//! created on first use), PostgreSQL when the URL says so.

use std::{path::Path, time::Duration};

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

/// The SQLite URL of a service's file under `data_dir`.
pub fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(format!("{service}.db")).display()
    )
}

/// Connects to `url`; for SQLite, creates the parent folder and turns on WAL
/// so readers do not wait for writers.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or_default();
        if let Some(parent) = Path::new(file)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(if url.starts_with("sqlite:") { 8 } else { 16 })
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if url.starts_with("sqlite:") {
        use sea_orm::ConnectionTrait;
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    Ok(db)
}

/// Whether `error` is a unique-constraint violation, on SQLite and
/// PostgreSQL alike (how a racing repeat of an idempotent write shows up).
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Hides the password of a database URL for logs and banners.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://shop:secret@db:5432/catalog"),
            "postgres://shop:***@db:5432/catalog"
        );
        assert_eq!(
            redact("sqlite://data/catalog.db?mode=rwc"),
            "sqlite://data/catalog.db?mode=rwc"
        );
        assert_eq!(
            redact("postgres://shop@db/catalog"),
            "postgres://shop@db/catalog"
        );
    }

    #[test]
    fn sqlite_url_is_one_file_per_service() {
        assert_eq!(
            sqlite_url(Path::new("data"), "catalog"),
            "sqlite://data/catalog.db?mode=rwc"
        );
    }
}
