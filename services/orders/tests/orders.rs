//! The orders API with the whole shop beside it, on loopback, called over
//! Connect with tokens of two customers: pricing, idempotency, ownership,
//! the order history.

mod support;

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use shop_orders::SagaPolicy;
use support::{Fault, Options, Shop, fast_policy};
use tokio::sync::Semaphore;

#[tokio::test]
async fn orders_are_priced_by_the_catalog() {
    let shop = Shop::start().await;
    let order = shop.order(&shop.ada, "k1").await;
    assert_eq!(order["status"], "ORDER_STATUS_PENDING");
    assert_eq!(
        order["total"],
        json!({"currencyCode": "EUR", "minorUnits": "2750"})
    );
    assert_eq!(order["items"][0]["productName"], "Product p1");
    assert_eq!(order["items"][0]["unitPrice"]["minorUnits"], "1200");
    assert_eq!(order["customerId"], "ada");
    // google.protobuf.Timestamp: RFC 3339 in UTC in JSON (pbjson-types
    // writes UTC as +00:00 where the spec prefers Z; parsers take both).
    let placed_at = order["createdAt"].as_str().expect("an instant");
    let placed_at = chrono::DateTime::parse_from_rfc3339(placed_at).expect("RFC 3339");
    assert_eq!(placed_at.offset().local_minus_utc(), 0, "{placed_at}");
    assert!(
        (chrono::Utc::now() - placed_at.to_utc())
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(order["updatedAt"], order["createdAt"]);
}

#[tokio::test]
async fn one_key_places_one_order_even_when_racing() {
    let shop = Shop::start().await;
    let first = shop.order(&shop.ada, "same").await;
    assert_eq!(shop.order(&shop.ada, "same").await["id"], first["id"]);
    let racing = (0..20).map(|_| shop.order(&shop.ada, "race"));
    let orders = futures::future::join_all(racing).await;
    let ids: std::collections::HashSet<&str> = orders
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1);
    let listed = shop.history(&shop.ada, 2, json!({"pageSize": 50})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, again) = shop
        .call("ListOrders", Some(&shop.ada), json!({"pageSize": 50}))
        .await;
    assert_eq!(listed["orders"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        again["orders"].as_array().map(Vec::len),
        Some(2),
        "one per key"
    );
}

#[tokio::test]
async fn a_key_reused_for_a_different_order_is_refused() {
    let shop = Shop::start().await;
    let first = shop.order(&shop.ada, "mine").await;
    // The same request again, its lines in another order: the first order.
    let again = shop
        .order_with(&shop.ada, "mine", "tok_visa", &[("p2", 1), ("p1", 2)])
        .await;
    assert_eq!(again["id"], first["id"]);
    for (what, token, items) in [
        (
            "other quantities",
            "tok_visa",
            json!([{"productId": "p1", "quantity": 1}]),
        ),
        (
            "fewer products",
            "tok_visa",
            json!([{"productId": "p1", "quantity": 2}]),
        ),
        (
            "another card",
            "tok_declined",
            json!([{"productId": "p1", "quantity": 2}, {"productId": "p2", "quantity": 1}]),
        ),
    ] {
        let (status, refused) = shop
            .call(
                "CreateOrder",
                Some(&shop.ada),
                json!({"idempotencyKey": "mine", "paymentToken": token, "items": items}),
            )
            .await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (409, Some("already_exists")),
            "{what}: {refused}"
        );
        assert_eq!(
            shop_kit::testing::error_info(&refused),
            Some((
                "IDEMPOTENCY_KEY_REUSED".to_owned(),
                "orders.connect-shop".to_owned()
            )),
            "{what}: {refused}"
        );
    }
    // Keys are the customer's own: bob's "mine" is another order.
    let bobs = shop
        .order_with(&shop.bob, "mine", "tok_visa", &[("p1", 1)])
        .await;
    assert_ne!(bobs["id"], first["id"]);
}

