//! The migrations lock of one service's database: replicas started
//! together take turns. PostgreSQL: a session advisory lock on a connection
//! of its own (the server frees it if the process dies). SQLite: an
//! exclusive lock on `<database>.migrations.lock`, beside the file.

use sea_orm_migration::sea_orm::{
    DatabaseBackend, DatabaseConnection,
    sqlx::{self, pool::PoolConnection},
};

use super::MigrateError;

/// A service's migrations lock, held until [`Self::release`]d (or
/// dropped: a PostgreSQL session that still holds it is then closed, which
/// frees it; a file lock goes with its file).
#[must_use = "the lock is held until released"]
pub struct MigrationLock(Held);

enum Held {
    Postgres {
        connection: PoolConnection<sqlx::Postgres>,
        key: i64,
    },
    File(std::fs::File),
    Nothing,
    Released,
}

/// The advisory lock's key for `service`: FNV-1a of a fixed text, so every
/// version of the shop takes the same lock.
fn key(service: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("connect-shop migrations {service}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl MigrationLock {
    /// Waits for the lock and takes it (the migrations take it
    /// themselves; a test holds it to be another replica, or the Job).
    pub async fn take(
        db: &DatabaseConnection,
        service: &'static str,
    ) -> Result<Self, MigrateError> {
        let failed = |reason: String| MigrateError::Lock { service, reason };
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                let mut connection = pool.acquire().await.map_err(|e| failed(e.to_string()))?;
                let key = key(service);
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(key)
                    .execute(&mut *connection)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                Ok(Self(Held::Postgres { connection, key }))
            }
            DatabaseBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                let file = pool.connect_options().get_filename().to_owned();
                if file.as_os_str().is_empty() || file.to_string_lossy().starts_with(':') {
                    return Ok(Self(Held::Nothing));
                }
                let mut path = file.into_os_string();
                path.push(".migrations.lock");
                let locked = tokio::task::spawn_blocking(move || {
                    let lock = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)?;
                    lock.lock()?;
                    Ok::<_, std::io::Error>(lock)
                })
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))?;
                Ok(Self(Held::File(locked)))
            }
            _ => Ok(Self(Held::Nothing)),
        }
    }

    /// Lets the next replica go.
    pub async fn release(mut self) {
        match std::mem::replace(&mut self.0, Held::Released) {
            Held::Postgres {
                mut connection,
                key,
            } => {
                if sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut *connection)
                    .await
                    .is_err()
                {
                    // The server frees it with the session.
                    connection.close_on_drop();
                }
            }
            Held::File(lock) => {
                let _ = lock.unlock();
            }
            Held::Nothing | Held::Released => {}
        }
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        // Not released (an error on the way): a pooled connection must not
        // go back to the pool holding the lock.
        if let Held::Postgres { connection, .. } = &mut self.0 {
            connection.close_on_drop();
        }
    }
}
