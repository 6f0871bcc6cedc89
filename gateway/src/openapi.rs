//! The public API's OpenAPI document (`openapi/openapi.json`, generated
//! from the protos by `just openapi`), served at `/openapi.json` with each
//! path's server where this shop's browsers reach its service: the
//! gateway's own paths (and the document's default) on the gateway, the
//! users', catalog's and orders' at their configured URLs.

use axum::{Router, routing::get};
use bytes::Bytes;
use http::header;
use serde_json::Value;

use crate::ServiceUrls;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The document as `just openapi` wrote it.
const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

/// The document with its servers set for `browser`; an error only if the
/// embedded document is not JSON of the expected shape.
pub fn document(browser: &ServiceUrls) -> Result<Bytes, serde_json::Error> {
    let mut document: Value = serde_json::from_str(DOCUMENT)?;
    document["servers"] = serde_json::json!([{ "url": "/", "description": "this gateway" }]);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(url) = service_url(item, browser) else {
                continue;
            };
            item["servers"] = serde_json::json!([{ "url": url }]);
        }
    }
    serde_json::to_vec(&document).map(Bytes::from)
}

/// The URL of the service a path belongs to (its operations' tag), if
/// this gateway knows it.
fn service_url(item: &Value, browser: &ServiceUrls) -> Option<String> {
    let tag = item
        .as_object()?
        .values()
        .find_map(|operation| operation.get("tags")?.get(0)?.as_str())?;
    Some(match tag {
        "WebBffService" | "MobileBffService" => "/".to_owned(),
        "UserService" => browser.users_url.clone(),
        "CatalogService" => browser.catalog_url.clone(),
        "OrderService" => browser.orders_url.clone(),
        _ => return None,
    })
}

/// `GET /openapi.json`.
pub fn route(document: Bytes) -> Router {
    Router::new().route(
        OPENAPI_PATH,
        get(move || {
            let document = document.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    document,
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_is_served_where_this_shop_listens() {
        let browser = ServiceUrls {
            users_url: "http://shop.test:9001".to_owned(),
            catalog_url: "http://shop.test:9002".to_owned(),
            orders_url: "http://shop.test:9003".to_owned(),
        };
        let document: Value =
            serde_json::from_slice(&document(&browser).expect("document")).expect("json");
        let server = |path: &str| document["paths"][path]["servers"][0]["url"].clone();
        assert_eq!(server("/v1/products/{id}"), "http://shop.test:9002");
        assert_eq!(
            server("/shop.users.v1.UserService/LogIn"),
            "http://shop.test:9001"
        );
        assert_eq!(server("/v1/orders"), "http://shop.test:9003");
        assert_eq!(server("/v1/web/home"), "/");
        assert_eq!(document["info"]["title"], "connect-shop");
    }
}
