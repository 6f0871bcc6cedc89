//! Reserving, releasing and committing stock over Connect, as the orders
//! service will: idempotent by reservation id, all lines or none, never
//! below zero however many callers race.

mod support;

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use support::TestCatalog;

async fn call(catalog: &TestCatalog, method: &str, body: Value) -> (u16, Value) {
    shop_kit::testing::call_json(&catalog.url(method), Some(&catalog.service_token), &body).await
}

async fn stock(catalog: &TestCatalog, id: &str) -> i32 {
    catalog
        .catalog
        .store()
        .get(id)
        .await
        .expect("get")
        .expect("product")
        .stock_on_hand
}

#[tokio::test]
async fn reserve_release_and_commit_are_idempotent() {
    let catalog = TestCatalog::start().await;
    let reserve =
        json!({"reservationId": "order-1", "items": [{"productId": "p1", "quantity": 2}]});
    for _ in 0..3 {
        let (status, body) = call(&catalog, "ReserveStock", reserve.clone()).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("RESERVATION_STATUS_RESERVED"))
        );
    }
    assert_eq!(stock(&catalog, "p1").await, 3, "reserved once");

    for _ in 0..2 {
        let (_, body) = call(
            &catalog,
            "ReleaseStock",
            json!({"reservationId": "order-1"}),
        )
        .await;
        assert_eq!(body["status"], "RESERVATION_STATUS_RELEASED");
    }
    assert_eq!(stock(&catalog, "p1").await, 5, "released once");
    let (status, refused) =
        call(&catalog, "CommitStock", json!({"reservationId": "order-1"})).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("failed_precondition"))
    );
    assert_eq!(
        shop_kit::testing::error_info(&refused),
        Some((
            "RESERVATION_SETTLED".to_owned(),
            "catalog.connect-shop".to_owned()
        )),
        "{refused}"
    );

    let other = json!({"reservationId": "order-2", "items": [{"productId": "p2", "quantity": 1}]});
    call(&catalog, "ReserveStock", other).await;
    for _ in 0..2 {
        let (_, body) = call(&catalog, "CommitStock", json!({"reservationId": "order-2"})).await;
        assert_eq!(body["status"], "RESERVATION_STATUS_COMMITTED");
    }
    assert_eq!(stock(&catalog, "p2").await, 1, "sold, not returned");
    let (status, _) = call(
        &catalog,
        "ReleaseStock",
        json!({"reservationId": "order-2"}),
    )
    .await;
    assert_eq!(status, 400, "a sale is not released");
    let (status, missing) = call(&catalog, "CommitStock", json!({"reservationId": "nope"})).await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn a_short_line_reserves_nothing_and_names_the_product() {
    let catalog = TestCatalog::start().await;
    let (status, error) = call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "r", "items": [{"productId": "p1", "quantity": 1}, {"productId": "p2", "quantity": 3}]}),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("failed_precondition"))
    );
    assert!(
        error["message"].as_str().unwrap_or_default().contains("p2"),
        "{error}"
    );
    assert_eq!(
        shop_kit::testing::error_info(&error),
        Some(("OUT_OF_STOCK".to_owned(), "catalog.connect-shop".to_owned())),
        "{error}"
    );
    assert_eq!(
        stock(&catalog, "p1").await,
        5,
        "the first line was rolled back"
    );
    // The id was not used up by the failure.
    let (status, _) = call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "r", "items": [{"productId": "p1", "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200);

    let (status, unknown) = call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "x", "items": [{"productId": "ghost", "quantity": 1}]}),
    )
    .await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    let (status, invalid) = call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "y", "items": [{"productId": "p1", "quantity": 0}]}),
    )
    .await;
    assert_eq!(
        (status, invalid["code"].as_str()),
        (400, Some("invalid_argument"))
    );
}

