//! The BFF gateway: one call per screen for the web and mobile apps
//! (`shop.bff.v1.WebBffService`, `shop.bff.v1.MobileBffService`), fanned
//! out to the services in parallel under the caller's deadline, served on
//! Connect, gRPC and gRPC-Web like every service, rate limited per client IP
//! and per caller; it also serves the web app's files at `/`.

pub mod api;
pub mod downstreams;
pub mod home;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    auth::TokenVerifier,
    connect_get,
    downstream::DownstreamPolicy,
    grpc_defaults,
    protocol::RpcName,
    rate_limit::{self, RateLimitConfig},
    server::{Running, ServerError},
};
use shop_proto::shop::bff::v1::{
    self as pb, mobile_bff_service_connect::MobileBffServiceTonicCompatibleBuilder,
    web_bff_service_connect::WebBffServiceTonicCompatibleBuilder,
};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

pub use downstreams::{CachePolicy, ServiceUrls, Services};

#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Services,
}

const WEB_HOME: &str = "/shop.bff.v1.WebBffService/GetHome";
const MOBILE_HOME: &str = "/shop.bff.v1.MobileBffService/GetHome";

/// How to run the gateway.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub services: ServiceUrls,
    pub downstream: DownstreamPolicy,
    pub cache: CachePolicy,
    pub rate_limit: RateLimitConfig,
    /// The built web app (index.html and its assets).
    pub web_dir: PathBuf,
    /// The services as the browser reaches them (the web app's config).
    pub browser: ServiceUrls,
    pub http: HttpConfig,
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
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("gateway: {0}")]
    Url(#[from] downstreams::BadUrl),
    #[error("gateway cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gateway cannot verify tokens: {0}")]
    Auth(#[from] shop_kit::auth::AuthError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// The gateway's router: both BFF services on every protocol, the web
/// app's files for every other GET, the rate limits around it all.
pub async fn router(
    services: Services,
    browser: &ServiceUrls,
    verifier: TokenVerifier,
    rate_limit: &RateLimitConfig,
    web_dir: &std::path::Path,
    http: &HttpConfig,
    shutdown: &Shutdown,
) -> Result<Router, ServerError> {
    let state = AppState { services };
    let (web, web_grpc) = WebBffServiceTonicCompatibleBuilder::new()
        .get_home(api::web_home)
        .with_state(state.clone())
        .build();
    let (mobile, mobile_grpc) = MobileBffServiceTonicCompatibleBuilder::new()
        .get_home(api::mobile_home)
        .with_state(state.clone())
        .build();
    let gets = Router::new()
        .merge(connect_get::<
            pb::WebBffServiceGetHomeRequest,
            pb::WebBffServiceGetHomeResponse,
            _,
            _,
            _,
        >(WEB_HOME, api::web_home))
        .merge(connect_get::<
            pb::MobileBffServiceGetHomeRequest,
            pb::MobileBffServiceGetHomeResponse,
            _,
            _,
            _,
        >(MOBILE_HOME, api::mobile_home))
        .with_state(state);
    let config = runtime_config(browser);
    let config_route = Router::new().route(
        CONFIG_PATH,
        axum::routing::get(move || {
            let config = config.clone();
            async move {
                (
                    [(http::header::CACHE_CONTROL, "no-cache")],
                    axum::Json(config),
                )
            }
        }),
    );
    let app = RpcServer::new(http.clone(), Readiness::always())
        .http_routes(config_route)
        .service(web.merge(gets), grpc_defaults!(web_grpc, http))
        .service(mobile, grpc_defaults!(mobile_grpc, http))
        .descriptors(shop_proto::FILE_DESCRIPTOR_SET)
        .into_router(shutdown)
        .await?;
    let pages = Pages {
        files: ServeDir::new(web_dir).fallback(ServeFile::new(web_dir.join("index.html"))),
        security: Arc::new(security_headers(browser)),
    };
    let app = app.layer(axum::middleware::from_fn_with_state(pages, web_app));
    Ok(rate_limit::limit(app, rate_limit, verifier))
}

/// The web app's files and the headers every page goes out with.
#[derive(Clone)]
struct Pages {
    files: ServeDir<ServeFile>,
    security: Arc<http::HeaderMap>,
}

/// Headers that keep the web app's pages (and the tokens the app holds)
/// safe: scripts only from this origin, calls only to the services the app
/// uses, never framed, no MIME sniffing, no referrer leaking paths.
fn security_headers(browser: &ServiceUrls) -> http::HeaderMap {
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
    let mut headers = http::HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
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

/// Where the web app learns which services to call.
pub const CONFIG_PATH: &str = "/config.json";

/// The web app's runtime config: the services' URLs as the browser calls
/// them (the app calls every service directly).
fn runtime_config(browser: &ServiceUrls) -> serde_json::Value {
    serde_json::json!({
        "usersUrl": browser.users_url,
        "catalogUrl": browser.catalog_url,
        "ordersUrl": browser.orders_url,
    })
}

/// Page requests (a GET that is not an RPC nor an operations URL) get the
/// web app's files; unknown paths get its index.html, so the app's own
/// routes (e.g. /orders/123) load it too.
async fn web_app(State(pages): State<Pages>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let page = matches!(*request.method(), Method::GET | Method::HEAD)
        && RpcName::from_path(path).is_none()
        && !matches!(path, "/healthz" | "/readyz" | "/metrics" | CONFIG_PATH);
    if !page {
        return next.run(request).await;
    }
    let mut response = match pages.files.oneshot(request).await {
        Ok(response) if response.status() == http::StatusCode::NOT_FOUND => {
            axum::response::IntoResponse::into_response(axum::response::Html(NO_WEB_APP))
        }
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    };
    for (name, value) in pages.security.iter() {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

/// What `/` shows while the web app is not built.
const NO_WEB_APP: &str = "<!doctype html><title>connect-shop</title>\
<h1>connect-shop gateway</h1>\
<p>The web app is not built yet (SHOP_WEB_DIR has no index.html). The gateway answers \
<code>shop.bff.v1.WebBffService/GetHome</code> and <code>shop.bff.v1.MobileBffService/GetHome</code> \
over Connect, gRPC and gRPC-Web; see the README.</p>";

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let services = Services::new(&config.services, &config.downstream, &config.cache)?;
    let verifier =
        TokenVerifier::fetch(&config.services.users_url, Duration::from_secs(30)).await?;
    let app = router(
        services,
        &config.browser,
        verifier,
        &config.rate_limit,
        &config.web_dir,
        &config.http,
        &shutdown,
    )
    .await?;
    shop_kit::server::start(config.addr, app, shutdown, &config.http)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })
}
