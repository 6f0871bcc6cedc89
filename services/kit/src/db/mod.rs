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

/// Connects to `url`; for SQLite, creates the file (and its folder) only
/// its owner may read, and turns on WAL so readers do not wait for writers.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or_default();
        if !file.is_empty() && !file.starts_with(':') {
            create_private_file(Path::new(file)).await?;
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

/// Creates `file` (mode 0600) and its missing folders (mode 0700) unless it
/// exists: a service's database may hold secrets (the users service's
/// signing key), so nobody else on the machine may read it. SQLite gives
/// its -wal and -shm files the database file's mode.
async fn create_private_file(file: &Path) -> Result<(), DbErr> {
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let failed = |what: &Path, e: std::io::Error| {
            DbErr::Custom(format!("cannot create {}: {e}", what.display()))
        };
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| failed(parent, e))?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(failed(&file, e)),
        }
    })
    .await
    .map_err(|e| DbErr::Custom(e.to_string()))?
}

/// A stored value the code does not know (a status, a step): a corrupt
/// record, reported, never read as some default. The value is kept short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored {column} {value:?} is not a known value")]
pub struct UnknownStoredValue {
    pub column: &'static str,
    pub value: String,
}

impl UnknownStoredValue {
    pub fn new(column: &'static str, value: &str) -> Self {
        Self {
            column,
            value: value.chars().take(32).collect(),
        }
    }
}

/// Whether `error` is a unique-constraint violation, on SQLite and
/// PostgreSQL alike (how a racing repeat of an idempotent write shows up).
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A service's database URL, which may hold a password: printed (Debug and
/// Display) with the password hidden; [`DatabaseUrl::expose`] for
/// connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL as given, password included: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
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

    #[tokio::test]
    async fn sqlite_files_and_their_folder_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("shop-db-{}", uuid::Uuid::new_v4()));
        let url = sqlite_url(&dir.join("data"), "users");
        let db = connect(&url).await.expect("connect");
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .await
            .expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("data")), 0o700);
        assert_eq!(mode(&dir.join("data/users.db")), 0o600);
        for side in ["users.db-wal", "users.db-shm"] {
            let path = dir.join("data").join(side);
            if path.exists() {
                assert_eq!(mode(&path), 0o600, "{side}");
            }
        }
        db.close().await.expect("close");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_database_url_prints_without_its_password() {
        let url = DatabaseUrl::from("postgres://shop:secret@db/orders");
        assert_eq!(url.to_string(), "postgres://shop:***@db/orders");
        assert!(!format!("{url:?}").contains("secret"));
        assert_eq!(url.expose(), "postgres://shop:secret@db/orders");
    }

    #[test]
    fn sqlite_url_is_one_file_per_service() {
        assert_eq!(
            sqlite_url(Path::new("data"), "catalog"),
            "sqlite://data/catalog.db?mode=rwc"
        );
    }
}