/// Who may move stock is the contract's rule (StockService: the orders
/// service only), enforced with no check in the handlers' code.
#[tokio::test]
async fn only_the_orders_service_changes_stock() {
    let catalog = TestCatalog::start().await;
    let reserve = json!({"reservationId": "r", "items": [{"productId": "p1", "quantity": 1}]});
    let url = catalog.url("ReserveStock");
    let (status, anonymous) = shop_kit::testing::call_json(&url, None, &reserve).await;
    assert_eq!(
        (status, anonymous["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, customer) =
        shop_kit::testing::call_json(&url, Some(&catalog.token), &reserve).await;
    assert_eq!(
        (status, customer["code"].as_str()),
        (403, Some("permission_denied"))
    );
    for method in ["ReleaseStock", "CommitStock"] {
        let (status, _) = shop_kit::testing::call_json(
            &catalog.url(method),
            Some(&catalog.token),
            &json!({"reservationId": "r"}),
        )
        .await;
        assert_eq!(status, 403, "{method}");
    }
    // Another of the shop's services: refused, and told who may.
    for method in ["ReserveStock", "ReleaseStock", "CommitStock"] {
        let (status, other) = shop_kit::testing::call_json(
            &catalog.url(method),
            Some(&catalog.payments_token),
            &reserve,
        )
        .await;
        assert_eq!(
            (status, other["code"].as_str(), other["message"].as_str()),
            (
                403,
                Some("permission_denied"),
                Some("only the orders service may make this call")
            ),
            "{method}"
        );
    }
    assert_eq!(stock(&catalog, "p1").await, 5);
}

#[tokio::test]
async fn racing_reservations_never_oversell() {
    let catalog = TestCatalog::start().await;
    // p1 has 5 units; 40 customers want one each, at once.
    let attempts = (0..40).map(|i| {
        call(&catalog, "ReserveStock", json!({"reservationId": format!("race-{i}"), "items": [{"productId": "p1", "quantity": 1}]}))
    });
    let results = futures::future::join_all(attempts).await;
    let reserved = results.iter().filter(|(status, _)| *status == 200).count();
    let short = results
        .iter()
        .filter(|(_, body)| body["code"] == "failed_precondition")
        .count();
    assert_eq!((reserved, short), (5, 35), "{results:?}");
    assert_eq!(stock(&catalog, "p1").await, 0);
}

#[tokio::test]
async fn racing_repeats_of_one_reservation_reserve_once() {
    let catalog = TestCatalog::start().await;
    let attempts = (0..20).map(|_| {
        call(
            &catalog,
            "ReserveStock",
            json!({"reservationId": "same", "items": [{"productId": "p1", "quantity": 2}]}),
        )
    });
    let results = futures::future::join_all(attempts).await;
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "{results:?}"
    );
    assert_eq!(stock(&catalog, "p1").await, 3);
}

#[tokio::test]
async fn a_release_that_overtakes_its_reservation_wins() {
    // The orders saga may give up on a reservation whose call timed out and
    // release it while the call is still on its way: the late reservation
    // must then take nothing.
    let catalog = TestCatalog::start().await;
    let (status, released) = call(&catalog, "ReleaseStock", json!({"reservationId": "late"})).await;
    assert_eq!(
        (status, released["status"].as_str()),
        (200, Some("RESERVATION_STATUS_RELEASED"))
    );
    let (_, late) = call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "late", "items": [{"productId": "p1", "quantity": 1}]}),
    )
    .await;
    assert_eq!(late["status"], "RESERVATION_STATUS_RELEASED");
    assert_eq!(stock(&catalog, "p1").await, 5, "nothing taken");
}

/// Orders naming the same products in opposite orders, all at once: each
/// reservation takes its products' rows in one order (by id), so none waits
/// for another in a circle. On PostgreSQL (`just test-postgres`) the old
/// line order deadlocked here; on SQLite writers queue anyway.
#[tokio::test]
async fn reservations_racing_over_the_same_products_never_deadlock() {
    let catalog = TestCatalog::start().await;
    for id in ["p1", "p2", "p3"] {
        catalog.catalog.adjust_stock(id, 1000).await.expect("stock");
    }
    let orders: Vec<_> = (0..60)
        .map(|n| {
            let catalog = catalog.catalog.clone();
            let lines: Vec<(String, i32)> = match n % 3 {
                0 => vec![("p1".into(), 1), ("p2".into(), 1), ("p3".into(), 1)],
                1 => vec![("p3".into(), 1), ("p2".into(), 1), ("p1".into(), 1)],
                _ => vec![("p2".into(), 1), ("p3".into(), 1), ("p1".into(), 1)],
            };
            shop_kit::task::spawn(async move {
                catalog.reserve_stock(&format!("race-{n}"), &lines).await?;
                catalog.release_stock(&format!("race-{n}")).await
            })
        })
        .collect();
    for order in orders {
        order.await.expect("join").expect("reserved and released");
    }
    for id in ["p1", "p2"] {
        assert_eq!(
            stock(&catalog, id).await,
            1000 + if id == "p1" { 5 } else { 2 }
        );
    }
}

