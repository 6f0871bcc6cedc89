//! The BFF gateway: one call per screen for the web and mobile apps
//! (`shop.bff.v1.WebBffService`, `shop.bff.v1.MobileBffService`), fanned
//! out to the services in parallel under the caller's deadline, served on
//! Connect, gRPC and gRPC-Web like every service, rate limited per client IP
//! and per caller; it also serves the web app's files at `/`.

pub mod api;
pub mod downstreams;
pub mod home;
pub mod pages;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use axum::Router;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    auth::TokenVerifier,
    connect_get,
    downstream::DownstreamPolicy,
    grpc_defaults,
    rate_limit::{self, RateLimitConfig},
    server::{Running, ServerError},
};
use shop_proto::shop::bff::v1::{
    self as pb, mobile_bff_service_connect::MobileBffServiceTonicCompatibleBuilder,
    web_bff_service_connect::WebBffServiceTonicCompatibleBuilder,
};

pub use downstreams::{CachePolicy, ServiceUrls, Services};
pub use pages::Pages;

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
    /// A folder with the web app (index.html and its assets) to serve
    /// instead of the one built into the binary.
    pub web_dir: Option<PathBuf>,
    /// The services as the browser reaches them (the web app's config).
    pub browser: ServiceUrls,
    pub http: HttpConfig,
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
    web_dir: Option<&std::path::Path>,
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
    let pages = Pages::new(web_dir, browser);
    let app = app.layer(axum::middleware::from_fn_with_state(pages, pages::serve));
    Ok(rate_limit::limit(app, rate_limit, verifier))
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

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let services = Services::new(&config.services, &config.downstream, &config.cache)?;
    let verifier =
        TokenVerifier::fetch(&config.services.users_url, Duration::from_secs(30)).await?;
    let app = router(
        services,
        &config.browser,
        verifier,
        &config.rate_limit,
        config.web_dir.as_deref(),
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
