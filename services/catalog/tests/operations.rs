//! What operators rely on: probes, metrics, graceful shutdown.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{EnvelopeStream, TestCatalog, envelope, http1};

#[tokio::test]
async fn liveness_and_readiness_probes() {
    let catalog = TestCatalog::start().await;
    let live = http1()
        .get(format!("{}/healthz", catalog.base()))
        .send()
        .await
        .expect("send");
    assert_eq!(live.status(), 200);
    let ready = http1()
        .get(format!("{}/readyz", catalog.base()))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 200);

    // Readiness follows the database: closed, the service is not ready.
    catalog
        .catalog
        .store()
        .ledger
        .db()
        .clone()
        .close()
        .await
        .expect("close db");
    let ready = http1()
        .get(format!("{}/readyz", catalog.base()))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.expect("text").contains("database"));
}

fn counter(metrics: &str, method: &str, protocol: &str, code: &str) -> u64 {
    let labels = format!(
        "service=\"shop.catalog.v1.CatalogService\",method=\"{method}\",protocol=\"{protocol}\",code=\"{code}\""
    );
    metrics
        .lines()
        .find(|line| {
            line.starts_with("rpc_server_call_duration_seconds_count{") && line.contains(&labels)
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

async fn scrape(catalog: &TestCatalog) -> String {
    let response = http1()
        .get(format!("{}/metrics", catalog.base()))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

#[tokio::test]
async fn metrics_count_every_rpc_by_protocol_and_code() {
    let catalog = TestCatalog::start().await;
    let before = scrape(&catalog).await;
    for id in ["p1", "ghost"] {
        http1()
            .post(catalog.url("GetProduct"))
            .header("content-type", "application/json")
            .body(json!({"id": id}).to_string())
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("body");
    }
    let grpc_web = shop_proto::shop::catalog::v1::GetProductRequest { id: "ghost".into() };
    http1()
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/grpc-web+proto")
        .body(envelope(0, &prost::Message::encode_to_vec(&grpc_web)))
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("body");

    // The counters are process-wide; other tests may run alongside, so
    // compare growth, not absolute values.
    let after = scrape(&catalog).await;
    for (protocol, code) in [
        ("connect", "ok"),
        ("connect", "not_found"),
        ("grpcweb", "not_found"),
    ] {
        assert!(
            counter(&after, "GetProduct", protocol, code)
                > counter(&before, "GetProduct", protocol, code),
            "{protocol}/{code} did not move:\n{after}"
        );
    }
    assert!(
        after.contains("rpc_server_call_duration_seconds_bucket{"),
        "histogram missing"
    );
    // Request and response sizes, in byte buckets, by the same labels.
    for sizes in [
        "rpc_server_request_size_bytes_bucket{service=\"shop.catalog.v1.CatalogService\",method=\"GetProduct\",protocol=\"connect\",code=\"ok\",le=\"64\"}",
        "rpc_server_response_size_bytes_bucket{service=\"shop.catalog.v1.CatalogService\",method=\"GetProduct\",protocol=\"connect\",code=\"ok\",le=\"4194304\"}",
    ] {
        assert!(after.contains(sizes), "{sizes} missing:\n{after}");
    }
}

/// Callers inventing services and methods cannot grow /metrics: every
/// invented name is counted under "unknown", never as a label of its own.
#[tokio::test]
async fn metric_labels_stay_bounded_whatever_paths_callers_invent() {
    let catalog = TestCatalog::start().await;
    for number in 0..40 {
        for path in [
            format!("/shop.catalog.v1.CatalogService/Invented{number}"),
            format!("/made.up.v{number}.Service/Call"),
        ] {
            http1()
                .post(format!("{}{path}", catalog.base()))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("send")
                .bytes()
                .await
                .expect("body");
        }
    }
    let metrics = scrape(&catalog).await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("rpc_server_call_duration_seconds_count{"))
        .collect();
    assert!(
        !series
            .iter()
            .any(|line| line.contains("Invented") || line.contains("made.up")),
        "an invented name became a label:\n{metrics}"
    );
    let unknown: Vec<&&str> = series
        .iter()
        .filter(|line| line.contains("service=\"unknown\""))
        .collect();
    assert!(
        !unknown.is_empty() && unknown.len() <= 4,
        "80 invented calls should share a few unknown series: {unknown:#?}"
    );
    assert!(
        unknown
            .iter()
            .all(|line| line.rsplit(' ').next() != Some("0")),
        "{unknown:#?}"
    );
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_stops_the_server() {
    let catalog = TestCatalog::start().await;
    let response = http1()
        .post(catalog.url("WatchStock"))
        .header("content-type", "application/connect+json")
        .body(envelope(0, br#"{"productIds":["p1"]}"#))
        .send()
        .await
        .expect("send");
    let mut stream = EnvelopeStream::new(response);
    assert_eq!(stream.next().await.expect("snapshot").0, 0);

    catalog.shutdown.trigger();
    let (flags, end) = stream.next().await.expect("the stream ends cleanly");
    assert_eq!(flags & 0x02, 0x02, "end-of-stream message");
    let end: serde_json::Value = serde_json::from_slice(&end).expect("json");
    assert!(end.get("error").is_none(), "a clean end: {end}");

    let stopped = tokio::time::timeout(Duration::from_secs(5), catalog.server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "server did not stop: {stopped:?}"
    );
}

/// A caller that breaks off while its message is on its way is a call
/// canceled by its caller (as a hedge's losing copy is): counted and logged
/// as `canceled`, never as the server's own `internal` failure, which an
/// error-rate alert would page for.
#[tokio::test]
async fn a_caller_gone_while_its_message_was_read_is_counted_canceled() {
    use futures::StreamExt as _;
    let catalog = TestCatalog::start().await;
    let before = scrape(&catalog).await;
    // A gRPC-Web envelope's head announcing 100 bytes, then the sender
    // breaks off.
    let broken = futures::stream::iter([
        Ok(bytes::Bytes::from_static(&[0, 0, 0, 0, 100])),
        Err(std::io::Error::other("the caller went away")),
    ])
    .boxed();
    // Over HTTP/2 the stream is reset and the connection lives on, as a
    // hedge's copy is cancelled.
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let sent = http2
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/grpc-web+proto")
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    assert!(sent.is_err(), "the call was broken off: {sent:?}");
    let mut after = scrape(&catalog).await;
    for _ in 0..50 {
        if counter(&after, "GetProduct", "grpcweb", "canceled")
            > counter(&before, "GetProduct", "grpcweb", "canceled")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = scrape(&catalog).await;
    }
    assert_eq!(
        counter(&after, "GetProduct", "grpcweb", "internal"),
        counter(&before, "GetProduct", "grpcweb", "internal"),
        "counted as internal:\n{after}"
    );
    assert!(
        counter(&after, "GetProduct", "grpcweb", "canceled")
            > counter(&before, "GetProduct", "grpcweb", "canceled"),
        "not counted canceled:\n{after}"
    );
}
