//! The payload columns of the tables that change all the time keep no
//! planner statistics on PostgreSQL (see `shop_migrations`' statistics
//! module): each autovacuum's analysis no longer sorts their values. On
//! SQLite the migrations change nothing and still apply.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use shop_kit::testing::TestDatabase;

/// `table.column`'s statistics target: 0 none, -1 the server's default.
async fn statistics_target(db: &sea_orm::DatabaseConnection, table: &str, column: &str) -> i32 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT COALESCE(attstattarget, -1)::int4 AS target FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attname = $2",
            [table.into(), column.into()],
        ))
        .await
        .expect("pg_attribute")
        .unwrap_or_else(|| panic!("no column {table}.{column}"));
    row.try_get("", "target").expect("target")
}

#[tokio::test]
async fn payloads_keep_no_statistics_and_keys_keep_theirs() {
    let databases = [
        TestDatabase::new("orders").await,
        TestDatabase::new("catalog").await,
        TestDatabase::new("payments").await,
    ];
    let [orders, catalog, payments] = &databases;
    let orders = shop_kit::db::connect("orders", &orders.url)
        .await
        .expect("orders");
    let catalog = shop_kit::db::connect("catalog", &catalog.url)
        .await
        .expect("catalog");
    let payments = shop_kit::db::connect("payments", &payments.url)
        .await
        .expect("payments");
    shop_migrations::up::<shop_migrations::orders::Migrator>(&orders, "orders")
        .await
        .expect("orders migrated");
    shop_migrations::up::<shop_migrations::catalog::Migrator>(&catalog, "catalog")
        .await
        .expect("catalog migrated");
    shop_migrations::up::<shop_migrations::payments::Migrator>(&payments, "payments")
        .await
        .expect("payments migrated");
    if orders.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let none = [
        (&orders, "orders", "lines"),
        (&orders, "orders", "saga_traceparent"),
        (&orders, "order_history", "items"),
        (&orders, "orders_outbox", "data"),
        (&orders, "orders_outbox", "traceparent"),
        (&catalog, "stock_reservations", "items"),
        (&catalog, "catalog_outbox", "data"),
        (&payments, "payments_outbox", "data"),
    ];
    for (db, table, column) in none {
        assert_eq!(
            statistics_target(db, table, column).await,
            0,
            "{table}.{column}"
        );
    }
    // What queries filter on keeps the server's default.
    for (db, table, column) in [
        (&orders, "orders", "user_id"),
        (&orders, "orders", "saga_next_attempt_at_ms"),
        (&orders, "orders_outbox", "published_at_ms"),
    ] {
        assert_eq!(
            statistics_target(db, table, column).await,
            -1,
            "{table}.{column}"
        );
    }
}
