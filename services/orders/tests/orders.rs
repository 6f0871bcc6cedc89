//! The orders service with a real catalog beside it, both on loopback,
//! called over Connect with tokens of two customers.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use shop_catalog::domain::{Money, NewProduct};
use shop_kit::{HttpConfig, Shutdown};
use shop_users::tokens::TokenIssuer;

struct Shop {
    orders: SocketAddr,
    ada: String,
    bob: String,
    _databases: Vec<shop_kit::testing::TestDatabase>,
}

async fn serve(app: axum::Router) -> SocketAddr {
    shop_kit::server::start(
        "127.0.0.1:0".parse().expect("addr"),
        app,
        Shutdown::new(),
        Duration::from_secs(1),
    )
    .await
    .expect("start")
    .addr
}

impl Shop {
    /// Orders, with a catalog holding p1 (12.00 EUR) and p2 (3.50 EUR);
    /// `catalog_up: false` points orders at a catalog that does not answer.
    async fn start(catalog_up: bool) -> Self {
        let (kid, der) = TokenIssuer::generate_key().expect("key");
        let issuer = TokenIssuer::from_pkcs8(kid, &der).expect("issuer");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let http = HttpConfig::default();

        let catalog_db = shop_kit::testing::TestDatabase::new("catalog").await;
        let catalog = shop_catalog::Catalog::open(&catalog_db.url)
            .await
            .expect("catalog");
        for (id, sku, cents) in [("p1", "P-1", 1200), ("p2", "P-2", 350)] {
            let product = NewProduct::new(
                id,
                sku,
                &format!("Product {id}"),
                "",
                Money::new("EUR", cents).expect("price"),
                10,
            )
            .expect("product");
            catalog.add_product(product).await.expect("insert");
        }
        let catalog_url = if catalog_up {
            let app = shop_catalog::router(
                catalog,
                issuer.verifier().expect("verifier"),
                &http,
                &Shutdown::new(),
            )
            .await
            .expect("router");
            format!("http://{}", serve(app).await)
        } else {
            "http://127.0.0.1:9".to_owned()
        };

        let orders_db = shop_kit::testing::TestDatabase::new("orders").await;
        let orders = shop_orders::Orders::open(&orders_db.url, &catalog_url)
            .await
            .expect("orders");
        let app = shop_orders::router(
            orders,
            issuer.verifier().expect("verifier"),
            &http,
            &Shutdown::new(),
        )
        .await
        .expect("router");
        Self {
            orders: serve(app).await,
            ada: issuer.access_token("ada", now).expect("token"),
            bob: issuer.access_token("bob", now).expect("token"),
            _databases: vec![catalog_db, orders_db],
        }
    }

    async fn call(&self, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let url = format!(
            "http://{}/shop.orders.v1.OrderService/{method}",
            self.orders
        );
        shop_kit::testing::call_json(&url, token, &body).await
    }

