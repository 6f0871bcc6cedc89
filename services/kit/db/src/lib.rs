//! Opening a service's own database: SQLite by default (a file per service,
//! created on first use), PostgreSQL when the URL says so.

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, SqlErr,
    TransactionTrait,
    sqlx::{
        postgres::PgSslMode,
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
};

/// The SQLite URL of a service's file under `data_dir`.
pub fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(format!("{service}.db")).display()
    )
}

/// Connects `service` to its database at `url`; for SQLite, creates the
/// file (and its folder) only its owner may read. The pool's settings are
/// in [`pool_options`]. Every statement run on it is counted in
/// `shop_db_statements_total{service}` (and logged at `shop::sql=trace`
/// with its text, and a span of the work that ran it when traces are on),
/// so a change that adds round trips shows.
pub async fn connect(service: &'static str, url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or_default();
        if !file.is_empty() && !file.starts_with(':') {
            create_private_file(Path::new(file)).await?;
        }
    }
    let mut db = open(url).await.map_err(explain_untrusted)?;
    let statements = metrics::counter!(STATEMENTS_TOTAL, "service" => service);
    let system = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgresql"
    };
    db.set_metric_callback(move |info| {
        statements.increment(1);
        tracing::trace!(target: "shop::sql", service, failed = info.failed, sql = %info.statement.sql);
        shop_kit_observe::traces::record_statement(
            system,
            &info.statement.sql,
            info.elapsed,
            info.failed,
        );
    });
    Ok(db)
}

/// A database certificate from a CA the client does not trust (a private
/// one: RDS, Cloud SQL, a company's), said with what to do about it.
fn explain_untrusted(error: DbErr) -> DbErr {
    let text = error.to_string();
    if !text.contains("UnknownIssuer") {
        return error;
    }
    DbErr::Custom(format!(
        "{text}: the database's certificate is not trusted: its CA is none of the public \
         roots this client trusts; give that CA's PEM file as PGSSLROOTCERT (or sslrootcert= in \
         the URL)"
    ))
}

/// How long SQLite waits for a lock another connection holds; also how
/// long opening a new file waits for another pool switching it to WAL.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the pool. A new SQLite file is switched to WAL by the first pool
/// that opens it, under an exclusive lock that SQLite's busy timeout does
/// not wait for (sqlx says so of `journal_mode`): a replica opening the
/// file at that moment is told "database is locked", and tries again
/// within [`BUSY_TIMEOUT`].
async fn open(url: &str) -> Result<DatabaseConnection, DbErr> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match Database::connect(pool_options(url)).await {
            Err(error) if is_locked(&error) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            opened => return opened,
        }
    }
}

/// Whether connecting failed with SQLite's SQLITE_BUSY (code 5, or one
/// of its extended codes).
fn is_locked(error: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(error)) = error else {
        return false;
    };
    error
        .as_database_error()
        .and_then(|error| error.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// The readiness check of a service whose database must answer: a ping
/// (for `Readiness::when`).
pub fn ready_check(
    db: DatabaseConnection,
) -> impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await.map_err(|e| format!("database: {e}")) })
    }
}

/// Begins a transaction, in a task of its own so that the caller being
/// dropped half-way (a deadline passed, the client went away) cannot leave
/// the pooled connection inside a transaction nobody knows of.
///
/// sqlx 0.9 sends `BEGIN` and counts the transaction only once the server
/// has answered; a future dropped in between leaves the server in a
/// transaction while sqlx thinks the connection idle, and returns it to the
/// pool. The next statement run on it (say a CommitStock's update,
/// answered ok) then lives inside that transaction and is lost when it is
/// rolled back. Here the `BEGIN` always completes: if nobody is left to
/// take the transaction, dropping it rolls it back, as it should.
/// (`clippy.toml` forbids `TransactionTrait::begin` everywhere else.)
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let db = db.clone();
    #[allow(clippy::disallowed_methods)]
    let begun = tokio::spawn(async move { db.begin().await });
    begun
        .await
        .map_err(|e| DbErr::Custom(format!("beginning a transaction: {e}")))?
}

