//! Upgrading a database that holds data: what the earlier schema held is
//! there after the migration, in its new place, and back after the
//! migration is undone. SQLite by default; PostgreSQL with
//! `SHOP_TEST_DATABASE_URL` (`just test-postgres`).

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use shop_kit::testing::TestDatabase;
use shop_migrations::MigratorTrait;

async fn run(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first row `sql` returns, as JSON (column name -> value).
async fn row(db: &DatabaseConnection, sql: &str, columns: &[&str]) -> Value {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    let mut object = serde_json::Map::new();
    for column in columns {
        let value = row
            .try_get::<String>("", column)
            .map(Value::from)
            .or_else(|_| row.try_get::<i64>("", column).map(Value::from))
            .or_else(|_| row.try_get::<i32>("", column).map(Value::from))
            .or_else(|_| row.try_get::<bool>("", column).map(Value::from))
            .unwrap_or_else(|e| panic!("{column}: {e}"));
        object.insert((*column).to_owned(), value);
    }
    Value::Object(object)
}

async fn connect(service: &str) -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::new(service).await;
    let db = shop_kit::db::connect("test", &database.url)
        .await
        .expect("connect");
    (database, db)
}

#[tokio::test]
async fn orders_keep_their_lines_and_running_sagas_in_one_row() {
    use shop_migrations::orders::Migrator;
    let (_database, db) = connect("orders").await;
    Migrator::up(&db, Some(2))
        .await
        .expect("the earlier schema");
    run(
        &db,
        "INSERT INTO orders (id, user_id, idempotency_key, status, cancel_reason, \
         total_minor_units, currency_code, payment_token, created_at_ms, updated_at_ms, version) \
         VALUES ('o1', 'ada', 'k1', 'pending', '', 2750, 'EUR', 'tok_visa', 10, 10, 1)",
    )
    .await;
    run(
        &db,
        "INSERT INTO order_items (order_id, line, product_id, product_name, quantity, \
         unit_price_minor_units) VALUES ('o1', 1, 'p2', 'Product p2', 1, 350), \
         ('o1', 0, 'p1', 'Product p1', 2, 1200)",
    )
    .await;
    run(
        &db,
        "INSERT INTO order_sagas (order_id, step, payment_id, attempts, next_attempt_at_ms, \
         deadline_at_ms, cancel_requested, cancel_reason, lease_until_ms, traceparent, \
         updated_at_ms) VALUES ('o1', 'charge', '', 2, 20, 1000, true, '', 15, 'tp', 20)",
    )
    .await;

    Migrator::up(&db, Some(1)).await.expect("upgrade");
    let order = row(
        &db,
        "SELECT lines, saga_step, saga_attempts, saga_next_attempt_at_ms, saga_deadline_at_ms, \
         saga_cancel_requested, saga_lease_until_ms, saga_traceparent FROM orders WHERE id = 'o1'",
        &[
            "lines",
            "saga_step",
            "saga_attempts",
            "saga_next_attempt_at_ms",
            "saga_deadline_at_ms",
            "saga_cancel_requested",
            "saga_lease_until_ms",
            "saga_traceparent",
        ],
    )
    .await;
    let lines: Value = serde_json::from_str(order["lines"].as_str().expect("text")).expect("JSON");
    assert_eq!(
        lines,
        json!([
            {"productId": "p1", "productName": "Product p1", "quantity": 2, "unitPriceMinorUnits": 1200},
            {"productId": "p2", "productName": "Product p2", "quantity": 1, "unitPriceMinorUnits": 350}
        ])
    );
    assert_eq!(order["saga_step"], "charge");
    assert_eq!(order["saga_attempts"], 2);
    assert_eq!(order["saga_next_attempt_at_ms"], 20);
    assert_eq!(order["saga_deadline_at_ms"], 1000);
    // A boolean: true on PostgreSQL, 1 on SQLite.
    assert!(
        [json!(true), json!(1)].contains(&order["saga_cancel_requested"]),
        "{order}"
    );
    assert_eq!(order["saga_lease_until_ms"], 15);
    assert_eq!(order["saga_traceparent"], "tp");
    for gone in ["order_items", "order_sagas"] {
        let probe = format!("SELECT 1 FROM {gone}");
        assert!(
            db.execute_unprepared(&probe).await.is_err(),
            "{gone} is left"
        );
    }

    Migrator::down(&db, Some(1)).await.expect("downgrade");
    let line = row(
        &db,
        "SELECT product_name, quantity, unit_price_minor_units FROM order_items \
         WHERE order_id = 'o1' AND line = 1",
        &["product_name", "quantity", "unit_price_minor_units"],
    )
    .await;
    assert_eq!(
        line,
        json!({"product_name": "Product p2", "quantity": 1, "unit_price_minor_units": 350})
    );
    let saga = row(
        &db,
        "SELECT step, attempts FROM order_sagas WHERE order_id = 'o1'",
        &["step", "attempts"],
    )
    .await;
    assert_eq!(saga, json!({"step": "charge", "attempts": 2}));
}

