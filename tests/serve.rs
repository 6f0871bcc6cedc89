//! `shop serve <service>`: every service started alone, in its own process
//! with its own database, as it runs apart from the others, through the
//! same start path the launcher and the test harnesses use; each one
//! answers over Connect, finds its peers by URL, and a customer's order
//! goes through all of them.

mod launched;

use std::time::Duration;

use launched::Shop;
use serde_json::json;

#[tokio::test]
async fn every_service_starts_alone_and_the_shop_works_across_processes() {
    let secret = ["--service-secret", "serve-test-secret"];
    let users = Shop::serve("users", &secret).await;
    let users_url = users.url("users");
    let with_users = |more: &[String]| -> Vec<String> {
        ["--users-url".to_owned(), users_url.clone()]
            .into_iter()
            .chain(more.iter().cloned())
            .collect()
    };
    let start = |service: &'static str, args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Shop::serve(service, &args).await
    };
    let catalog = start("catalog", with_users(&[])).await;
    let payments = start("payments", with_users(&[])).await;
    let orders = start(
        "orders",
        with_users(&[
            "--service-secret".to_owned(),
            "serve-test-secret".to_owned(),
            "--catalog-url".to_owned(),
            catalog.url("catalog"),
            "--payments-url".to_owned(),
            payments.url("payments"),
        ]),
    )
    .await;
    let gateway = start(
        "gateway",
        with_users(&[
            "--catalog-url".to_owned(),
            catalog.url("catalog"),
            "--orders-url".to_owned(),
            orders.url("orders"),
        ]),
    )
    .await;

    // Each answers over Connect.
    let token = users.signed_up("alone@example.com").await;
    let product = first_product(&catalog).await;
    let (status, refused) = payments
        .call(
            "payments",
            "/shop.payments.v1.PaymentService/GetPayment",
            &json!({"paymentId": "nope"}),
        )
        .await;
    assert_eq!(status, 401, "payments verifies tokens: {refused}");
    let (status, home) = shop_kit::testing::call_json(
        &format!(
            "{}/shop.bff.v1.WebBffService/GetHome",
            gateway.url("gateway")
        ),
        Some(&token),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{home}");
    // Wired means every section served: a degraded one is a service the
    // gateway could not reach.
    assert_eq!(
        home.get("degraded"),
        None,
        "the gateway reaches every service: {home}"
    );

    // An order crosses all of them: orders prices it at the catalog, gets a
    // service token from users, charges at payments.
    order_confirmed(&orders.url("orders"), &token, &product, "alone-1").await;
}

/// The first demo product the catalog of `shop` lists (over Connect).
async fn first_product(shop: &Shop) -> String {
    let (status, products) = shop
        .call(
            "catalog",
            "/shop.catalog.v1.CatalogService/ListProducts",
            &json!({"pageSize": 1}),
        )
        .await;
    assert_eq!(status, 200, "{products}");
    products["products"][0]["id"]
        .as_str()
        .expect("demo products")
        .to_owned()
}

/// `token`'s customer orders one of `product` at `orders_url`, and the
/// order is confirmed within 20 s (cancelled fails).
async fn order_confirmed(orders_url: &str, token: &str, product: &str, key: &str) {
    let orders = |method: &str| format!("{orders_url}/shop.orders.v1.OrderService/{method}");
    let (status, placed) = shop_kit::testing::call_json(
        &orders("CreateOrder"),
        Some(token),
        &json!({"idempotencyKey": key, "paymentToken": "tok_visa",
                "items": [{"productId": product, "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
    let id = placed["order"]["id"].as_str().expect("id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) =
            shop_kit::testing::call_json(&orders("GetOrder"), Some(token), &json!({"orderId": id}))
                .await;
        assert_eq!(status, 200, "{body}");
        if body["order"]["status"] == "ORDER_STATUS_CONFIRMED" {
            return;
        }
        assert_ne!(body["order"]["status"], "ORDER_STATUS_CANCELLED", "{body}");
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole shop with `--in-process-calls true` (the default): its
/// services call each other without sockets, through the same client and
/// server stacks (service tokens, the gateway's fan-out, the saga's
/// calls), and a customer's order goes through every one of them to
/// confirmed, as it does with `false`, over HTTP/2.
#[tokio::test]
async fn the_whole_shop_takes_an_order_with_its_services_calling_each_other_in_process_or_not() {
    for in_process in ["true", "false"] {
        whole_shop_takes_an_order(in_process).await;
    }
}

async fn whole_shop_takes_an_order(in_process: &str) {
    let shop = Shop::whole(&["--in-process-calls", in_process]).await;
    let token = shop.signed_up("here@example.com").await;
    let (status, home) = shop_kit::testing::call_json(
        &format!("{}/shop.bff.v1.WebBffService/GetHome", shop.url("gateway")),
        Some(&token),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "the gateway's fan-out: {home}");
    assert_eq!(home.get("degraded"), None, "every section served: {home}");
    let product = first_product(&shop).await;
    order_confirmed(&shop.url("orders"), &token, &product, "here-1").await;
}
