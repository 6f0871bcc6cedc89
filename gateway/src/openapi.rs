//! The public API's OpenAPI document (`openapi/openapi.json`, generated
//! from the protos by `just openapi`), served at `/openapi.json` with each
//! path's server where this shop's browsers reach its service: the
//! gateway's own paths (and the document's default) on the gateway, every
//! service's at its configured URL. A path of a service this gateway does
//! not know is an error, so a new service cannot be served at a stale URL.

use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use http::header;
use serde_json::Value;

use crate::ServiceUrls;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The document as `just openapi` wrote it.
const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

/// Why the embedded document cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the embedded OpenAPI document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the OpenAPI document's path {path} belongs to no service the gateway knows")]
    UnknownService { path: String },
}

/// The document with its servers set for `browser`.
pub fn document(browser: &ServiceUrls) -> Result<Bytes, DocumentError> {
    let mut document: Value = serde_json::from_str(DOCUMENT)?;
    document["servers"] = serde_json::json!([{ "url": "/", "description": "this gateway" }]);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let url = service_url(item, browser)
                .ok_or_else(|| DocumentError::UnknownService { path: path.clone() })?;
            item["servers"] = serde_json::json!([{ "url": url }]);
        }
    }
    Ok(serde_json::to_vec(&document).map(Bytes::from)?)
}

/// The URL of the service a path belongs to: its operations' package
/// (`shop.users.v1.UserService.LogIn` is users').
fn service_url(item: &Value, browser: &ServiceUrls) -> Option<String> {
    let operation = item
        .as_object()?
        .values()
        .find_map(|operation| operation.get("operationId")?.as_str())?;
    let service = operation.strip_prefix("shop.")?.split('.').next()?;
    Some(match service {
        "bff" => "/".to_owned(),
        "users" => browser.users_url.clone(),
        "catalog" => browser.catalog_url.clone(),
        "orders" => browser.orders_url.clone(),
        "payments" => browser.payments_url.clone(),
        added => browser.added.get(added)?.clone(),
    })
}

/// `GET /openapi.json` (served at [`OPENAPI_PATH`]).
pub fn route(document: Bytes) -> MethodRouter {
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
    })
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
            payments_url: "http://shop.test:9004".to_owned(),
            added: Default::default(),
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
        let payments = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .filter(|path| path.contains("PaymentService") || path.starts_with("/v1/payments"))
            .collect::<Vec<_>>();
        assert!(!payments.is_empty(), "the document has payments' paths");
        for path in payments {
            assert_eq!(server(path), "http://shop.test:9004", "{path}");
        }
        assert_eq!(document["info"]["title"], "connect-shop");
    }
}
