//! The local dashboard of the whole shop, as a developer's browser uses it
//! (its JSON API; tests/e2e/dashboard.test.mjs drives the page itself in
//! Chromium): every service and RPC listed, an order placed from the
//! explorer, its trace across services and its saga within seconds, the
//! log filtered by trace; strangers refused; off when asked.

mod launched;

use std::time::Duration;

use launched::{Shop, free_port};
use serde_json::{Value, json};

/// The status and body of `url` (0 while nothing listens: the dashboard
/// starts once every service is ready).
async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let Ok(answer) = client.get(url).send().await else {
        return (0, Value::Null);
    };
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Asks `url` until `ready` holds of its answer (at most 5 s).
async fn eventually(client: &reqwest::Client, url: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let (status, body) = get(client, url).await;
        if status == 200 && ready(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{url} never showed what was expected: {}",
        get(client, url).await.1
    )
}

#[tokio::test]
async fn the_dashboard_shows_the_contract_and_an_order_placed_from_its_explorer_with_trace_and_saga()
 {
    let port = free_port().to_string();
    let shop = Shop::whole_logged(
        &[],
        &[("SHOP_DASHBOARD", "on"), ("SHOP_DASHBOARD_PORT", &port)],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Every service live, and every RPC the services serve, from the
    // contract.
    let overview = eventually(&client, &format!("{base}/api/overview"), |o| {
        o["services"].is_array()
    })
    .await;
    let names: Vec<&str> = overview["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for service in ["users", "catalog", "orders", "payments", "gateway"] {
        assert!(names.contains(&service), "{service} in {names:?}");
    }
    let (_, contract) = get(&client, &format!("{base}/api/contract")).await;
    let listed: usize = contract["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["methods"].as_array().map_or(0, Vec::len))
        .sum();
    let pool =
        prost_reflect::DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("contract");
    let served: usize = pool
        .services()
        .filter(|s| s.package_name().starts_with("shop."))
        .map(|s| s.methods().len())
        .sum();
    assert_eq!(listed, served, "every RPC of the contract is listed");

    // An order from the explorer, as the demo customer: placed, then its
    // trace (the caller's trace linked, not continued) and its saga.
    let (status, placed) = {
        let answer = client
            .post(format!("{base}/api/call"))
            .json(&json!({
                "method": "shop.orders.v1.OrderService/CreateOrder",
                "as": "demo",
                "body": {"idempotencyKey": "dashboard-1", "items": [{"productId": "prod_mug", "quantity": 1}], "paymentToken": "tok_declined"},
            }))
            .send()
            .await
            .expect("explorer answers");
        (
            answer.status().as_u16(),
            answer.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["code"], "ok", "{placed}");
    assert!(
        placed["lines"]["grpcurl"]
            .as_str()
            .is_some_and(|l| l.contains("CreateOrder"))
    );
    let order = placed["orderId"].as_str().expect("an order id").to_owned();
    let trace_id = placed["traceId"].as_str().expect("its trace").to_owned();
    let saga = eventually(&client, &format!("{base}/api/orders/{order}"), |s| {
        s["ended"] == "cancelled"
    })
    .await;
    let steps: Vec<&str> = saga["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["reserve_stock", "charge", "refund", "release_stock"],
        "{saga}"
    );
    assert!(
        saga["steps"][1]["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("card_declined")),
        "why it ended: {saga}"
    );
    let (_, trace) = get(&client, &format!("{base}/api/traces/{trace_id}")).await;
    let services: std::collections::BTreeSet<&str> = trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["service"].as_str())
        .collect();
    for service in ["orders", "catalog", "payments"] {
        assert!(
            services.contains(service),
            "{service} in the trace: {services:?}"
        );
    }
    assert_eq!(trace["orders"][0], order.as_str());
    let logs = eventually(&client, &format!("{base}/api/logs?trace={trace_id}"), |l| {
        l["lines"].as_array().is_some_and(|lines| !lines.is_empty())
    })
    .await;
    assert!(
        logs["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|l| l["trace_id"] == trace_id.as_str())
    );

    // Bad input has precise answers; strangers are refused.
    let answer = client
        .post(format!("{base}/api/call"))
        .json(&json!({"method": "shop.orders.v1.OrderService/Nothing", "as": "demo"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 404);
    let answer = client
        .get(format!("{base}/api/overview"))
        .header("Host", "dashboard.evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403, "a rebound name is refused");
    let answer = client
        .post(format!("{base}/api/call"))
        .header("Origin", "https://evil.example")
        .json(&json!({"method": "shop.orders.v1.OrderService/ListOrders", "as": "demo"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        answer.status(),
        403,
        "another site's page may not call as the customer"
    );
    // Nor a page of another server on this machine, nor a framing page.
    let answer = client
        .post(format!("{base}/api/call"))
        .header("Origin", "http://localhost:3000")
        .json(&json!({"method": "shop.orders.v1.OrderService/ListOrders", "as": "demo"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403, "only the dashboard's own origin");
    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let api = client
        .get(format!("{base}/api/overview"))
        .send()
        .await
        .expect("overview");
    assert_eq!(api.headers()["x-frame-options"], "DENY");
    let (_, usage) = get(&client, &format!("{base}/api/usage")).await;
    assert!(usage["traces"]["bytes"].as_u64() <= usage["traces"]["limit_bytes"].as_u64());
    drop(shop);
}

#[tokio::test]
async fn one_service_alone_runs_the_dashboard_when_asked() {
    let port = free_port();
    let shop = Shop::serve_logged(
        "users",
        &["--dashboard"],
        &[("SHOP_DASHBOARD_PORT", &port.to_string())],
    )
    .await;
    let client = reqwest::Client::new();
    let overview = eventually(
        &client,
        &format!("http://127.0.0.1:{port}/api/overview"),
        |o| o["services"].is_array(),
    )
    .await;
    assert_eq!(overview["services"][0]["name"], "users");
    // Served alone (in a pod, most likely), it says what it exposes.
    let log = shop.stop_for_log();
    assert!(
        log.contains("to every process that reaches this machine's or pod's loopback"),
        "{log}"
    );
}
