//! The web app's pages: built into the binary (the build script builds the
//! app into OUT_DIR/web, embedded here), or served from a folder when one is
//! given (`--web-dir`, for front-end work). Every page goes out with headers
//! that keep it, and the tokens the app holds, safe.

use std::{path::Path, sync::Arc};

use axum::{
    body::Body,
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use shop_kit::{rest::RestRoutes, rpc::protocol::RpcName};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::{CONFIG_PATH, ServiceUrls, openapi::OPENAPI_PATH};

/// The app as the build script built it.
#[derive(rust_embed::Embed)]
#[folder = "$OUT_DIR/web"]
struct BuiltApp;

/// Where pages come from, and the headers they carry.
#[derive(Clone)]
pub struct Pages {
    folder: Option<ServeDir<ServeFile>>,
    security: Arc<HeaderMap>,
    /// The gateway's REST routes: their paths are calls, not pages.
    rest: Arc<RestRoutes>,
}

impl Pages {
    /// The embedded app, or the one in `folder`; the services the app calls
    /// (for its Content-Security-Policy) are `browser`; `rest` the routes
    /// that are no pages.
    pub fn new(folder: Option<&Path>, browser: &ServiceUrls, rest: RestRoutes) -> Self {
        Self {
            folder: folder
                .map(|dir| ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
            security: Arc::new(security_headers(browser)),
            rest: Arc::new(rest),
        }
    }

    /// Whether there is an app to serve (else `/` shows a note).
    pub fn has_app(folder: Option<&Path>) -> bool {
        match folder {
            Some(dir) => dir.join("index.html").exists(),
            None => BuiltApp::get("index.html").is_some(),
        }
    }

    async fn page(&self, request: Request) -> Response {
        match &self.folder {
            Some(files) => match files.clone().oneshot(request).await {
                Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                    Html(NO_WEB_APP).into_response()
                }
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            },
            None => embedded(request.uri().path()),
        }
    }
}

/// The embedded file at `path`, or a folder's index.html (`/api`, the API
/// reference); the app's index.html for its own routes (e.g. /orders/123);
/// a note when the app was not built.
fn embedded(path: &str) -> Response {
    let wanted = path.trim_matches('/');
    let found = BuiltApp::get(wanted)
        .map(|file| (wanted.to_owned(), file))
        .or_else(|| {
            let index = if wanted.is_empty() {
                "index.html".to_owned()
            } else {
                format!("{wanted}/index.html")
            };
            BuiltApp::get(&index).map(|file| (index, file))
        })
        .or_else(|| BuiltApp::get("index.html").map(|file| ("index.html".to_owned(), file)));
    let Some((name, file)) = found else {
        return Html(NO_WEB_APP).into_response();
    };
    // Vite names assets by content hash: they never change.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    // In release builds the file is in the binary: sent without a copy.
    let body = match file.data {
        std::borrow::Cow::Borrowed(bytes) => bytes::Bytes::from_static(bytes),
        std::borrow::Cow::Owned(bytes) => bytes::Bytes::from(bytes),
    };
    let mut response = Body::from(body).into_response();
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// Page requests (a GET that is not an RPC, a REST route nor an operations
/// URL) get the web app; everything else goes on to the RPCs.
pub async fn serve(State(pages): State<Pages>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let page = matches!(*request.method(), Method::GET | Method::HEAD)
        && RpcName::from_path(path).is_none()
        && !matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | CONFIG_PATH | OPENAPI_PATH
        )
        && pages.rest.find(&Method::GET, path).is_none();
    if !page {
        return next.run(request).await;
    }
    let mut response = pages.page(request).await;
    for (name, value) in pages.security.iter() {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

/// What `/` shows while the web app is not built.
const NO_WEB_APP: &str = "<!doctype html><title>connect-shop</title>\
<h1>connect-shop gateway</h1>\
<p>The web app was not built into this binary (building needs Node and npm; \
see the warning cargo printed). The gateway answers \
<code>shop.bff.v1.WebBffService/GetHome</code> and <code>shop.bff.v1.MobileBffService/GetHome</code> \
over Connect, gRPC and gRPC-Web; see the README.</p>";

/// Headers that keep the web app's pages (and the tokens the app holds)
/// safe: scripts only from this origin, calls only to the services the app
/// uses, never framed, no MIME sniffing, no referrer leaking paths.
fn security_headers(browser: &ServiceUrls) -> HeaderMap {
    let origins: Vec<String> = [
        &browser.users_url,
        &browser.catalog_url,
        &browser.orders_url,
    ]
    .into_iter()
    .filter_map(|url| origin_of(url))
    .collect();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; \
         object-src 'none'",
        origins.join(" ")
    );
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-security-policy", &csp);
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    set("referrer-policy", "no-referrer");
    headers
}

/// `scheme://host[:port]` of a URL, as CSP wants a source.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_may_call_exactly_the_services_the_app_uses() {
        let headers = security_headers(&ServiceUrls {
            users_url: "http://127.0.0.1:8081".into(),
            catalog_url: "http://127.0.0.1:8082/".into(),
            orders_url: "https://shop.example:8443/api".into(),
            payments_url: "https://shop.example:8444".into(),
            added: Default::default(),
        });
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains(
            "connect-src 'self' http://127.0.0.1:8081 http://127.0.0.1:8082 https://shop.example:8443;"
        ));
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
    }

    #[test]
    fn the_embedded_app_serves_its_routes_from_index_html() {
        let page = embedded("/orders/123");
        let content_type = page
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert_eq!(page.status(), StatusCode::OK);
    }
}