#[tokio::test]
async fn cancel_reasons_are_read_from_the_words_and_the_words_kept() {
    use shop_migrations::orders::Migrator;
    let (_database, db) = connect("orders").await;
    Migrator::up(&db, Some(3))
        .await
        .expect("the earlier schema");
    let insert = |id: &str, status: &str, reason: &str| {
        format!(
            "INSERT INTO orders (id, user_id, idempotency_key, status, cancel_reason, \
             total_minor_units, currency_code, payment_token, created_at_ms, updated_at_ms, \
             version, lines, saga_step, saga_payment_id, saga_attempts, saga_next_attempt_at_ms, \
             saga_deadline_at_ms, saga_cancel_requested, saga_cancel_reason, saga_lease_until_ms, \
             saga_traceparent) VALUES ('{id}', 'ada', '{id}', '{status}', '{reason}', 100, 'EUR', \
             'tok_visa', 1, 1, 2, '[]', 'done', '', 0, 1, 2, false, '{reason}', 0, '')"
        )
    };
    let cases = [
        (
            "o1",
            "out of stock: Hand grinder (2 wanted, 1 left)",
            "out_of_stock",
        ),
        ("o2", "your card was declined", "card_declined"),
        (
            "o3",
            "the payment service was unavailable until the order''s time ran out",
            "timed_out",
        ),
        ("o4", "cancelled at your request", "customer_request"),
    ];
    for (id, words, _) in cases {
        run(&db, &insert(id, "cancelled", words)).await;
    }
    run(&db, &insert("o5", "confirmed", "")).await;
    run(
        &db,
        "INSERT INTO order_history (order_id, user_id, status, cancel_reason, currency_code, \
         total_minor_units, items, created_at_ms, updated_at_ms, version) VALUES \
         ('o2', 'ada', 'cancelled', 'your card was declined', 'EUR', 100, '[]', 1, 1, 2)",
    )
    .await;

    Migrator::up(&db, Some(1)).await.expect("upgrade");
    for (id, words, reason) in cases {
        let order = row(
            &db,
            &format!(
                "SELECT cancel_reason, cancel_message, saga_cancel_reason, saga_cancel_message \
                 FROM orders WHERE id = '{id}'"
            ),
            &[
                "cancel_reason",
                "cancel_message",
                "saga_cancel_reason",
                "saga_cancel_message",
            ],
        )
        .await;
        let words = words.replace("''", "'");
        assert_eq!(
            order,
            json!({"cancel_reason": reason, "cancel_message": words,
                   "saga_cancel_reason": reason, "saga_cancel_message": words}),
        );
    }
    let confirmed = row(
        &db,
        "SELECT cancel_reason, cancel_message FROM orders WHERE id = 'o5'",
        &["cancel_reason", "cancel_message"],
    )
    .await;
    assert_eq!(
        confirmed,
        json!({"cancel_reason": "", "cancel_message": ""})
    );
    let history = row(
        &db,
        "SELECT cancel_reason, cancel_message FROM order_history WHERE order_id = 'o2'",
        &["cancel_reason", "cancel_message"],
    )
    .await;
    assert_eq!(
        history,
        json!({"cancel_reason": "card_declined", "cancel_message": "your card was declined"})
    );

    Migrator::down(&db, Some(1)).await.expect("downgrade");
    let order = row(
        &db,
        "SELECT cancel_reason, saga_cancel_reason FROM orders WHERE id = 'o2'",
        &["cancel_reason", "saga_cancel_reason"],
    )
    .await;
    assert_eq!(
        order,
        json!({"cancel_reason": "your card was declined",
               "saga_cancel_reason": "your card was declined"})
    );
}

