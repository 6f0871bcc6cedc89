//! A quiet WatchStock carries heartbeats on every protocol (Connect JSON
//! and proto, gRPC, gRPC-Web, REST's events), and a change after them
//! still arrives: the stream a proxy would have cut as idle lives on. The
//! catalog beats every second here (30 s by default); `just edge` shows
//! the default through nginx with a 35 s read timeout.

mod support;

use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};
use shop_proto::shop::catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient};
use support::{EnvelopeStream, TestCatalog, envelope, http1};
use tokio_stream::StreamExt;

/// Quiet for this long, a stream has beaten at least once (its interval is
/// 1 s): room for a slow machine, and still far under the default 30 s.
const PATIENCE: Duration = Duration::from_secs(10);

async fn catalog() -> TestCatalog {
    TestCatalog::start_with(shop_kit::HttpConfig {
        stream_heartbeat_secs: 1,
        ..shop_kit::HttpConfig::default()
    })
    .await
}

/// Takes two units of p1 and gives them back, as the saga would.
async fn move_stock(catalog: &TestCatalog) {
    for (method, body) in [
        (
            "ReserveStock",
            json!({"reservationId": "o-1", "items": [{"productId": "p1", "quantity": 2}]}),
        ),
        ("ReleaseStock", json!({"reservationId": "o-1"})),
    ] {
        let (status, answer) =
            shop_kit::testing::call_json(&catalog.url(method), Some(&catalog.service_token), &body)
                .await;
        assert_eq!(status, 200, "{method}: {answer}");
    }
}

async fn connect_watch(catalog: &TestCatalog, content_type: &str, body: Vec<u8>) -> EnvelopeStream {
    let response = http1()
        .post(catalog.url("WatchStock"))
        .header("content-type", content_type)
        .header("connect-protocol-version", "1")
        .body(envelope(0, &body))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    EnvelopeStream::new(response)
}

fn json_message(found: Option<(u8, bytes::Bytes)>) -> Value {
    let (flags, payload) = found.expect("an envelope");
    assert_eq!(flags, 0, "a message: {payload:?}");
    serde_json::from_slice(&payload).expect("json")
}

#[tokio::test]
async fn connect_json_and_proto_streams_beat_when_quiet_and_go_on() {
    let catalog = catalog().await;
    let request = json!({"productIds": ["p1"]}).to_string().into_bytes();
    let mut stream = connect_watch(&catalog, "application/connect+json", request).await;
    assert_eq!(
        json_message(stream.next().await),
        json!({"productId": "p1", "stockOnHand": 5})
    );
    // Nothing changes: heartbeats, and only the heartbeat field in them.
    for _ in 0..2 {
        assert_eq!(json_message(stream.next().await), json!({"heartbeat": {}}));
    }
    move_stock(&catalog).await;
    let mut after = json_message(stream.next().await);
    while after == json!({"heartbeat": {}}) {
        after = json_message(stream.next().await);
    }
    assert_eq!(after, json!({"productId": "p1", "stockOnHand": 3}));

    let request = pb::WatchStockRequest {
        product_ids: vec!["p1".into()],
    };
    let mut stream = connect_watch(
        &catalog,
        "application/connect+proto",
        request.encode_to_vec(),
    )
    .await;
    let decode = |found: Option<(u8, bytes::Bytes)>| {
        let (flags, payload) = found.expect("an envelope");
        assert_eq!(flags, 0);
        pb::WatchStockResponse::decode(payload).expect("proto")
    };
    assert_eq!(decode(stream.next().await).stock_on_hand, 5);
    let beat = decode(stream.next().await);
    assert!(beat.heartbeat.is_some(), "{beat:?}");
    assert_eq!(
        (beat.product_id.as_str(), beat.stock_on_hand),
        ("", 0),
        "a heartbeat carries nothing else"
    );
}

#[tokio::test]
async fn grpc_streams_beat_and_tonic_clients_see_the_field() {
    let catalog = catalog().await;
    let channel = tonic::transport::Channel::from_shared(catalog.base())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = CatalogServiceClient::new(channel);
    let mut stream = client
        .watch_stock(pb::WatchStockRequest {
            product_ids: vec!["p1".into()],
        })
        .await
        .expect("watch")
        .into_inner();
    let next = async |stream: &mut tonic::Streaming<pb::WatchStockResponse>| {
        tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("a message in time")
            .expect("more")
            .expect("ok")
    };
    assert_eq!(next(&mut stream).await.stock_on_hand, 5);
    assert!(next(&mut stream).await.heartbeat.is_some());
    move_stock(&catalog).await;
    let mut after = next(&mut stream).await;
    while after.heartbeat.is_some() {
        after = next(&mut stream).await;
    }
    assert_eq!(after.stock_on_hand, 3);
}

#[tokio::test]
async fn grpc_web_and_grpc_json_streams_beat_in_their_own_encoding() {
    let catalog = catalog().await;
    let request = pb::WatchStockRequest {
        product_ids: vec!["p1".into()],
    };
    let response = http1()
        .post(format!(
            "{}/{}/WatchStock",
            catalog.base(),
            support::SERVICE
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(envelope(0, &request.encode_to_vec()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut stream = EnvelopeStream::new(response);
    let (_, snapshot) = stream.next().await.expect("snapshot");
    assert_eq!(
        pb::WatchStockResponse::decode(snapshot)
            .expect("proto")
            .stock_on_hand,
        5
    );
    let (flags, beat) = stream.next().await.expect("heartbeat");
    assert_eq!(flags, 0);
    assert!(
        pb::WatchStockResponse::decode(beat)
            .expect("proto")
            .heartbeat
            .is_some()
    );

    let mut json = support::RawGrpc::call(
        catalog.addr,
        &format!("/{}/WatchStock", support::SERVICE),
        br#"{"productIds":["p1"]}"#,
        &[("content-type", "application/grpc+json")],
    )
    .await;
    assert_eq!(json.status, 200);
    let snapshot = json.next().await.expect("snapshot");
    assert_eq!(
        serde_json::from_slice::<Value>(&snapshot).expect("json")["stockOnHand"],
        5
    );
    let beat = json.next().await.expect("heartbeat");
    assert_eq!(
        serde_json::from_slice::<Value>(&beat).expect("json"),
        json!({"heartbeat": {}})
    );
}

#[tokio::test]
async fn rest_events_beat_as_comment_lines() {
    let catalog = catalog().await;
    let response = http1()
        .get(format!("{}/v1/stock:watch?productIds=p1", catalog.base()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    let mut text = String::new();
    while text.matches(": heartbeat\n\n").count() < 2 {
        let chunk = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("more")
            .expect("bytes");
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    assert!(
        text.starts_with("data: {\"productId\":\"p1\",\"stockOnHand\":5}\n\n"),
        "{text}"
    );
    assert!(!text.contains("\"heartbeat\""), "no data event: {text}");
    move_stock(&catalog).await;
    while !text.contains("\"stockOnHand\":3") {
        let chunk = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("more")
            .expect("bytes");
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
}
