//! Connect GET: any query string on a GET route the kit registers (with
//! `shop_kit::connect_get`, behind connectrpc-axum's layer) is answered
//! with 200 or a Connect error naming the caller's fault: never a panic,
//! never internal or unknown (501 is Connect's unimplemented, e.g. for an
//! unknown compression, and a bare 415 its answer to an unknown encoding).
#![no_main]

use std::sync::OnceLock;

use axum::{Router, body::Body};
use connectrpc_axum::{MakeServiceBuilder, prelude::*};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

type Text = connectrpc_axum::pbjson_types::StringValue;

async fn echo(ConnectRequest(text): ConnectRequest<Text>) -> Result<ConnectResponse<Text>, ConnectError> {
    Ok(ConnectResponse::new(text))
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let routes: Router = shop_kit::connect_get::<Text, Text, _, _, _>("/fuzz.v1.Echo/Echo", echo);
        MakeServiceBuilder::new()
            .receive_max_bytes(64 * 1024)
            .add_router(routes)
            .build()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|query: &str| {
    let Ok(uri) = format!("/fuzz.v1.Echo/Echo?{query}").parse::<http::Uri>() else {
        return;
    };
    let request = http::Request::get(uri).body(Body::empty()).expect("request");
    let (status, body) = runtime().block_on(async {
        let response = router().clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, body)
    });
    // 415 with no body is the Connect spec's answer to an unknown encoding.
    if status.is_success() || status == http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return;
    }
    let error: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{query:?} -> {status} without a Connect error"));
    let code = error["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && code != "internal" && code != "unknown",
        "{query:?} -> {status} {code}"
    );
});
