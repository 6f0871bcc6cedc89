//! The BFF gateway: one call per screen for the web and mobile apps
//! (`shop.bff.v1.WebBffService`, `shop.bff.v1.MobileBffService`), fanned
//! out to the services in parallel under the caller's deadline, served on
//! Connect, gRPC and gRPC-Web like every service, rate limited per client IP
//! and per caller; it also serves the web app's files at `/`.

pub mod api;
pub mod downstreams;
pub mod flags;
pub mod home;
pub mod openapi;
pub mod pages;

use std::path::PathBuf;

use shop_kit::{
    Readiness, RpcServer,
    app::{Context, Service, StartFailure},
    auth::TokenKeys,
    client::PeerPolicy,
    rpc::rate_limit::{self, RateLimitConfig},
};
use shop_proto::shop::bff::v1::{self as pb};

pub use downstreams::{CachePolicy, ServicePeers, ServiceUrls, Services};
pub use pages::Pages;

#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Services,
}

/// The gateway as it is started (by the launcher, `shop serve gateway` and
/// the tests alike, through [`shop_kit::app::Launch`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the gateway calls the services.
    pub services: ServicePeers,
    pub downstream: PeerPolicy,
    pub cache: CachePolicy,
    pub rate_limit: RateLimitConfig,
    /// A folder with the web app (index.html and its assets) to serve
    /// instead of the one built into the binary.
    pub web_dir: Option<PathBuf>,
    /// The services as the browser reaches them (the web app's config).
    pub browser: ServiceUrls,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: TokenKeys,
}

impl Service for Config {
    const NAME: &'static str = "gateway";
    type Handle = Services;

    /// No database: the clients of the services it fans out to.
    async fn open(&self, _: &Context) -> Result<Services, StartFailure> {
        Services::connect(&self.services, &self.downstream, &self.cache)
            .await
            .map_err(StartFailure::config)
    }

    /// Nothing to seed; says which web app it serves.
    async fn seed(&self, _: &Services) -> Result<String, StartFailure> {
        let has_app = Pages::has_app(self.web_dir.as_deref());
        Ok(match (&self.web_dir, has_app) {
            (None, true) => "the web app (built in)".to_owned(),
            (Some(dir), true) => format!("the web app from {}", dir.display()),
            (None, false) => "no web app (this binary was built without npm)".to_owned(),
            (Some(dir), false) => format!("no web app ({} is empty)", dir.display()),
        })
    }

    /// Both BFF services on every protocol, the web app's files for every
    /// other GET, the rate limits around it all.
    async fn server(
        &self,
        services: Services,
        context: &Context,
    ) -> Result<RpcServer, StartFailure> {
        let verifier = self.token_keys.verifier().await?;
        let serving = services.clone();
        let readiness = Readiness::always().after(move || serving.serving());
        let state = AppState { services };
        let web = pb::WebBffServiceRoutes::new()
            .get_home(api::web_home)
            .build(state.clone());
        let mobile = pb::MobileBffServiceRoutes::new()
            .get_home(api::mobile_home)
            .build(state);
        let config = runtime_config(&self.browser);
        let config_route = axum::routing::get(move || {
            let config = config.clone();
            async move {
                (
                    [(http::header::CACHE_CONTROL, "no-cache")],
                    axum::Json(config),
                )
            }
        });
        let openapi = openapi::document(&self.browser).map_err(StartFailure::config)?;
        let rate_limit = self.rate_limit.clone();
        let server = RpcServer::new(context.http.clone(), readiness)
            .http_route(CONFIG_PATH, config_route)
            .http_route(openapi::OPENAPI_PATH, openapi::route(openapi))
            .serve(web)
            .serve(mobile);
        // The home screens' REST routes (GET /v1/web/home) are not pages.
        let pages = Pages::new(
            self.web_dir.as_deref(),
            &self.browser,
            server.rest_routes()?,
        );
        Ok(server
            .wrap(|app| app.layer(axum::middleware::from_fn_with_state(pages, pages::serve)))
            .wrap(move |app| rate_limit::limit(app, &rate_limit, verifier)))
    }
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
