//! Replicas of a service started at the same moment on one fresh database
//! take turns migrating it: every migration applied once, none crashing; a
//! database a newer version migrated is refused with a clear message.
//! SQLite by default; PostgreSQL with `SHOP_TEST_DATABASE_URL`
//! (`just test-postgres`), where replicas racing used to crash (`duplicate
//! key ... pg_type_typname_nsp_index`).

use sea_orm::{ConnectionTrait, Statement};
use shop_kit::testing::TestDatabase;
use shop_migrations::{MigrateError, MigratorTrait};

async fn applied_versions(url: &str, table: &str) -> Vec<String> {
    let db = shop_kit::db::connect("test", url).await.expect("connect");
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT version FROM {table} ORDER BY version"),
    ))
    .await
    .expect("versions")
    .into_iter()
    .map(|row| row.try_get::<String>("", "version").expect("version"))
    .collect()
}

#[tokio::test]
async fn replicas_started_together_apply_each_migration_once() {
    let database = TestDatabase::new("payments").await;
    // Six "processes": each its own pool, all migrating at once.
    let replicas = (0..6).map(|_| {
        let url = database.url.clone();
        tokio::spawn(async move {
            let db = shop_kit::db::connect("payments", &url)
                .await
                .expect("connect");
            shop_migrations::up::<shop_migrations::payments::Migrator>(&db, "payments").await
        })
    });
    let mut applied_by = Vec::new();
    for replica in futures::future::join_all(replicas).await {
        let applied = replica.expect("join").expect("migrated without a crash");
        applied_by.push(applied.now.len());
    }
    let total = shop_migrations::payments::Migrator::migrations().len();
    assert_eq!(
        applied_by.iter().sum::<usize>(),
        total,
        "each migration applied by exactly one replica: {applied_by:?}"
    );
    assert_eq!(
        applied_versions(&database.url, "payments_migrations")
            .await
            .len(),
        total
    );
}

#[tokio::test]
async fn a_database_a_newer_version_expanded_is_run_on_and_one_it_contracted_refused() {
    let database = TestDatabase::new("orders").await;
    let db = shop_kit::db::connect("orders", &database.url)
        .await
        .expect("connect");
    let applied = shop_migrations::up::<shop_migrations::orders::Migrator>(&db, "orders")
        .await
        .expect("migrated");
    assert!(!applied.now.is_empty());
    let again = shop_migrations::up::<shop_migrations::orders::Migrator>(&db, "orders")
        .await
        .expect("up to date");
    assert!(again.now.is_empty(), "nothing left: {again:?}");
    assert_eq!(again.latest, applied.latest);

    // A later version expanded the schema: this one runs on it (a rollback).
    db.execute_unprepared(
        "INSERT INTO orders_migrations (version, applied_at) \
         VALUES ('m20991231_000001_from_the_future', 0)",
    )
    .await
    .expect("a newer migration");
    let rolled_back = shop_migrations::up::<shop_migrations::orders::Migrator>(&db, "orders")
        .await
        .expect("runs on an expanded schema");
    assert_eq!(rolled_back.newer, ["m20991231_000001_from_the_future"]);
    assert!(rolled_back.now.is_empty());

    // Then it contracted it: this one would misread it.
    db.execute_unprepared(
        "INSERT INTO orders_migrations (version, applied_at) \
         VALUES ('m20991231_000002_contract_drop_status', 0)",
    )
    .await
    .expect("a newer migration");
    let refused = shop_migrations::up::<shop_migrations::orders::Migrator>(&db, "orders")
        .await
        .expect_err("refused");
    assert!(matches!(refused, MigrateError::Newer { .. }), "{refused:?}");
    let message = refused.to_string();
    assert!(
        message.contains("newer version")
            && message.contains("m20991231_000002_contract_drop_status"),
        "{message}"
    );
}

/// A replica that fails while it holds the lock (its first rows could not
/// be written) must not keep the others waiting: the lock dropped
/// unreleased is freed (a PostgreSQL session holding it is closed, not
/// returned to the pool with it).
#[tokio::test]
async fn a_lock_dropped_unreleased_lets_the_next_replica_go() {
    let database = TestDatabase::new("payments").await;
    let first = shop_kit::db::connect("payments", &database.url)
        .await
        .expect("connect");
    let (_, lock) =
        shop_migrations::up_holding::<shop_migrations::payments::Migrator>(&first, "payments")
            .await
            .expect("migrated");
    drop(lock);
    let next = shop_kit::db::connect("payments", &database.url)
        .await
        .expect("connect");
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        shop_migrations::up::<shop_migrations::payments::Migrator>(&next, "payments"),
    )
    .await
    .expect("the lock was freed")
    .expect("migrated");
    assert!(again.now.is_empty(), "{:?}", again.now);
    // The first replica's pool still works and takes the lock again.
    shop_migrations::up::<shop_migrations::payments::Migrator>(&first, "payments")
        .await
        .expect("the first pool migrates again");
}
