//! Admission control at the orders service's door: with as many calls at
//! work as its limit allows and none finishing, one more is refused at once
//! on every protocol (Connect, gRPC, gRPC-Web, REST) with
//! `resource_exhausted`, when to come back, and the mark that it was never
//! worked on; health, readiness and metrics still answer; nothing is lost.

mod support;

use std::time::Duration;

use prost::Message as _;
use serde_json::json;
use shop_proto::shop::orders::v1::{
    CreateOrderRequest, create_order_request::Item, order_service_client::OrderServiceClient,
};
use support::{Options, Shop};

/// Orders' limit: its floor and ceiling both.
const LIMIT: usize = 8;

fn order(key: &str) -> serde_json::Value {
    json!({
        "idempotencyKey": key,
        "paymentToken": "tok_visa",
        "items": [{"productId": "p1", "quantity": 1}],
    })
}

fn grpc_order(key: &str) -> CreateOrderRequest {
    CreateOrderRequest {
        items: vec![Item {
            product_id: "p1".to_owned(),
            quantity: 1,
        }],
        payment_token: "tok_visa".to_owned(),
        idempotency_key: key.to_owned(),
    }
}

/// Asserts a refusal's head says when to come back and that nothing ran.
fn assert_not_processed(headers: &reqwest::header::HeaderMap, protocol: &str) {
    assert_eq!(
        headers
            .get("x-shop-not-processed")
            .and_then(|v| v.to_str().ok()),
        Some("overloaded"),
        "{protocol}: {headers:?}"
    );
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1"),
        "{protocol}: {headers:?}"
    );
}

#[tokio::test]
async fn a_full_door_refuses_at_once_on_every_protocol_and_health_still_answers() {
    let shop = Shop::start_with(Options {
        orders_max_calls_in_flight: LIMIT,
        ..Options::default()
    })
    .await;
    // The catalog holds every price lookup: LIMIT orders at work at once.
    let (gate, held) = shop.orders_held_at_the_catalog(LIMIT).await;
    let url = format!(
        "http://{}/shop.orders.v1.OrderService/CreateOrder",
        shop.orders
    );
    // Nothing finishing for longer than a queued call may wait (the kit's
    // 500 ms): the queue is closed too.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let http = reqwest::Client::new();

    // Connect (JSON).
    let answer = http
        .post(&url)
        .bearer_auth(&shop.ada)
        .header("content-type", "application/json")
        .body(order("connect").to_string())
        .send()
        .await
        .expect("connect call");
    assert_eq!(answer.status(), 429);
    assert_not_processed(answer.headers(), "connect");
    let error: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(error["code"], "resource_exhausted", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("overloaded:")),
        "{error}"
    );
    assert!(
        error["details"]
            .as_array()
            .is_some_and(|details| details.iter().any(|d| d["type"] == "google.rpc.RetryInfo")),
        "{error}"
    );

    // REST.
    let answer = http
        .post(format!("http://{}/v1/orders", shop.orders))
        .bearer_auth(&shop.ada)
        .json(&order("rest"))
        .send()
        .await
        .expect("rest call");
    assert_eq!(answer.status(), 429);
    assert_not_processed(answer.headers(), "rest");

    // gRPC-Web.
    let mut framed = vec![0u8];
    let message = grpc_order("grpc-web").encode_to_vec();
    framed.extend_from_slice(&u32::try_from(message.len()).expect("len").to_be_bytes());
    framed.extend_from_slice(&message);
    let answer = http
        .post(&url)
        .bearer_auth(&shop.ada)
        .header("content-type", "application/grpc-web+proto")
        .body(framed)
        .send()
        .await
        .expect("grpc-web call");
    assert_eq!(
        answer
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("8"),
        "{:?}",
        answer.headers()
    );
    assert_not_processed(answer.headers(), "grpc-web");

    // gRPC.
    let mut client = OrderServiceClient::connect(format!("http://{}", shop.orders))
        .await
        .expect("connect");
    let mut request = tonic::Request::new(grpc_order("grpc"));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", shop.ada).parse().expect("header"),
    );
    let status = client.create_order(request).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.metadata().contains_key("x-shop-not-processed"),
        "{status:?}"
    );

    // Health, readiness and metrics are never refused.
    let base = format!("http://{}", shop.orders);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = http.get(format!("{base}{path}")).send().await.expect(path);
        assert_eq!(answer.status(), 200, "{path}");
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Channel::from_shared(base.clone())
            .expect("uri")
            .connect()
            .await
            .expect("channel"),
    );
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health check");
    assert_eq!(serving.get_ref().status, 1, "SERVING");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let refused = metrics
        .lines()
        .find(|line| {
            line.starts_with("shop_admission_refused_total")
                && line.contains("shop.orders.v1.OrderService")
                && line.contains("queue_full")
        })
        .unwrap_or_default();
    assert!(
        refused.ends_with(" 4"),
        "four refusals counted: {refused:?}"
    );

    // The held orders go on once the catalog answers; the refused ones
    // were never placed.
    gate.add_permits(LIMIT);
    for call in held {
        let (status, placed) = call.await.expect("joined");
        assert_eq!(status, 200, "{placed}");
    }
    let (status, listed) = shop
        .call("ListOrders", Some(&shop.ada), json!({"pageSize": 100}))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["orders"].as_array().map(Vec::len),
        Some(LIMIT),
        "{listed}"
    );
}