/// The parameters of a PostgreSQL statement written by hand (one that
/// sea-query cannot build, such as common table expressions that change
/// rows), numbered `$1`, `$2`... in the order they are added.
#[derive(Debug, Default)]
pub struct Params(Vec<sea_orm::Value>);

impl Params {
    /// Parameters numbered on from those a built statement already has.
    pub fn after(statement: &mut sea_orm::Statement) -> Self {
        Self(
            statement
                .values
                .take()
                .map(|values| values.0)
                .unwrap_or_default(),
        )
    }

    /// Adds `value`; its placeholder.
    pub fn add(&mut self, value: impl Into<sea_orm::Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }

    /// The statement `sql` with these parameters.
    pub fn statement(self, sql: impl Into<String>) -> sea_orm::Statement {
        sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, self.0)
    }
}

/// Statements run on a service's database (transaction control aside).
pub const STATEMENTS_TOTAL: &str = "shop_db_statements_total";

/// A connection idle this long is pinged before it is handed out (a
/// database restarted meanwhile is noticed); a busy one is not, since a
/// ping before every query doubled the round trips.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(30);

/// A process's connections to its PostgreSQL database, at most (opened as
/// calls need them, closed when idle).
pub const POSTGRES_POOL_MAX: u32 = 16;

/// The pool for `url`. Everything is set in the connect options, so it
/// holds for every pooled connection (a PRAGMA run as a statement reaches
/// only the one connection that ran it):
/// - SQLite: one connection (see below), WAL, `synchronous=NORMAL`
///   (WAL stays consistent after a crash; a power cut may lose the last
///   commits, not corrupt the file), foreign keys, 5 s of busy waiting;
/// - PostgreSQL on this machine (localhost, a loopback address or a unix
///   socket) without TLS unless the URL or `PGSSLMODE` asks for it: sqlx's
///   default, "prefer", ran TLS over loopback.
fn pool_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        // SQLite takes one writer at a time: with one connection, writers
        // queue here (in order, asleep) instead of colliding and sleeping
        // in SQLite's busy handler (1, 2, 5, 10 ms...), and there is one
        // worker thread to hand statements to, not eight.
        .max_connections(if url.starts_with("sqlite:") {
            1
        } else {
            POSTGRES_POOL_MAX
        })
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(PING_WHEN_IDLE_FOR)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT)
        });
    let tls_asked_for =
        url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some_and(|m| !m.is_empty());
    if !tls_asked_for {
        options.map_sqlx_postgres_opts(|postgres| {
            if is_this_machine(postgres.get_host()) {
                postgres.ssl_mode(PgSslMode::Disable)
            } else {
                postgres
            }
        });
    }
    options
}

