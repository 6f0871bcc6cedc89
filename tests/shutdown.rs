//! SIGTERM while orders are being placed: the shop stops within its grace
//! period with no saga step or relay batch cut half-way, and after a
//! restart on the same data every order ends CONFIRMED or CANCELLED with
//! stock and money in agreement.

mod launched;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use launched::Shop;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

const ORDERS: usize = 80;

async fn post(url: &str, token: Option<&str>, body: &Value) -> Option<(u16, Value)> {
    let mut request = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(20))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

async fn stock(shop: &Shop) -> HashMap<String, i64> {
    let (status, body) = shop
        .call(
            "catalog",
            "/shop.catalog.v1.CatalogService/ListProducts",
            &json!({"pageSize": 100}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["stockOnHand"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_of_orders_leaves_no_step_half_done() {
    let mut shop = Shop::whole(&["--demo-stock", "1000"]).await;
    let (status, session) = shop
        .call(
            "users",
            "/shop.users.v1.UserService/LogIn",
            &json!({"email": shop_users::DEMO_EMAIL, "password": shop_users::DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let token = session["session"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let before = stock(&shop).await;
    let products: Vec<String> = before.keys().cloned().collect();

    // Orders arrive one every 25 ms for 2 s; SIGTERM comes once six are
    // placed (not after a fixed sleep, which a busy machine could make
    // early or late), so it falls in the middle of them: the shop drains
    // (1 s) and closes while more keep coming.
    let create = format!(
        "{}/shop.orders.v1.OrderService/CreateOrder",
        shop.url("orders")
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = (0..ORDERS)
        .map(|i| {
            let create = create.clone();
            let token = token.clone();
            let product = products[i % products.len()].clone();
            let answered = answered.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(25 * i as u64)).await;
                let order = json!({
                    "idempotencyKey": format!("burst-{i}"),
                    "paymentToken": "tok_visa",
                    "items": [{"productId": product, "quantity": 1 + i % 3}],
                });
                let answer = post(&create, Some(&token), &order).await;
                if matches!(answer, Some((200, _))) {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                answer
            })
        })
        .collect();
    let placing = tokio::time::Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 6 {
        assert!(tokio::time::Instant::now() < placing, "no orders placed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (exit, took) = tokio::task::block_in_place(|| shop.terminate());
    assert!(exit.success(), "shop exited with {exit}");
    // The default grace is 10 s: stopping sooner means every step and
    // batch under way ended by itself, none was cut.
    assert!(took < Duration::from_secs(9), "stopping took {took:?}");

    let mut placed = Vec::new();
    for call in burst {
        if let Some((200, body)) = call.await.expect("join") {
            placed.push(body["order"]["id"].as_str().expect("id").to_owned());
        }
    }
    assert!(
        placed.len() > 5 && placed.len() < ORDERS,
        "SIGTERM came in the middle of the burst: {} placed",
        placed.len()
    );

    shop.restart().await;
    let get = format!(
        "{}/shop.orders.v1.OrderService/GetOrder",
        shop.url("orders")
    );
    let mut sold: HashMap<String, i64> = HashMap::new();
    let mut confirmed = Vec::new();
    for id in &placed {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let order = loop {
            let (status, body) = post(&get, Some(&token), &json!({"orderId": id}))
                .await
                .expect("GetOrder answers");
            assert_eq!(status, 200, "{body}");
            if body["order"]["status"] != "ORDER_STATUS_PENDING" {
                break body["order"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} still pending after the restart: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if order["status"] == "ORDER_STATUS_CONFIRMED" {
            confirmed.push(id.clone());
            for line in order["items"].as_array().expect("items") {
                *sold
                    .entry(line["productId"].as_str().expect("product").to_owned())
                    .or_default() += line["quantity"].as_i64().expect("quantity");
            }
        } else {
            assert_eq!(order["status"], "ORDER_STATUS_CANCELLED", "{order}");
        }
    }

    eprintln!(
        "SIGTERM after {} of {ORDERS} orders were placed; stopped in {took:?}; \
         after the restart {} confirmed, {} cancelled",
        placed.len(),
        confirmed.len(),
        placed.len() - confirmed.len()
    );

    // Stock: what was there, less what confirmed orders bought (releases
    // of cancelled orders have put theirs back).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let after = stock(&shop).await;
        let expected: HashMap<String, i64> = before
            .iter()
            .map(|(id, n)| (id.clone(), n - sold.get(id).copied().unwrap_or(0)))
            .collect();
        if after == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stock {after:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Money: one capture per confirmed order, none kept for a cancelled one.
    let payments = shop_kit::db::connect(
        "payments",
        &shop_kit::db::sqlite_url(&shop.data.path().join("data"), "payments"),
    )
    .await
    .expect("payments database");
    let rows = payments
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT reference, status FROM payments WHERE status = 'captured'",
        ))
        .await
        .expect("payments");
    let mut captured: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "reference").expect("reference"))
        .collect();
    captured.sort();
    confirmed.sort();
    assert_eq!(captured, confirmed, "captures match confirmed orders");
}