#[tokio::test]
async fn a_reused_key_reads_the_same_over_grpc() {
    use shop_proto::shop::orders::v1::{
        CreateOrderRequest, create_order_request::Item, order_service_client::OrderServiceClient,
    };
    let shop = Shop::start().await;
    shop.order(&shop.ada, "mine").await;
    let mut client = OrderServiceClient::connect(format!("http://{}", shop.orders))
        .await
        .expect("connect");
    let mut request = tonic::Request::new(CreateOrderRequest {
        items: vec![Item {
            product_id: "p1".to_owned(),
            quantity: 1,
        }],
        payment_token: "tok_visa".to_owned(),
        idempotency_key: "mine".to_owned(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", shop.ada).parse().expect("header"),
    );
    let status = client.create_order(request).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    assert_eq!(
        shop_kit::testing::grpc_error_info(&status),
        Some((
            "IDEMPOTENCY_KEY_REUSED".to_owned(),
            "orders.connect-shop".to_owned()
        )),
        "{status:?}"
    );
}

#[tokio::test]
async fn an_empty_order_id_is_invalid_not_missing() {
    let shop = Shop::start().await;
    for method in ["GetOrder", "CancelOrder"] {
        let (status, error) = shop
            .call(method, Some(&shop.ada), json!({"orderId": ""}))
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_argument")),
            "{method}: {error}"
        );
    }
    // WatchOrder is a stream: the error comes in its end-of-stream message.
    let (_, end) = shop.watch(&shop.ada, "").await;
    assert!(end.contains(r#""code":"invalid_argument""#), "{end}");
    // A unary content type for a stream is the wrong shape of request: 415
    // naming what it takes, as the Connect protocol says (not a 500).
    let unary = reqwest::Client::new()
        .post(format!(
            "http://{}/shop.orders.v1.OrderService/WatchOrder",
            shop.orders
        ))
        .header("content-type", "application/json")
        .bearer_auth(&shop.ada)
        .body(r#"{"orderId":""}"#)
        .send()
        .await
        .expect("watch");
    assert_eq!(unary.status(), 415);
    assert_eq!(
        unary.headers()["accept-post"],
        "application/connect+json, application/connect+proto"
    );
}

#[tokio::test]
async fn an_unknown_payment_token_is_refused_before_any_order_is_placed() {
    let shop = Shop::start().await;
    let stock = shop.stock("p1").await;
    let (status, refused) = shop
        .call(
            "CreateOrder",
            Some(&shop.ada),
            json!({"idempotencyKey": "typo", "paymentToken": "tok_vias", "items": [{"productId": "p1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (404, Some("not_found")),
        "{refused}"
    );
    assert_eq!(
        shop_kit::testing::error_info(&refused),
        Some((
            "UNKNOWN_PAYMENT_TOKEN".to_owned(),
            "orders.connect-shop".to_owned()
        )),
        "{refused}"
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tok_vias"),
        "{refused}"
    );
    // Nothing was placed, nothing set aside; the same key then places the
    // order with a real token.
    let (_, listed) = shop.call("ListOrders", Some(&shop.ada), json!({})).await;
    assert_eq!(
        listed["orders"].as_array().map_or(0, Vec::len),
        0,
        "{listed}"
    );
    assert_eq!(shop.stock("p1").await, stock);
    let order = shop
        .order_with(&shop.ada, "typo", "tok_visa", &[("p1", 1)])
        .await;
    let id = order["id"].as_str().expect("id");
    assert_eq!(
        shop.settled(&shop.ada, id).await["status"],
        "ORDER_STATUS_CONFIRMED"
    );
}

#[tokio::test]
async fn a_payment_token_payments_issued_is_not_asked_about_again() {
    let shop = Shop::start().await;
    shop.order(&shop.ada, "first").await;
    // Were payments asked again, the question would hang here until
    // orders gave up waiting (half a second) and went ahead.
    let gate = Arc::new(Semaphore::new(0));
    shop.faults.on("CheckPaymentToken", Fault::Hold(gate));
    shop.order(&shop.bob, "second").await;
    // The fault still waits for its call: nobody asked.
    assert!(
        shop.faults.pending("CheckPaymentToken"),
        "payments was asked about tok_visa again"
    );
}

#[tokio::test]
async fn a_catalog_past_its_own_time_is_unavailable_while_the_caller_has_time_left() {
    // The catalog holds every copy of the price lookup (the first and its
    // two hedges) past BatchGetProducts' 5 s, well inside CreateOrder's
    // 10 s: the caller's deadline has not passed, the catalog did not
    // answer. That is unavailable (try again), never deadline_exceeded,
    // which would blame the caller's time.
    let shop = Shop::start().await;
    let gate = Arc::new(Semaphore::new(0));
    for _ in 0..3 {
        shop.faults
            .on("BatchGetProducts", Fault::Hold(gate.clone()));
    }
    let url = format!(
        "http://{}/shop.orders.v1.OrderService/CreateOrder",
        shop.orders
    );
    let body = json!({
        "idempotencyKey": "held-lookup",
        "paymentToken": "tok_visa",
        "items": [{"productId": "p1", "quantity": 1}],
    });
    let (status, answer) = shop_kit::testing::call_json(&url, Some(&shop.ada), &body).await;
    gate.add_permits(3);
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
}

#[tokio::test]
async fn a_full_bulkhead_to_a_healthy_catalog_is_orders_being_busy_not_the_catalog_down() {
    // The catalog holds every price lookup until the gate opens: orders'
    // 64 calls in flight to it fill its bulkhead. (Orders' own admission
    // control, which would refuse some of the 64 at its door first, is off:
    // this is the bulkhead behind the door; and so are the sagas' turns,
    // which a placed order waits for before it is priced: 32 by default,
    // so that the bulkhead's 64 is only filled when they are raised.)
    let shop = Shop::start_with(Options {
        orders_max_calls_in_flight: 0,
        policy: SagaPolicy {
            max_driving: 1024,
            ..fast_policy()
        },
        ..Options::default()
    })
    .await;
    const IN_FLIGHT: usize = 64;
    let (gate, held) = shop.orders_held_at_the_catalog(IN_FLIGHT).await;

    let started = std::time::Instant::now();
    let (status, busy) = shop
        .call(
            "CreateOrder",
            Some(&shop.ada),
            json!({"idempotencyKey": "one-more", "paymentToken": "tok_visa", "items": [{"productId": "p1", "quantity": 1}]}),
        )
        .await;
    let answered_in = started.elapsed();
    assert_eq!(
        (status, busy["code"].as_str()),
        (429, Some("resource_exhausted")),
        "{busy}"
    );
    let message = busy["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("busy:"), "{busy}");
    assert!(!message.contains("unavailable"), "{busy}");
    assert!(
        busy["details"]
            .as_array()
            .is_some_and(|details| details.iter().any(|d| d["type"] == "google.rpc.RetryInfo")),
        "says when to come back: {busy}"
    );
    assert!(
        answered_in < Duration::from_secs(1),
        "at once: {answered_in:?}"
    );

    // The catalog was fine all along: once it answers, every held order
    // is placed.
    gate.add_permits(IN_FLIGHT);
    for call in held {
        let (status, placed) = call.await.expect("joined");
        assert_eq!(status, 200, "{placed}");
    }
}

#[tokio::test]
async fn bad_items_and_a_missing_catalog_are_precise_errors() {
    let shop = Shop::start().await;
    let (status, unknown) = shop
        .call("CreateOrder", Some(&shop.ada), json!({"idempotencyKey": "k", "paymentToken": "tok_visa", "items": [{"productId": "ghost", "quantity": 1}]}))
        .await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost"),
        "{unknown}"
    );
    let (status, _) = shop
        .call(
            "CreateOrder",
            Some(&shop.ada),
            json!({"idempotencyKey": "k", "paymentToken": "tok_visa", "items": []}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = shop
        .call("CreateOrder", None, json!({"idempotencyKey": "k"}))
        .await;
    assert_eq!(status, 401);
    // Each line within its bounds, their sum over what one order may hold:
    // a rule across lines, said by its reason.
    let (status, over) = shop
        .call(
            "CreateOrder",
            Some(&shop.ada),
            json!({"idempotencyKey": "k", "paymentToken": "tok_visa",
            "items": [{"productId": "p1", "quantity": 60}, {"productId": "p1", "quantity": 60}]}),
        )
        .await;
    assert_eq!(
        (status, over["code"].as_str()),
        (400, Some("invalid_argument")),
        "{over}"
    );
    assert_eq!(
        shop_kit::testing::error_info(&over),
        Some((
            "TOO_MANY_OF_ONE_PRODUCT".to_owned(),
            "orders.connect-shop".to_owned()
        )),
        "{over}"
    );
    // A page token the service never issued, however well-formed.
    let (status, made_up) = shop
        .call(
            "ListOrders",
            Some(&shop.ada),
            json!({"pageToken": "bm9wZQ"}),
        )
        .await;
    assert_eq!(status, 400, "{made_up}");
    assert_eq!(
        shop_kit::testing::error_info(&made_up)
            .map(|(reason, _)| reason)
            .as_deref(),
        Some("PAGE_TOKEN_NOT_ISSUED"),
        "{made_up}"
    );

    let offline = Shop::start_with(Options {
        catalog_down: true,
        ..Options::default()
    })
    .await;
    let (status, down) = offline
        .call("CreateOrder", Some(&offline.ada), json!({"idempotencyKey": "k", "paymentToken": "tok_visa", "items": [{"productId": "p1", "quantity": 1}]}))
        .await;
    assert_eq!((status, down["code"].as_str()), (503, Some("unavailable")));
}

#[tokio::test]
async fn a_customer_sees_and_touches_only_their_own_orders() {
    let shop = Shop::start().await;
    let adas = shop.order(&shop.ada, "k1").await;
    let id = adas["id"].clone();
    for method in ["GetOrder", "CancelOrder"] {
        let (status, hidden) = shop
            .call(method, Some(&shop.bob), json!({"orderId": id}))
            .await;
        assert_eq!(
            (status, hidden["code"].as_str()),
            (404, Some("not_found")),
            "{method}"
        );
    }
    let (_, watched) = shop.watch(&shop.bob, id.as_str().expect("id")).await;
    assert!(
        watched.contains(r#""code":"not_found""#),
        "bob cannot watch ada's order: {watched}"
    );
    shop.history(&shop.ada, 1, json!({})).await;
    let (_, bobs) = shop.call("ListOrders", Some(&shop.bob), json!({})).await;
    assert_eq!(bobs.get("orders"), None, "bob has no orders");
    let order = shop.settled(&shop.ada, id.as_str().expect("id")).await;
    assert_eq!(
        order["status"], "ORDER_STATUS_CONFIRMED",
        "bob's cancel did nothing"
    );
}

#[tokio::test]
async fn the_order_history_lists_newest_first_page_by_page() {
    let shop = Shop::start().await;
    let mut placed = Vec::new();
    for i in 0..5 {
        let order = shop.order(&shop.ada, &format!("k{i}")).await;
        shop.settled(&shop.ada, order["id"].as_str().expect("id"))
            .await;
        placed.push(order["id"].clone());
    }
    // The history follows the events: each order as it ended.
    shop.history_settled(&shop.ada, 5).await;
    let first = shop.history(&shop.ada, 3, json!({"pageSize": 3})).await;
    let (_, second) = shop
        .call(
            "ListOrders",
            Some(&shop.ada),
            json!({"pageSize": 3, "pageToken": first["nextPageToken"]}),
        )
        .await;
    let listed: Vec<&Value> = first["orders"]
        .as_array()
        .into_iter()
        .chain(second["orders"].as_array())
        .flatten()
        .collect();
    let ids: Vec<Value> = listed.iter().map(|o| o["id"].clone()).collect();
    placed.reverse();
    assert_eq!(ids, placed);
    assert_eq!(second.get("nextPageToken"), None);
    let newest = listed[0];
    assert_eq!(newest["items"][1]["productName"], "Product p2");
    assert_eq!(newest["total"]["minorUnits"], "2750");
    assert_eq!(newest["status"], "ORDER_STATUS_CONFIRMED");
}

#[tokio::test]
async fn an_order_seen_confirmed_is_in_the_history_at_once() {
    // The history is a read model a batch behind the order; ListOrders
    // completes it with the orders it lags behind, so the first read
    // after the confirmation already lists it, confirmed.
    let shop = Shop::start().await;
    for i in 0..5 {
        let order = shop.order(&shop.ada, &format!("seen-{i}")).await;
        let id = order["id"].as_str().expect("id");
        assert_eq!(
            shop.watch_until_final(&shop.ada, id).await,
            "ORDER_STATUS_CONFIRMED"
        );
        let (status, listed) = shop
            .call("ListOrders", Some(&shop.ada), json!({"pageSize": 1}))
            .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["orders"][0]["id"], id, "{listed}");
        assert_eq!(
            listed["orders"][0]["status"], "ORDER_STATUS_CONFIRMED",
            "{listed}"
        );
    }
}

/// The history behind (its consumer slow, or on another replica that has
/// not had the events yet): ListOrders lists every order as it is, newest
/// first, page by page, from the orders themselves where the history lags.
#[tokio::test]
async fn a_history_that_lags_is_completed_from_the_orders_themselves() {
    use sea_orm::ConnectionTrait;
    let shop = Shop::start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let order = shop.order(&shop.ada, &format!("lag-{i}")).await;
        let id = order["id"].as_str().expect("id").to_owned();
        shop.settled(&shop.ada, &id).await;
        ids.push(id);
        // Distinct instants, so the page order is known.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shop.history_settled(&shop.ada, 3).await;
    // The history forgets the newest order and holds the oldest as placed.
    let db = shop.orders_database().await;
    db.execute_unprepared(&format!(
        "DELETE FROM order_history WHERE order_id = '{}'",
        ids[2]
    ))
    .await
    .expect("forget");
    db.execute_unprepared(&format!(
        "UPDATE order_history SET status = 'pending', version = 1 WHERE order_id = '{}'",
        ids[0]
    ))
    .await
    .expect("roll back");
    let mut seen = Vec::new();
    let mut request = json!({"pageSize": 1});
    loop {
        let (status, page) = shop
            .call("ListOrders", Some(&shop.ada), request.clone())
            .await;
        assert_eq!(status, 200, "{page}");
        for order in page["orders"].as_array().expect("orders") {
            assert_eq!(order["status"], "ORDER_STATUS_CONFIRMED", "{order}");
            seen.push(order["id"].as_str().expect("id").to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(token) if !token.is_empty() => {
                request = json!({"pageSize": 1, "pageToken": token});
            }
            _ => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing_in_the_history() {
    let shop = Shop::start().await;
    let order = shop.order(&shop.ada, "once").await;
    let id = order["id"].as_str().expect("id");
    shop.settled(&shop.ada, id).await;
    shop.history_settled(&shop.ada, 1).await;
    let db = shop.orders_database().await;
    let events = shop_kit::testing::outbox_events(&db, "orders").await;
    let created = events
        .iter()
        .find(|e| e.event_type == "order.created")
        .expect("order.created");
    // Redelivered late, after order.confirmed, even under another id: the
    // version does not let it take the order back to PENDING.
    let history = shop_orders::store::History::new(db);
    history
        .record(std::slice::from_ref(created))
        .await
        .expect("first");
    history
        .record(&[created.clone(), created.clone()])
        .await
        .expect("again, twice in one batch");
    let mut stale = created.clone();
    stale.id = "a-new-id-for-old-news".into();
    history.record(&[stale]).await.expect("stale");
    let listed = shop.history(&shop.ada, 1, json!({})).await;
    assert_eq!(listed["orders"][0]["status"], "ORDER_STATUS_CONFIRMED");
}

/// The outbox keeps what waits for the relay; what it has published goes
/// (the relay's sweep deletes it once `KEEP_PUBLISHED_FOR` old: here the
/// same statement, asked for everything published until now).
#[tokio::test]
async fn published_events_leave_the_outbox_and_waiting_ones_stay() {
    let shop = Shop::start().await;
    let order = shop.order(&shop.ada, "pruned").await;
    let id = order["id"].as_str().expect("id");
    shop.settled(&shop.ada, id).await;
    shop.history_settled(&shop.ada, 1).await;
    let db = shop.orders_database().await;
    let outbox = shop_kit::events::Outbox::new("orders");
    // The relay marks a batch published just after the history has it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while outbox.backlog(&db).await.expect("backlog") > 0 {
        assert!(tokio::time::Instant::now() < deadline, "events left unsent");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let published = shop_kit::testing::outbox_events(&db, "orders").await;
    assert_eq!(published.len(), 2, "{published:?}");

    // One more, just recorded: the relay leaves it for two seconds (to the
    // process that recorded it), so it is still waiting when the sweep runs.
    let mut waiting = published[0].clone();
    waiting.id = "recorded-just-now".into();
    outbox.append(&db, &waiting).await.expect("append");
    let now = chrono::Utc::now().timestamp_millis();
    let deleted = outbox.prune(&db, now + 1_000, 1).await.expect("prune");
    assert_eq!(deleted, 1, "one per statement at most");
    let deleted = outbox.prune(&db, now + 1_000, 1_000).await.expect("prune");
    assert_eq!(deleted, 1);
    let left = outbox.recorded(&db, "orders").await.expect("recorded");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0.id, "recorded-just-now");
    assert!(!left[0].1, "still waiting for the relay");
}

/// The request rules of orders.proto (buf.validate), refused on every
/// protocol before an order is looked at, naming each field as the caller
/// wrote it; nothing is placed.
#[tokio::test]
async fn order_requests_breaking_a_rule_are_refused_on_every_protocol() {
    use shop_kit::testing::refusals::assert_bad_request;
    use shop_proto::shop::orders::v1::{self as pb, create_order_request::Item};
    let shop = Shop::start().await;
    let base = format!("http://{}", shop.orders);
    let path = |method: &str| format!("/shop.orders.v1.OrderService/{method}");
    let token = Some(shop.ada.as_str());

    let no_lines = pb::CreateOrderRequest {
        items: vec![],
        payment_token: "tok_visa".into(),
        idempotency_key: String::new(),
    };
    assert_bad_request(
        &base,
        &path("CreateOrder"),
        token,
        &no_lines,
        &[("items", "items"), ("idempotency_key", "idempotencyKey")],
    )
    .await;
    let bad_line = pb::CreateOrderRequest {
        items: vec![Item {
            product_id: "p1".into(),
            quantity: 101,
        }],
        payment_token: String::new(),
        idempotency_key: "rules-1".into(),
    };
    assert_bad_request(
        &base,
        &path("CreateOrder"),
        token,
        &bad_line,
        &[
            ("items[0].quantity", "items[0].quantity"),
            ("payment_token", "paymentToken"),
        ],
    )
    .await;
    for method in ["GetOrder", "CancelOrder"] {
        assert_bad_request(
            &base,
            &path(method),
            token,
            &pb::GetOrderRequest::default(),
            &[("order_id", "orderId")],
        )
        .await;
    }
    let page = pb::ListOrdersRequest {
        page_size: -1,
        page_token: String::new(),
    };
    assert_bad_request(
        &base,
        &path("ListOrders"),
        token,
        &page,
        &[("page_size", "pageSize")],
    )
    .await;
    let (_, history) = shop.call("ListOrders", token, json!({})).await;
    assert_eq!(
        history["orders"].as_array().map(Vec::len),
        None,
        "nothing placed: {history}"
    );
}
