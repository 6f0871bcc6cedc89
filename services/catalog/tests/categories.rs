//! ListCategories: the categories the catalog's migrations write, in the
//! order the shop shows them, to anyone, over Connect (POST and GET) and
//! its REST route.

mod support;

use serde_json::{Value, json};
use support::{TestCatalog, http1};

fn the_shops_categories() -> Value {
    json!({"categories": [
        {"id": "beans", "name": "Coffee beans"},
        {"id": "brewing", "name": "Brewing gear"},
        {"id": "serving", "name": "Cups and jugs"},
        {"id": "gifts", "name": "Gift cards"},
    ]})
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("send");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json body")
}

#[tokio::test]
async fn anyone_lists_the_categories_in_the_shops_order() {
    let catalog = TestCatalog::start().await;
    let url = catalog.url("ListCategories");
    let posted = json_of(
        http1()
            .post(&url)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(posted, the_shops_categories());

    let got = json_of(http1().get(format!("{url}?encoding=json&message={{}}"))).await;
    assert_eq!(got, the_shops_categories(), "Connect GET");

    let rest = json_of(http1().get(format!("{}/v1/categories", catalog.base()))).await;
    assert_eq!(rest, the_shops_categories(), "REST");
}