/// Twenty releases of one reservation at once, and a sale racing them: the
/// stock goes back once, or not at all if the sale came first, and every
/// caller is told what became of it.
#[tokio::test]
async fn racing_releases_of_one_reservation_put_the_stock_back_once() {
    let catalog = TestCatalog::start().await;
    call(
        &catalog,
        "ReserveStock",
        json!({"reservationId": "twice", "items": [{"productId": "p1", "quantity": 2}, {"productId": "p2", "quantity": 1}]}),
    )
    .await;
    let releases =
        (0..20).map(|_| call(&catalog, "ReleaseStock", json!({"reservationId": "twice"})));
    let sale = call(&catalog, "CommitStock", json!({"reservationId": "twice"}));
    let (released, (sale_status, sold)) =
        futures::future::join(futures::future::join_all(releases), sale).await;
    let back = (stock(&catalog, "p1").await, stock(&catalog, "p2").await);
    if sale_status == 200 {
        assert_eq!(sold["status"], "RESERVATION_STATUS_COMMITTED");
        assert!(
            released.iter().all(|(status, _)| *status == 400),
            "{released:?}"
        );
        assert_eq!(back, (3, 1), "sold, not returned");
    } else {
        assert!(
            released
                .iter()
                .all(|(status, body)| *status == 200
                    && body["status"] == "RESERVATION_STATUS_RELEASED"),
            "{released:?}"
        );
        assert_eq!(back, (5, 2), "returned once");
    }
    let events =
        shop_kit::testing::outbox_events(catalog.catalog.store().ledger.db(), "catalog").await;
    assert_eq!(
        events.len(),
        if sale_status == 200 { 2 } else { 4 },
        "a stock.changed per product moved: {events:?}"
    );
}

/// On PostgreSQL a release settles its reservation and puts the stock back
/// in one statement, so it holds its products' rows only while that
/// statement runs, never while the catalog sends the next statement of a
/// transaction (meanwhile every reservation of those products would wait).
/// Shown with a product held elsewhere: the release waits for it inside
/// its one statement, and then moves both products.
#[tokio::test]
async fn a_release_waits_for_its_products_inside_one_statement_on_postgres() {
    let catalog = TestCatalog::start().await;
    let db = catalog.catalog.store().ledger.db().clone();
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let lines = [("p1".to_owned(), 2), ("p2".to_owned(), 1)];
    catalog
        .catalog
        .reserve_stock("held", &lines)
        .await
        .expect("reserved");
    let blocker = shop_kit::db::begin(&db).await.expect("begin");
    blocker
        .execute_unprepared("SELECT id FROM products WHERE id = 'p2' FOR UPDATE")
        .await
        .expect("p2 held");
    let release = shop_kit::task::spawn({
        let catalog = catalog.catalog.clone();
        async move { catalog.release_stock("held").await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT query FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("activity");
        if let Some(row) = row {
            break row.try_get::<String>("", "query").expect("query");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the release never waited for p2"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for part in [
        "UPDATE stock_reservations",
        "UPDATE products",
        "catalog_outbox",
    ] {
        assert!(waiting.contains(part), "waits in {waiting}");
    }
    blocker.rollback().await.expect("p2 let go");
    release.await.expect("join").expect("released");
    assert_eq!(
        (stock(&catalog, "p1").await, stock(&catalog, "p2").await),
        (5, 2)
    );
    let events = shop_kit::testing::outbox_events(&db, "catalog").await;
    let returned: Vec<_> = events[events.len() - 2..]
        .iter()
        .map(|event| {
            (
                event.aggregate_id.as_str(),
                event.data["stockOnHand"].clone(),
                event.version,
            )
        })
        .collect();
    assert_eq!(returned, [("p1", json!(5), 2), ("p2", json!(2), 2)]);
}
