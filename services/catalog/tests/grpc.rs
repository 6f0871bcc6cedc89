//! The catalog over gRPC (tonic's client, h2c) and gRPC-Web (HTTP/1.1),
//! plus the standard health and reflection services.

mod support;

use std::time::Duration;

use prost::Message;
use shop_proto::shop::catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient};
use support::{EnvelopeStream, RawGrpc, TestCatalog, envelope, grpc_web_status, http1};
use tokio_stream::StreamExt;
use tonic::{Code, codec::CompressionEncoding, transport::Channel};

async fn channel(catalog: &TestCatalog) -> Channel {
    Channel::from_shared(catalog.base())
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

#[tokio::test]
async fn grpc_unary_calls_work_with_and_without_gzip() {
    let catalog = TestCatalog::start().await;
    let mut client = CatalogServiceClient::new(channel(&catalog).await);
    let product = client
        .get_product(pb::GetProductRequest { id: "p2".into() })
        .await
        .expect("get p2")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(product.name, "Red cup");

    let mut gzipped = client
        .clone()
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let page = gzipped
        .list_products(pb::ListProductsRequest {
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        page.metadata()
            .get("grpc-encoding")
            .map(|v| v.to_str().ok()),
        Some(Some("gzip"))
    );
    assert_eq!(page.into_inner().products.len(), 3);

    let missing = client
        .get_product(pb::GetProductRequest { id: "nope".into() })
        .await;
    let status = missing.expect_err("unknown product");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nope"));
}

#[tokio::test]
async fn grpc_watch_stock_streams_changes() {
    let catalog = TestCatalog::start().await;
    let mut client = CatalogServiceClient::new(channel(&catalog).await);
    let mut stream = client
        .watch_stock(pb::WatchStockRequest {
            product_ids: vec!["p3".into()],
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stream.next().await.expect("snapshot").expect("ok");
    assert_eq!((first.product_id.as_str(), first.stock_on_hand), ("p3", 0));
    catalog
        .catalog
        .adjust_stock("p3", 7)
        .await
        .expect("restock");
    let change = stream.next().await.expect("change").expect("ok");
    assert_eq!(change.stock_on_hand, 7);
}

#[tokio::test]
async fn grpc_deadlines_are_enforced_by_the_server() {
    let catalog = TestCatalog::start().await;
    let get = pb::GetProductRequest { id: "p1".into() }.encode_to_vec();

    // An already expired deadline is refused before any work.
    let mut call = RawGrpc::call(
        catalog.addr,
        "/shop.catalog.v1.CatalogService/GetProduct",
        &get,
        &[("grpc-timeout", "0m")],
    )
    .await;
    let status = call.next().await.expect_err("no message");
    assert_eq!(status["grpc-status"], "4");

    // A stream still open at its deadline ends with DEADLINE_EXCEEDED.
    let watch = pb::WatchStockRequest {
        product_ids: vec!["p1".into()],
    }
    .encode_to_vec();
    let mut stream = RawGrpc::call(
        catalog.addr,
        "/shop.catalog.v1.CatalogService/WatchStock",
        &watch,
        &[("grpc-timeout", "300m")],
    )
    .await;
    let snapshot = stream.next().await.expect("snapshot");
    assert_eq!(
        pb::WatchStockResponse::decode(snapshot)
            .expect("proto")
            .stock_on_hand,
        5
    );
    let trailers = stream
        .next()
        .await
        .expect_err("the stream ends at its deadline");
    assert_eq!(trailers["grpc-status"], "4");

    // The same deadline from tonic's client surfaces as DEADLINE_EXCEEDED too.
    let mut client = CatalogServiceClient::new(channel(&catalog).await);
    let mut request = tonic::Request::new(pb::WatchStockRequest {
        product_ids: vec!["p1".into()],
    });
    request.set_timeout(Duration::from_millis(300));
    let mut stream = client
        .watch_stock(request)
        .await
        .expect("watch")
        .into_inner();
    assert!(stream.next().await.expect("snapshot").is_ok());
    let ended = stream.next().await.expect("a status");
    assert_eq!(ended.expect_err("deadline").code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn oversize_grpc_request_is_resource_exhausted() {
    let catalog = TestCatalog::start().await;
    let mut client = CatalogServiceClient::new(channel(&catalog).await);
    let request = pb::ListProductsRequest {
        query: "x".repeat(5 * 1024 * 1024),
        ..Default::default()
    };
    let status = client.list_products(request).await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

async fn grpc_web_call(catalog: &TestCatalog, path: &str, message: &[u8]) -> EnvelopeStream {
    let response = http1()
        .post(format!("{}{path}", catalog.base()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(envelope(0, message))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    EnvelopeStream::new(response)
}

#[tokio::test]
async fn grpc_web_unary_and_streaming_over_http1() {
    let catalog = TestCatalog::start().await;
    let request = pb::GetProductRequest { id: "p1".into() }.encode_to_vec();
    let mut body = grpc_web_call(
        &catalog,
        "/shop.catalog.v1.CatalogService/GetProduct",
        &request,
    )
    .await;
    let (flags, message) = body.next().await.expect("message");
    assert_eq!(flags, 0);
    let product = pb::GetProductResponse::decode(message)
        .expect("proto")
        .product
        .expect("product");
    assert_eq!(product.sku, "CUP-001");
    let (flags, trailers) = body.next().await.expect("trailers");
    assert_eq!(flags, 0x80);
    assert_eq!(grpc_web_status(&trailers).as_deref(), Some("0"));

    let watch = pb::WatchStockRequest {
        product_ids: vec!["p2".into()],
    }
    .encode_to_vec();
    let mut stream = grpc_web_call(
        &catalog,
        "/shop.catalog.v1.CatalogService/WatchStock",
        &watch,
    )
    .await;
    let (_, snapshot) = stream.next().await.expect("snapshot");
    assert_eq!(
        pb::WatchStockResponse::decode(snapshot)
            .expect("proto")
            .stock_on_hand,
        2
    );
    catalog
        .catalog
        .adjust_stock("p2", -2)
        .await
        .expect("sell out");
    let (_, change) = stream.next().await.expect("change");
    assert_eq!(
        pb::WatchStockResponse::decode(change)
            .expect("proto")
            .stock_on_hand,
        0
    );
}

#[tokio::test]
async fn grpc_web_errors_carry_the_status() {
    let catalog = TestCatalog::start().await;
    let request = pb::GetProductRequest { id: "ghost".into() }.encode_to_vec();
    let response = http1()
        .post(format!(
            "{}/shop.catalog.v1.CatalogService/GetProduct",
            catalog.base()
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(envelope(0, &request))
        .send()
        .await
        .expect("send");
    // Trailers-only: the status travels in the headers.
    assert_eq!(response.headers()["grpc-status"], "5");
}

#[tokio::test]
async fn health_check_over_grpc_and_grpc_web() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let catalog = TestCatalog::start().await;
    let mut health = HealthClient::new(channel(&catalog).await);
    for service in ["", "shop.catalog.v1.CatalogService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Service".into(),
        })
        .await;
    assert_eq!(unknown.expect_err("unknown service").code(), Code::NotFound);

    let request = HealthCheckRequest {
        service: String::new(),
    }
    .encode_to_vec();
    let mut body = grpc_web_call(&catalog, "/grpc.health.v1.Health/Check", &request).await;
    let (_, message) = body.next().await.expect("message");
    let answer = tonic_health::pb::HealthCheckResponse::decode(message).expect("proto");
    assert_eq!(answer.status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn reflection_lists_the_served_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let catalog = TestCatalog::start().await;
    let mut reflection = ServerReflectionClient::new(channel(&catalog).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflect")
        .into_inner();
    let answer = answers.next().await.expect("answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list, got {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "shop.catalog.v1.CatalogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
        // Every listed service must also be describable (buf curl
        // --list-methods resolves them all).
        assert_describes(&mut reflection, expected).await;
    }
    // The error details a refusal carries are described too, so grpcurl
    // and buf curl decode them.
    for detail in [
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
        "google.rpc.BadRequest",
    ] {
        assert_describes(&mut reflection, detail).await;
    }
}

/// Reflection answers `symbol` with the file that declares it.
async fn assert_describes(
    reflection: &mut tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient<
        tonic::transport::Channel,
    >,
    symbol: &str,
) {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let answer = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflect")
        .into_inner()
        .next()
        .await
        .expect("answer")
        .expect("ok");
    assert!(
        matches!(
            answer.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ),
        "{symbol} cannot be described: {answer:?}"
    );
}

#[tokio::test]
async fn grpc_with_the_json_codec_is_transcoded() {
    let catalog = TestCatalog::start().await;
    let mut call = RawGrpc::call(
        catalog.addr,
        "/shop.catalog.v1.CatalogService/GetProduct",
        br#"{"id":"p2"}"#,
        &[("content-type", "application/grpc+json")],
    )
    .await;
    assert_eq!(call.headers["content-type"], "application/grpc+json");
    let message = call.next().await.expect("a JSON message");
    let json: serde_json::Value = serde_json::from_slice(&message).expect("json");
    assert_eq!(json["product"]["name"], "Red cup");
    let trailers = call.next().await.expect_err("trailers");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn grpc_unknown_codecs_are_refused() {
    let catalog = TestCatalog::start().await;
    let call = RawGrpc::call(
        catalog.addr,
        "/shop.catalog.v1.CatalogService/GetProduct",
        b"{}",
        &[("content-type", "application/grpc+xml")],
    )
    .await;
    assert_eq!(call.status, 415);
}

#[tokio::test]
async fn unary_methods_take_exactly_one_message() {
    let catalog = TestCatalog::start().await;
    let one = envelope(
        0,
        &pb::GetProductRequest { id: "p1".into() }.encode_to_vec(),
    );
    let path = "/shop.catalog.v1.CatalogService/GetProduct";
    for body in [Vec::new(), [one.clone(), one.clone()].concat()] {
        let mut call = RawGrpc::call_raw(catalog.addr, path, body, &[]).await;
        let status = call.next().await.expect_err("refused");
        assert_eq!(status["grpc-status"], "12", "{status:?}");
    }
    // Exactly one is served.
    let mut call = RawGrpc::call_raw(catalog.addr, path, one, &[]).await;
    assert!(call.next().await.is_ok());
}