#[tokio::test]
async fn words_no_version_wrote_stop_the_cancel_reason_migration() {
    use shop_migrations::orders::Migrator;
    let (_database, db) = connect("orders").await;
    Migrator::up(&db, Some(3))
        .await
        .expect("the earlier schema");
    run(
        &db,
        "INSERT INTO order_history (order_id, user_id, status, cancel_reason, currency_code, \
         total_minor_units, items, created_at_ms, updated_at_ms, version) VALUES \
         ('o9', 'ada', 'cancelled', 'a meteor', 'EUR', 100, '[]', 1, 1, 2)",
    )
    .await;
    let refused = Migrator::up(&db, None).await.expect_err("unknown words");
    assert!(refused.to_string().contains("a meteor"), "{refused}");
    // Nothing changed: with the words put right, it migrates.
    run(
        &db,
        "UPDATE order_history SET cancel_reason = 'cancelled at your request'",
    )
    .await;
    Migrator::up(&db, None).await.expect("upgrade");
}

#[tokio::test]
async fn reservations_keep_their_items_in_their_row() {
    use shop_migrations::catalog::Migrator;
    let (_database, db) = connect("catalog").await;
    Migrator::up(&db, Some(3))
        .await
        .expect("the earlier schema");
    run(
        &db,
        "INSERT INTO stock_reservations (id, status, updated_at) VALUES \
         ('r1', 'reserved', 1), ('r2', 'released', 2)",
    )
    .await;
    run(
        &db,
        "INSERT INTO stock_reservation_items (reservation_id, product_id, quantity) VALUES \
         ('r1', 'p2', 3), ('r1', 'p1', 1)",
    )
    .await;

    Migrator::up(&db, Some(1)).await.expect("upgrade");
    let items = |id: &'static str| {
        let db = db.clone();
        async move {
            let found = row(
                &db,
                &format!("SELECT items FROM stock_reservations WHERE id = '{id}'"),
                &["items"],
            )
            .await;
            serde_json::from_str::<Value>(found["items"].as_str().expect("text")).expect("JSON")
        }
    };
    assert_eq!(
        items("r1").await,
        json!([{"productId": "p1", "quantity": 1}, {"productId": "p2", "quantity": 3}])
    );
    // A release recorded before any reservation holds no items.
    assert_eq!(items("r2").await, json!([]));

    Migrator::down(&db, Some(1)).await.expect("downgrade");
    let item = row(
        &db,
        "SELECT quantity FROM stock_reservation_items WHERE reservation_id = 'r1' \
         AND product_id = 'p2'",
        &["quantity"],
    )
    .await;
    assert_eq!(item, json!({"quantity": 3}));
}

/// The indexes of `orders` (those the migrations name).
async fn order_indexes(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'orders' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders' ORDER BY 1"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .filter(|name| name.starts_with("orders_") && name != "orders_pkey")
        .collect()
}

#[tokio::test]
async fn running_sagas_are_found_by_the_pending_orders_index_and_back() {
    use shop_migrations::orders::Migrator;
    let (_database, db) = connect("orders").await;
    Migrator::up(&db, None).await.expect("the schema");
    // No index names a column a saga's step changes.
    assert_eq!(
        order_indexes(&db).await,
        ["orders_idempotency", "orders_pending"]
    );
    Migrator::down(&db, Some(1)).await.expect("downgrade");
    assert_eq!(
        order_indexes(&db).await,
        [
            "orders_by_user_newest",
            "orders_idempotency",
            "orders_saga_due"
        ]
    );
    Migrator::up(&db, None).await.expect("upgrade again");
    assert_eq!(
        order_indexes(&db).await,
        ["orders_idempotency", "orders_pending"]
    );
}
