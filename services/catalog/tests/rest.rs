//! The catalog's REST routes (its google.api.http rules), from a plain
//! HTTP client: the same handlers, refusals in Connect's error shape under
//! grpc-gateway's HTTP statuses, the stock watch as Server-Sent Events.

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::{TestCatalog, http1};

async fn get(catalog: &TestCatalog, path: &str) -> (u16, Value) {
    let response = http1()
        .get(format!("{}{path}", catalog.base()))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn post(catalog: &TestCatalog, path: &str, body: &str) -> (u16, Value) {
    let response = http1()
        .post(format!("{}{path}", catalog.base()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

fn skus(answer: &Value) -> Vec<&str> {
    answer["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|product| product["sku"].as_str().expect("sku"))
        .collect()
}

#[tokio::test]
async fn path_and_query_fields_reach_the_handlers() {
    let catalog = TestCatalog::start().await;
    let (status, found) = get(&catalog, "/v1/products/p1").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["product"]["sku"], "CUP-001");
    assert_eq!(found["product"]["stockOnHand"], 5);

    // Query parameters by JSON name and by proto name.
    let (_, page) = get(&catalog, "/v1/products?pageSize=2").await;
    assert_eq!(skus(&page), ["CUP-001", "CUP-002"]);
    let token = page["nextPageToken"].as_str().expect("a next page");
    let (_, next) = get(
        &catalog,
        &format!("/v1/products?page_size=2&pageToken={token}"),
    )
    .await;
    assert_eq!(skus(&next), ["POT-001"]);
    let (_, red) = get(&catalog, "/v1/products?query=Red+cup").await;
    assert_eq!(skus(&red), ["CUP-002"]);

    // A body of the whole message.
    let (status, batch) = post(
        &catalog,
        "/v1/products:batchGet",
        r#"{"productIds": ["p2", "p1"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(skus(&batch), ["CUP-002", "CUP-001"]);
}

#[tokio::test]
async fn refusals_are_connect_errors_under_grpc_gateways_statuses() {
    let catalog = TestCatalog::start().await;
    let (status, error) = get(&catalog, "/v1/products/nope").await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));

    for (path, said) in [
        ("/v1/products?verbose=1", "verbose: no such field"),
        ("/v1/products?pageSize=ten", "\"ten\" is not a valid int32"),
        ("/v1/products?pageSize=1&pageSize=2", "given more than once"),
        ("/v1/products/%FF", "not UTF-8"),
    ] {
        let (status, error) = get(&catalog, path).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["code"], "invalid_argument", "{path}");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains(said), "{path}: {message}");
    }

    // The handler's own validation, with its BadRequest detail.
    let (status, error) = get(&catalog, "/v1/products?pageSize=-1").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    assert!(
        error["details"][0]["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("BadRequest")),
        "{error}"
    );

    for (body, said) in [
        ("[1, 2]", "a JSON object"),
        ("{\"productIds\": ", "not JSON"),
    ] {
        let (status, error) = post(&catalog, "/v1/products:batchGet", body).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_argument"))
        );
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(said)),
            "{error}"
        );
    }
    let (status, error) = post(&catalog, "/v1/products:batchGet?productIds=p1", "{}").await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no query parameters"))
    );

    let huge = format!(r#"{{"productIds": ["{}"]}}"#, "p".repeat(5 * 1024 * 1024));
    let (status, error) = post(&catalog, "/v1/products:batchGet", &huge).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("resource_exhausted"))
    );

    // Another verb on a REST path is no route at all.
    let response = http1()
        .delete(format!("{}/v1/products/p1", catalog.base()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_stock_watch_is_server_sent_events() {
    let catalog = TestCatalog::start().await;
    let response = http1()
        .get(format!(
            "{}/v1/stock:watch?productIds=p1&productIds=p2",
            catalog.base()
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.bytes_stream();
    let mut text = String::new();
    let mut wait_for = async |wanted: usize, text: &mut String| {
        while text.matches("\n\n").count() < wanted {
            let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .expect("an event in time")
                .expect("more")
                .expect("bytes");
            text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    };
    wait_for(2, &mut text).await;
    assert!(text.starts_with("data: {"), "{text}");
    assert!(
        text.contains(r#""productId":"p1""#) && text.contains(r#""productId":"p2""#),
        "{text}"
    );

    catalog
        .catalog
        .adjust_stock("p2", 3)
        .await
        .expect("restocked");
    wait_for(3, &mut text).await;
    let last = text.trim_end().rsplit("\n\n").next().expect("an event");
    let data: Value =
        serde_json::from_str(last.strip_prefix("data: ").expect("data")).expect("json");
    assert_eq!(data, json!({"productId": "p2", "stockOnHand": 5}));

    // A watch refused before its first event is refused as a unary call.
    let (status, error) = get(&catalog, "/v1/stock:watch").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_argument")),
        "{error}"
    );
}

#[tokio::test]
async fn rest_calls_are_counted_under_their_own_protocol() {
    let catalog = TestCatalog::start().await;
    get(&catalog, "/v1/products/p1").await;
    get(&catalog, "/v1/products/nope").await;
    let metrics = http1()
        .get(format!("{}/metrics", catalog.base()))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    for code in ["ok", "not_found"] {
        let labels = format!(
            "service=\"shop.catalog.v1.CatalogService\",method=\"GetProduct\",protocol=\"rest\",code=\"{code}\""
        );
        assert!(
            metrics.lines().any(
                |line| line.starts_with("rpc_server_call_duration_seconds_count{")
                    && line.contains(&labels)
            ),
            "{labels} in {metrics}"
        );
    }
}