/// Whether a PostgreSQL host is this machine: a unix socket folder, the
/// name localhost or a loopback address.
fn is_this_machine(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// What a service's own database can fail with, the same in every
/// service: its error carries this as one variant (`Storage`), and the kit
/// maps it to Connect once (`shop_kit::storage_failure`): the caller hears
/// only that the service is unavailable, the detail goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Database(#[from] DbErr),

    /// A stored value this code does not know: never guessed at.
    #[error(transparent)]
    CorruptRecord(#[from] UnknownStoredValue),

    /// Bringing the schema up to date at start (never on a request).
    #[error("migrations: {0}")]
    Migrate(Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// A stored value this code does not know (see [`UnknownStoredValue`]).
    pub fn unknown(column: &'static str, value: &str) -> Self {
        Self::CorruptRecord(UnknownStoredValue::new(column, value))
    }

    /// The schema could not be brought up to date.
    pub fn migrate(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Migrate(Box::new(error))
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
    use std::str::FromStr;

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
        let db = connect("test", &url).await.expect("connect");
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

    /// A TCP proxy to `upstream` that holds every byte coming back for
    /// `delay`: a statement's answer arrives that much later.
    async fn slow_answers(upstream: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = server_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(delay).await;
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// A fresh PostgreSQL database reached through [`slow_answers`], with
    /// one pooled connection, and a direct connection to read it; `None`
    /// without `SHOP_TEST_DATABASE_URL` (PostgreSQL).
    async fn postgres_through_a_slow_link() -> Option<(DatabaseConnection, DatabaseConnection)> {
        use sea_orm::ConnectionTrait;
        let server = std::env::var("SHOP_TEST_DATABASE_URL").ok()?;
        if !server.starts_with("postgres") {
            return None;
        }
        let name = format!("test_kit_begin_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(pool_options(&server))
            .await
            .expect("admin");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        let direct_url = format!("{}/{name}", server.rsplit_once('/').expect("a path").0);
        let direct = Database::connect(pool_options(&direct_url))
            .await
            .expect("direct");
        direct
            .execute_unprepared("CREATE TABLE stock (n INTEGER); INSERT INTO stock VALUES (0);")
            .await
            .expect("table");
        let options = sea_orm::sqlx::postgres::PgConnectOptions::from_str(&direct_url)
            .expect("a PostgreSQL URL");
        let host = format!("{}:{}", options.get_host(), options.get_port());
        let upstream = tokio::net::lookup_host(host)
            .await
            .expect("PostgreSQL's address")
            .next()
            .expect("an address");
        let proxy = slow_answers(upstream, Duration::from_millis(150)).await;
        let proxied_url = direct_url.replacen(
            &format!("@{}:{}/", options.get_host(), options.get_port()),
            &format!("@{proxy}/"),
            1,
        );
        assert_ne!(proxied_url, direct_url, "the URL names host and port");
        let mut pooled = pool_options(&proxied_url);
        pooled.max_connections(1).min_connections(1);
        let pool = Database::connect(pooled).await.expect("pool");
        Some((pool, direct))
    }

    /// Cuts a transaction's start short (its caller gone while `BEGIN` is
    /// on its way), then runs one plain UPDATE on the pool's only
    /// connection: what a reader elsewhere sees of it.
    async fn update_after_a_cancelled_begin<F, Fut>(begin_with: F) -> Option<i32>
    where
        F: FnOnce(DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<DatabaseTransaction, DbErr>>,
    {
        use sea_orm::ConnectionTrait;
        let (pool, direct) = postgres_through_a_slow_link().await?;
        let cut = tokio::time::timeout(Duration::from_millis(50), begin_with(pool.clone())).await;
        assert!(cut.is_err(), "the begin was cut short");
        let updated = pool
            .execute_unprepared("UPDATE stock SET n = n + 1")
            .await
            .expect("update");
        assert_eq!(updated.rows_affected(), 1, "the update says it landed");
        let row = direct
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT n FROM stock",
            ))
            .await
            .expect("read")
            .expect("a row");
        Some(row.try_get_by_index::<i32>(0).expect("n"))
    }

    /// The lost CommitStock of issue 25: an UPDATE answered ok, never
    /// committed. Fails once sqlx counts a transaction it has sent BEGIN
    /// for: then `begin` below may go back to being sea-orm's own.
    #[tokio::test]
    async fn sqlx_leaves_a_connection_in_a_transaction_when_begin_is_cut_short() {
        #[allow(clippy::disallowed_methods)]
        let seen = update_after_a_cancelled_begin(|pool| async move { pool.begin().await }).await;
        if let Some(seen) = seen {
            assert_eq!(seen, 0, "the update ran inside the abandoned transaction");
        }
    }

    #[tokio::test]
    async fn a_begin_cut_short_leaves_the_connection_out_of_any_transaction() {
        let seen = update_after_a_cancelled_begin(|pool| async move { begin(&pool).await }).await;
        if let Some(seen) = seen {
            assert_eq!(seen, 1, "the update is committed and seen");
        }
    }

    /// Replicas opening one new SQLite file at the same moment all connect:
    /// the first to switch it to WAL needs an exclusive lock SQLite's busy
    /// timeout does not wait for, so the others used to fail with
    /// "database is locked" (issue 40, on a busy two-core machine).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_pools_opening_one_new_file_together_all_connect() {
        for round in 0..20 {
            let dir = std::env::temp_dir().join(format!("shop-db-{}", uuid::Uuid::new_v4()));
            let url = format!("sqlite://{}/new.db?mode=rwc", dir.display());
            let opened = (0..12).map(|_| {
                let url = url.clone();
                tokio::spawn(async move { connect("test", &url).await })
            });
            for pool in futures::future::join_all(opened).await {
                let pool = pool.expect("joined");
                if let Err(error) = pool {
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!("round {round}: {error}");
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The connection gets the settings from the connect options (so a
    /// connection the pool opens again gets them too), and there is one:
    /// a second writer waits for the first.
    #[tokio::test]
    async fn the_one_sqlite_connection_is_set_up() {
        use sea_orm::ConnectionTrait;
        let dir = std::env::temp_dir().join(format!("shop-db-{}", uuid::Uuid::new_v4()));
        let db = connect("catalog", &sqlite_url(&dir, "catalog"))
            .await
            .expect("connect");
        let held = vec![begin(&db).await.expect("begin")];
        let second = tokio::time::timeout(std::time::Duration::from_millis(200), begin(&db)).await;
        assert!(second.is_err(), "a second connection was handed out");
        for transaction in &held {
            let pragma = |name: &str| {
                transaction.query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!("PRAGMA {name}"),
                ))
            };
            let row = |found: Result<Option<sea_orm::QueryResult>, DbErr>| {
                found.expect("pragma").expect("a row")
            };
            let number = |found| row(found).try_get_by_index::<i64>(0).expect("a number");
            let journal: String = row(pragma("journal_mode").await)
                .try_get_by_index(0)
                .expect("a mode");
            assert_eq!(journal, "wal");
            assert_eq!(number(pragma("synchronous").await), 1, "NORMAL");
            assert_eq!(number(pragma("foreign_keys").await), 1);
            assert_eq!(number(pragma("busy_timeout").await), 5000);
        }
        for transaction in held {
            transaction.rollback().await.expect("rollback");
        }
        db.close().await.expect("close");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn this_machine_is_a_socket_localhost_or_loopback() {
        for host in [
            "/var/run/postgresql",
            "localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_this_machine(host), "{host}");
        }
        for host in ["db", "10.0.0.5", "db.example.com", "::2"] {
            assert!(!is_this_machine(host), "{host}");
        }
    }

    /// On the PostgreSQL of `just test-postgres` (Debian's, TLS on): a
    /// loopback URL connects without TLS, unless the URL asks for it.
    #[tokio::test]
    async fn postgres_on_loopback_skips_tls_unless_asked() {
        use sea_orm::ConnectionTrait;
        let Ok(server) = std::env::var("SHOP_TEST_DATABASE_URL") else {
            return;
        };
        if server.is_empty() || server.contains("sslmode=") {
            return;
        }
        let tls = |url: String| async move {
            let db = connect("test", &url).await.expect("connect");
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                ))
                .await
                .expect("pg_stat_ssl")
                .expect("a row");
            let on: bool = row.try_get_by_index(0).expect("ssl");
            let server_has_tls = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SHOW ssl",
                ))
                .await
                .expect("SHOW ssl")
                .expect("a row")
                .try_get_by_index::<String>(0)
                .expect("on or off")
                == "on";
            db.close().await.expect("close");
            (on, server_has_tls)
        };
        let (on, server_has_tls) = tls(server.clone()).await;
        assert!(!on, "TLS over loopback by default");
        if server_has_tls {
            let separator = if server.contains('?') { '&' } else { '?' };
            let (on, _) = tls(format!("{server}{separator}sslmode=require")).await;
            assert!(on, "sslmode=require must be honoured");
        }
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
