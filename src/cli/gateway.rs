//! The BFF gateway's own flags.

use std::path::PathBuf;

use clap::Args;
use shop_kit::{client::PeerTarget, rpc::rate_limit::RateLimitConfig};

use super::common::port;

#[derive(Args, Clone, Debug)]
pub struct GatewayArgs {
    /// Port of the BFF gateway (and the web app).
    #[arg(id = "gateway_port", long = "gateway-port", value_name = "PORT", env = "GATEWAY_PORT", default_value_t = port::GATEWAY)]
    pub port: u16,

    /// The users service as a browser reaches it, for the web app and the
    /// OpenAPI document (default: the first URL of --users-url).
    #[arg(long, env = "PUBLIC_USERS_URL")]
    pub public_users_url: Option<String>,

    /// The catalog as a browser reaches it (default: the first URL of
    /// --catalog-url).
    #[arg(long, env = "PUBLIC_CATALOG_URL")]
    pub public_catalog_url: Option<String>,

    /// The orders service as a browser reaches it (default: the first URL
    /// of --orders-url).
    #[arg(long, env = "PUBLIC_ORDERS_URL")]
    pub public_orders_url: Option<String>,

    /// The payments service as a browser reaches it, for the OpenAPI
    /// document (default: the whole shop's payments service, or port 8084
    /// on --host under `shop serve gateway`).
    #[arg(long, env = "PUBLIC_PAYMENTS_URL")]
    pub public_payments_url: Option<String>,

    /// Serve the web app at / from this folder (index.html and assets, e.g.
    /// web-client/dist after `just web`) instead of the one built into the
    /// binary.
    #[arg(long, env = "SHOP_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Requests per second one client IP may sustain.
    #[arg(long = "rate-limit-ip-per-second", env = "SHOP_RATE_LIMIT_IP_PER_SECOND", default_value_t = RateLimitConfig::default().ip_per_second)]
    pub ip_per_second: u32,

    /// Requests one client IP may send at once beyond that.
    #[arg(long = "rate-limit-ip-burst", env = "SHOP_RATE_LIMIT_IP_BURST", default_value_t = RateLimitConfig::default().ip_burst)]
    pub ip_burst: u32,

    /// Requests per second one signed-in caller may sustain.
    #[arg(long = "rate-limit-user-per-second", env = "SHOP_RATE_LIMIT_USER_PER_SECOND", default_value_t = RateLimitConfig::default().user_per_second)]
    pub user_per_second: u32,

    /// Requests one signed-in caller may send at once beyond that.
    #[arg(long = "rate-limit-user-burst", env = "SHOP_RATE_LIMIT_USER_BURST", default_value_t = RateLimitConfig::default().user_burst)]
    pub user_burst: u32,
}

impl GatewayArgs {
    pub fn rate_limit(&self) -> RateLimitConfig {
        RateLimitConfig {
            ip_per_second: self.ip_per_second,
            ip_burst: self.ip_burst,
            user_per_second: self.user_per_second,
            user_burst: self.user_burst,
        }
    }
}

/// A service's URL for the browser: as given, else the peer's first URL (a
/// `dns:///` target is no URL a browser can use).
pub fn public_url(
    given: &Option<String>,
    peer: &PeerTarget,
    service: &str,
) -> anyhow::Result<String> {
    given.clone().or_else(|| peer.first_url()).ok_or_else(|| {
        anyhow::anyhow!(
            "the gateway tells browsers where the {service} service is: give \
             --public-{service}-url (the {peer} a browser cannot call)"
        )
    })
}