    async fn order(&self, token: &str, key: &str) -> Value {
        let (status, body) = self
            .call(
                "CreateOrder",
                Some(token),
                json!({"idempotencyKey": key, "paymentToken": "tok_visa",
                       "items": [{"productId": "p1", "quantity": 2}, {"productId": "p2", "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["order"].clone()
    }
}

#[tokio::test]
async fn orders_are_priced_by_the_catalog() {
    let shop = Shop::start(true).await;
    let order = shop.order(&shop.ada, "k1").await;
    assert_eq!(order["status"], "ORDER_STATUS_PENDING");
    assert_eq!(
        order["total"],
        json!({"currencyCode": "EUR", "minorUnits": "2750"})
    );
    assert_eq!(order["items"][0]["productName"], "Product p1");
    assert_eq!(order["items"][0]["unitPrice"]["minorUnits"], "1200");
    assert_eq!(order["userId"], "ada");
}

#[tokio::test]
async fn one_key_places_one_order_even_when_racing() {
    let shop = Shop::start(true).await;
    let first = shop.order(&shop.ada, "same").await;
    assert_eq!(shop.order(&shop.ada, "same").await["id"], first["id"]);
    let racing = (0..20).map(|_| shop.order(&shop.ada, "race"));
    let orders = futures::future::join_all(racing).await;
    let ids: std::collections::HashSet<&str> = orders
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, listed) = shop
        .call("ListOrders", Some(&shop.ada), json!({"pageSize": 50}))
        .await;
    assert_eq!(
        listed["orders"].as_array().map(Vec::len),
        Some(2),
        "one per key"
    );
}

#[tokio::test]
async fn bad_items_and_a_missing_catalog_are_precise_errors() {
    let shop = Shop::start(true).await;
    let (status, unknown) = shop
        .call("CreateOrder", Some(&shop.ada), json!({"idempotencyKey": "k", "paymentToken": "tok_visa", "items": [{"productId": "ghost", "quantity": 1}]}))
        .await;
    assert_eq!(
        (status, unknown["code"].as_str()),
        (400, Some("invalid_argument"))
    );
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

    let offline = Shop::start(false).await;
    let (status, down) = offline
        .call("CreateOrder", Some(&offline.ada), json!({"idempotencyKey": "k", "paymentToken": "tok_visa", "items": [{"productId": "p1", "quantity": 1}]}))
        .await;
    assert_eq!((status, down["code"].as_str()), (503, Some("unavailable")));
}

#[tokio::test]
async fn a_customer_sees_and_touches_only_their_own_orders() {
    let shop = Shop::start(true).await;
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
    let (status, _) = shop
        .call("WatchOrder", Some(&shop.bob), json!({"orderId": id}))
        .await;
    assert_ne!(status, 200, "bob cannot watch ada's order");
    let (_, bobs) = shop.call("ListOrders", Some(&shop.bob), json!({})).await;
    assert_eq!(bobs.get("orders"), None, "bob has no orders");
    let (status, still) = shop
        .call("GetOrder", Some(&shop.ada), json!({"orderId": id}))
        .await;
    assert_eq!(
        (status, still["order"]["status"].as_str()),
        (200, Some("ORDER_STATUS_PENDING"))
    );
}

#[tokio::test]
async fn orders_list_newest_first_page_by_page() {
    let shop = Shop::start(true).await;
    let mut placed = Vec::new();
    for i in 0..5 {
        placed.push(shop.order(&shop.ada, &format!("k{i}")).await["id"].clone());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (_, first) = shop
        .call("ListOrders", Some(&shop.ada), json!({"pageSize": 3}))
        .await;
    let (_, second) = shop
        .call(
            "ListOrders",
            Some(&shop.ada),
            json!({"pageSize": 3, "pageToken": first["nextPageToken"]}),
        )
        .await;
    let listed: Vec<Value> = first["orders"]
        .as_array()
        .into_iter()
        .chain(second["orders"].as_array())
        .flatten()
        .map(|o| o["id"].clone())
        .collect();
    placed.reverse();
    assert_eq!(listed, placed);
    assert_eq!(second.get("nextPageToken"), None);
}

#[tokio::test]
async fn watch_order_streams_status_changes_live() {
    let shop = Shop::start(true).await;
    let order = shop.order(&shop.ada, "w").await;
    let body = format!(r#"{{"orderId":"{}"}}"#, order["id"].as_str().expect("id"));
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(body.len()).expect("len").to_be_bytes());
    framed.extend_from_slice(body.as_bytes());
    let mut response = reqwest::Client::new()
        .post(format!(
            "http://{}/shop.orders.v1.OrderService/WatchOrder",
            shop.orders
        ))
        .header("content-type", "application/connect+json")
        .bearer_auth(&shop.ada)
        .body(framed)
        .send()
        .await
        .expect("watch");
    let mut received = Vec::new();
    let mut cancelled = false;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("in time")
        .expect("read")
    {
        received.extend_from_slice(&chunk);
        let text = String::from_utf8_lossy(&received);
        if !cancelled && text.contains("ORDER_STATUS_PENDING") {
            // The order changes while the stream is open.
            let (status, _) = shop
                .call(
                    "CancelOrder",
                    Some(&shop.ada),
                    json!({"orderId": order["id"]}),
                )
                .await;
            assert_eq!(status, 200);
            cancelled = true;
        }
    }
    let text = String::from_utf8_lossy(&received);
    let pending = text.find("ORDER_STATUS_PENDING").expect("pending first");
    let cancelled_at = text.find("ORDER_STATUS_CANCELLED").expect("then cancelled");
    assert!(pending < cancelled_at, "{text}");
    assert!(text.contains("cancelled at your request"));
}
