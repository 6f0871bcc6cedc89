//! The catalog over the Connect protocol, from a plain HTTP client.

mod support;

use std::io::{Read, Write};

use prost::Message;
use serde_json::{Value, json};
use shop_catalog::domain::{Money, NewProduct};
use shop_proto::shop::catalog::v1 as pb;
use support::{EnvelopeStream, TestCatalog, envelope, http1};

async fn post_json(catalog: &TestCatalog, method: &str, body: Value) -> (u16, Value) {
    let response = http1()
        .post(catalog.url(method))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn json_post_lists_products_page_by_page() {
    let catalog = TestCatalog::start().await;
    let (status, first) = post_json(&catalog, "ListProducts", json!({"pageSize": 2})).await;
    assert_eq!(status, 200);
    let skus: Vec<&str> = first["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["sku"].as_str().expect("sku"))
        .collect();
    assert_eq!(skus, ["CUP-001", "CUP-002"]);
    assert_eq!(
        first["products"][0]["price"],
        json!({"currencyCode": "EUR", "minorUnits": "1200"})
    );
    let token = first["nextPageToken"].as_str().expect("a next page");

    let (_, second) = post_json(
        &catalog,
        "ListProducts",
        json!({"pageSize": 2, "pageToken": token}),
    )
    .await;
    assert_eq!(second["products"][0]["sku"], "POT-001");
    assert_eq!(second.get("nextPageToken"), None, "last page has no token");

    let (_, found) = post_json(&catalog, "ListProducts", json!({"query": "red"})).await;
    assert_eq!(found["products"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["products"][0]["id"], "p2");

    // A token the catalog never issued is refused for that reason.
    let (status, made_up) =
        post_json(&catalog, "ListProducts", json!({"pageToken": "bm9wZQ"})).await;
    assert_eq!(status, 400, "{made_up}");
    assert_eq!(
        shop_kit::testing::error_info(&made_up),
        Some((
            "PAGE_TOKEN_NOT_ISSUED".to_owned(),
            "catalog.connect-shop".to_owned()
        )),
        "{made_up}"
    );
}

#[tokio::test]
async fn proto_post_gets_a_product() {
    let catalog = TestCatalog::start().await;
    let request = pb::GetProductRequest { id: "p1".into() };
    let response = http1()
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/proto")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/proto");
    let decoded =
        pb::GetProductResponse::decode(response.bytes().await.expect("body")).expect("proto");
    let product = decoded.product.expect("product");
    assert_eq!(
        (product.sku.as_str(), product.stock_on_hand),
        ("CUP-001", 5)
    );
}

#[tokio::test]
async fn batch_get_answers_in_the_order_asked_or_names_the_unknown_product() {
    let catalog = TestCatalog::start().await;
    let (status, found) = post_json(
        &catalog,
        "BatchGetProducts",
        json!({"productIds": ["p3", "p1", "p3"]}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let ids: Vec<&str> = found["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["p3", "p1"], "in the order asked, each once");
    assert_eq!(found["products"][1]["sku"], "CUP-001");

    let (status, unknown) = post_json(
        &catalog,
        "BatchGetProducts",
        json!({"productIds": ["p1", "ghost"]}),
    )
    .await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    assert!(
        unknown["message"]
            .as_str()
            .expect("message")
            .contains("ghost"),
        "{unknown}"
    );

    let too_many: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
    for refused in [
        json!({}),
        json!({"productIds": too_many}),
        json!({"productIds": [""]}),
    ] {
        let (status, error) = post_json(&catalog, "BatchGetProducts", refused).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_argument"))
        );
    }

    // Connect GET too: it reads nothing but the catalog.
    let url = format!(
        "{}?encoding=json&message={}",
        catalog.url("BatchGetProducts"),
        "%7B%22productIds%22%3A%5B%22p2%22%5D%7D"
    );
    let response = http1().get(url).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["products"][0]["id"], "p2");
}

#[tokio::test]
async fn get_requests_serve_idempotent_methods() {
    let catalog = TestCatalog::start().await;
    let url = format!(
        "{}?connect=v1&encoding=json&message={}",
        catalog.url("GetProduct"),
        "%7B%22id%22%3A%22p3%22%7D"
    );
    let response = http1().get(url).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["product"]["name"], "Coffee pot");

    let list = format!(
        "{}?encoding=json&message=%7B%7D",
        catalog.url("ListProducts")
    );
    let response = http1().get(list).send().await.expect("send");
    assert_eq!(response.status(), 200);

    // A streaming method has no GET.
    let watch = format!("{}?encoding=json&message=%7B%7D", catalog.url("WatchStock"));
    assert_eq!(http1().get(watch).send().await.expect("send").status(), 405);
}

#[tokio::test]
async fn gzip_works_in_both_directions() {
    let catalog = TestCatalog::start().await;
    for i in 0..20 {
        let price = Money::new("EUR", 500 + i).expect("price");
        let product = NewProduct::new(
            format!("extra{i}"),
            &format!("EXTRA-{i:03}"),
            "Extra",
            "More stock",
            price,
            1,
        )
        .expect("product");
        catalog.catalog.add_product(product).await.expect("insert");
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(br#"{"pageSize": 50}"#).expect("gzip");
    let response = http1()
        .post(catalog.url("ListProducts"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(encoder.finish().expect("gzip"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-encoding"],
        "gzip",
        "a 1 KiB+ answer is compressed"
    );
    let compressed = response.bytes().await.expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["products"].as_array().map(Vec::len), Some(23));

    // Small answers are not worth compressing.
    let small = http1()
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(r#"{"id":"p1"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn unsupported_encoding_is_a_connect_error() {
    let catalog = TestCatalog::start().await;
    let response = http1()
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 501);
    let body: Value = response.json().await.expect("json error");
    assert_eq!(body["code"], "unimplemented");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("gzip")
    );
}

#[tokio::test]
async fn integers_written_as_integral_numbers_are_read_as_protojson_reads_them() {
    // `2.0` and `2e0` are the integer 2 in protobuf's JSON mapping (as
    // connect-go and connect-es read them); a fraction is refused.
    let catalog = TestCatalog::start().await;
    for body in [r#"{"pageSize": 2.0}"#, r#"{"pageSize":2e0,"query":""}"#] {
        let response = http1()
            .post(catalog.url("ListProducts"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{body}");
        let page: Value = response.json().await.expect("json");
        assert_eq!(page["products"].as_array().map(Vec::len), Some(2), "{page}");
    }
    let (status, _) = post_json(&catalog, "ListProducts", json!({"pageSize": 2.0})).await;
    assert_eq!(status, 200);
    let (status, body) = post_json(&catalog, "ListProducts", json!({"pageSize": 2.5})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    // The same over GET, plain and in base64.
    for message in [
        "message=%7B%22pageSize%22%3A2.0%7D",
        "base64=1&message=eyJwYWdlU2l6ZSI6Mi4wfQ",
    ] {
        let url = format!(
            "{}?connect=v1&encoding=json&{message}",
            catalog.url("ListProducts")
        );
        let response = http1().get(url).send().await.expect("send");
        assert_eq!(response.status(), 200, "{message}");
        let page: Value = response.json().await.expect("json");
        assert_eq!(page["products"].as_array().map(Vec::len), Some(2), "{page}");
    }
}

#[tokio::test]
async fn unknown_json_fields_are_ignored() {
    let catalog = TestCatalog::start().await;
    let (status, body) = post_json(
        &catalog,
        "GetProduct",
        json!({"id": "p1", "addedInV2": {"x": 1}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["product"]["id"], "p1");
}

#[tokio::test]
async fn unknown_product_is_not_found_with_http_404() {
    let catalog = TestCatalog::start().await;
    let (status, body) = post_json(&catalog, "GetProduct", json!({"id": "nope"})).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nope")
    );
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument() {
    let catalog = TestCatalog::start().await;
    let response = http1()
        .post(catalog.url("GetProduct"))
        .header("content-type", "application/json")
        .body(r#"{"id": "#)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "invalid_argument");

    let (status, body) = post_json(&catalog, "ListProducts", json!({"pageSize": -3})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("pageSize:"),
        "the field as a JSON caller names it: {body}"
    );
}

#[tokio::test]
async fn oversize_request_is_resource_exhausted() {
    let catalog = TestCatalog::start().await;
    let query = "x".repeat(5 * 1024 * 1024);
    let response = http1()
        .post(catalog.url("ListProducts"))
        .header("content-type", "application/json")
        .body(json!({"query": query}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "resource_exhausted");
}

async fn watch_stock(
    catalog: &TestCatalog,
    ids: &[&str],
    timeout_ms: Option<u64>,
) -> EnvelopeStream {
    let request = json!({"productIds": ids}).to_string();
    let mut call = http1()
        .post(catalog.url("WatchStock"))
        .header("content-type", "application/connect+json")
        .header("connect-protocol-version", "1");
    if let Some(ms) = timeout_ms {
        call = call.header("connect-timeout-ms", ms.to_string());
    }
    let response = call
        .body(envelope(0, request.as_bytes()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/connect+json"
    );
    EnvelopeStream::new(response)
}

fn message(envelope: Option<(u8, bytes::Bytes)>) -> Value {
    let (flags, payload) = envelope.expect("an envelope");
    assert_eq!(
        flags, 0,
        "a message, not the end of the stream: {payload:?}"
    );
    serde_json::from_slice(&payload).expect("json message")
}

fn end_of_stream(envelope: Option<(u8, bytes::Bytes)>) -> Value {
    let (flags, payload) = envelope.expect("an envelope");
    assert_eq!(flags & 0x02, 0x02, "end of stream");
    serde_json::from_slice(&payload).expect("json end message")
}

#[tokio::test]
async fn watch_stock_streams_the_snapshot_then_every_change() {
    let catalog = TestCatalog::start().await;
    let mut stream = watch_stock(&catalog, &["p1", "p2"], None).await;
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p1", "stockOnHand": 5})
    );
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p2", "stockOnHand": 2})
    );

    catalog
        .catalog
        .adjust_stock("p3", 4)
        .await
        .expect("restock p3");
    catalog
        .catalog
        .adjust_stock("p2", -1)
        .await
        .expect("sell one p2");
    // p3 is not watched: the next message is p2's change.
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p2", "stockOnHand": 1})
    );
    catalog
        .catalog
        .adjust_stock("p1", 10)
        .await
        .expect("restock p1");
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p1", "stockOnHand": 15})
    );
}

#[tokio::test]
async fn watch_stock_sees_reservations_and_releases_live() {
    let catalog = TestCatalog::start().await;
    let mut stream = watch_stock(&catalog, &["p1"], None).await;
    assert_eq!(message(stream.next().await)["stockOnHand"], 5);
    let call = |method: &'static str, body: Value| {
        let url = catalog.url(method);
        let token = catalog.service_token.clone();
        async move { shop_kit::testing::call_json(&url, Some(&token), &body).await }
    };
    let (status, _) = call(
        "ReserveStock",
        json!({"reservationId": "o-1", "items": [{"productId": "p1", "quantity": 2}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p1", "stockOnHand": 3})
    );
    call("ReleaseStock", json!({"reservationId": "o-1"})).await;
    assert_eq!(
        message(stream.next().await),
        json!({"productId": "p1", "stockOnHand": 5})
    );
}

#[tokio::test]
async fn watch_stock_of_an_unknown_product_ends_with_not_found() {
    let catalog = TestCatalog::start().await;
    let mut stream = watch_stock(&catalog, &["p1", "ghost"], None).await;
    let end = end_of_stream(stream.next().await);
    assert_eq!(end["error"]["code"], "not_found", "{end}");
}

#[tokio::test]
async fn connect_deadline_ends_a_stream_with_deadline_exceeded() {
    let catalog = TestCatalog::start().await;
    let mut stream = watch_stock(&catalog, &["p1"], Some(300)).await;
    assert_eq!(message(stream.next().await)["stockOnHand"], 5);
    let end = end_of_stream(stream.next().await);
    assert_eq!(end["error"]["code"], "deadline_exceeded", "{end}");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn cors_preflight_allows_connect_and_grpc_web_headers() {
    let catalog = TestCatalog::start().await;
    let response = http1()
        .request(reqwest::Method::OPTIONS, catalog.url("GetProduct"))
        .header("origin", "http://localhost:8080")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,connect-protocol-version,connect-timeout-ms,x-grpc-web,authorization",
        )
        .send()
        .await
        .expect("send");
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    for header in [
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-grpc-web",
        "authorization",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    let response = http1()
        .post(catalog.url("GetProduct"))
        .header("origin", "http://localhost:8080")
        .header("content-type", "application/json")
        .body(r#"{"id":"p1"}"#)
        .send()
        .await
        .expect("send");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    // The web app reads a refusal's mark and pause to send it again.
    for header in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "retry-after",
        "x-shop-not-processed",
    ] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }
}

#[tokio::test]
async fn calls_without_an_origin_get_no_cors_headers_and_only_failures_a_made_up_request_id() {
    let catalog = TestCatalog::start().await;
    let call = |id: &'static str| {
        http1()
            .post(catalog.url("GetProduct"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"id":"{id}"}}"#))
            .send()
    };
    let found = call("p1").await.expect("send");
    assert_eq!(found.status(), 200);
    for header in [
        "access-control-allow-origin",
        "access-control-expose-headers",
        "vary",
        "x-request-id",
    ] {
        assert!(
            !found.headers().contains_key(header),
            "{header} on {found:?}"
        );
    }
    // A failure gets an id the caller can quote.
    let missing = call("nope").await.expect("send");
    assert_eq!(missing.status(), 404);
    let id = missing.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "{id}");
}

#[tokio::test]
async fn early_errors_reach_http1_clients_still_uploading() {
    // A client that streams its whole (chunked) body before reading, as
    // Go's does, must get the early answer (here: an unsupported content
    // type), not a broken pipe because the server closed the connection
    // under it.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let catalog = TestCatalog::start().await;
    let mut tcp = tokio::net::TcpStream::connect(catalog.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /{}/GetProduct HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\ntransfer-encoding: chunked\r\n\r\n",
        support::SERVICE
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for _ in 0..200 {
        tcp.write_all(chunk.as_bytes())
            .await
            .expect("the whole upload is accepted");
    }
    tcp.write_all(b"0\r\n\r\n").await.expect("end of upload");
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
}

#[tokio::test]
async fn early_errors_reach_http2_clients_still_uploading() {
    // An HTTP/2 client that reads the early answer before it has sent its
    // body (curl does, over https) must be let finish its upload: a stream
    // reset under it makes curl 7.88 fail with "(92) Stream error in the
    // HTTP/2 framing layer" instead of showing the answer.
    let catalog = TestCatalog::start().await;
    let tcp = tokio::net::TcpStream::connect(catalog.addr)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2c");
    shop_kit::task::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post(format!(
        "http://{}/{}/GetProduct",
        catalog.addr,
        support::SERVICE
    ))
    .header("content-type", "image/jpeg")
    .body(())
    .expect("request");
    let (answer, mut upload) = client.send_request(request, false).expect("send");
    let answer = answer.await.expect("the early answer");
    assert_eq!(answer.status(), 415);
    let mut body = answer.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("answer body");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    // The answer is whole; the stream is still open for the upload.
    let reset = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        futures::future::poll_fn(|cx| upload.poll_reset(cx)),
    )
    .await;
    assert!(reset.is_err(), "the stream was reset: {reset:?}");
    upload
        .send_data(bytes::Bytes::from(vec![b' '; 64 * 1024]), true)
        .expect("the whole upload is accepted");
}

#[tokio::test]
async fn health_answers_connect_too() {
    let catalog = TestCatalog::start().await;
    let url = format!("{}/grpc.health.v1.Health/Check", catalog.base());
    let (status, body) = shop_kit::testing::call_json(&url, None, &json!({})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("SERVING")),
        "{body}"
    );
    let (status, body) = shop_kit::testing::call_json(
        &url,
        None,
        &json!({"service": "shop.catalog.v1.CatalogService"}),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SERVING")));
    let (status, unknown) =
        shop_kit::testing::call_json(&url, None, &json!({"service": "nope.Service"})).await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));

    // Watch streams over Connect: the status, then the deadline ends it.
    let response = http1()
        .post(format!("{}/grpc.health.v1.Health/Watch", catalog.base()))
        .header("content-type", "application/connect+json")
        .header("connect-timeout-ms", "300")
        .body(envelope(0, b"{}"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.headers()["content-type"],
        "application/connect+json"
    );
    let mut stream = EnvelopeStream::new(response);
    assert_eq!(message(stream.next().await)["status"], "SERVING");
    assert_eq!(
        end_of_stream(stream.next().await)["error"]["code"],
        "deadline_exceeded"
    );
}
