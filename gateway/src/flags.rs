//! The gateway as the launcher starts it: its own flags, and its
//! [`Config`] made from them and what the launcher found
//! (`shop_kit::deploy`).

use std::{collections::BTreeMap, path::PathBuf};

use clap::Args;
use shop_kit::{
    app::BoxError,
    client::PeerTarget,
    deploy::{Deployable, Given, Try},
    rpc::rate_limit::RateLimitConfig,
};

use crate::{CachePolicy, Config, ServicePeers, ServiceUrls};

/// The gateway's own flags.
#[derive(Args, Clone, Debug)]
pub struct Flags {
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
    /// document (default: the whole shop's payments service, or its port
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

/// Why the gateway could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    #[error(
        "the gateway tells browsers where the {service} service is: give \
         --public-{flag}-url (the {target} a browser cannot call)"
    )]
    NoBrowserUrl {
        service: String,
        flag: &'static str,
        target: String,
    },
    #[error("the gateway does not know where the {0} service is")]
    Unplaced(String),
}

/// The services whose browser URL is a flag of the gateway's; every other
/// service of the shop is where a browser reaches users, or at its own
/// place (named in the OpenAPI document only).
const PUBLIC: [&str; 4] = ["users", "catalog", "orders", "payments"];

impl Flags {
    fn rate_limit(&self) -> RateLimitConfig {
        RateLimitConfig {
            ip_per_second: self.ip_per_second,
            ip_burst: self.ip_burst,
            user_per_second: self.user_per_second,
            user_burst: self.user_burst,
        }
    }

    fn given_url(&self, service: &str) -> Option<&String> {
        match service {
            "users" => self.public_users_url.as_ref(),
            "catalog" => self.public_catalog_url.as_ref(),
            "orders" => self.public_orders_url.as_ref(),
            "payments" => self.public_payments_url.as_ref(),
            _ => None,
        }
    }

    /// The services as a browser reaches them: as given, else where they
    /// are (a `dns:///` target is no URL a browser can use).
    fn browser(
        &self,
        places: &BTreeMap<&'static str, PeerTarget>,
    ) -> Result<ServiceUrls, FlagsError> {
        let url = |service: &str, flag: &'static str| -> Result<String, FlagsError> {
            if let Some(given) = self.given_url(flag) {
                return Ok(given.clone());
            }
            let place = places
                .get(service)
                .ok_or_else(|| FlagsError::Unplaced(service.to_owned()))?;
            place.first_url().ok_or_else(|| FlagsError::NoBrowserUrl {
                service: service.to_owned(),
                flag,
                target: place.to_string(),
            })
        };
        let added = places
            .keys()
            .filter(|name| !PUBLIC.contains(name))
            .map(|&name| Ok((name.to_owned(), url(name, "users")?)))
            .collect::<Result<_, FlagsError>>()?;
        Ok(ServiceUrls {
            users_url: url("users", "users")?,
            catalog_url: url("catalog", "catalog")?,
            orders_url: url("orders", "orders")?,
            payments_url: url("payments", "payments")?,
            added,
        })
    }
}

impl Deployable for Config {
    const ABOUT: &'static str = "The BFF gateway, the web app and the OpenAPI document.";
    const SERVES_WEB_APP: bool = true;
    type Flags = Flags;

    fn configure(flags: Flags, given: Given) -> Result<Self, BoxError> {
        let peers = &given.peers;
        Ok(Self {
            browser: flags.browser(&given.places)?,
            services: ServicePeers {
                users: peers.target("users")?.clone(),
                catalog: peers.target("catalog")?.clone(),
                orders: peers.target("orders")?.clone(),
            },
            downstream: peers.policy().clone(),
            cache: CachePolicy::default(),
            rate_limit: flags.rate_limit(),
            web_dir: flags.web_dir.clone(),
            token_keys: given.token_keys,
        })
    }

    /// The mobile home screen, one call for what the app shows first.
    fn tries(_: &str) -> Vec<Try> {
        vec![Try::Post {
            method: "shop.bff.v1.MobileBffService/GetHome",
            body: "{}".to_owned(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        flags: Flags,
    }

    fn flags(args: &[&str]) -> Flags {
        Command::parse_from(std::iter::once("gateway").chain(args.iter().copied())).flags
    }

    fn places(reviews: &str) -> BTreeMap<&'static str, PeerTarget> {
        let at = |url: &str| PeerTarget::url(url).expect("a target");
        BTreeMap::from([
            ("users", at("http://127.0.0.1:8081")),
            ("catalog", at("http://127.0.0.1:8082")),
            ("orders", at("http://127.0.0.1:8083")),
            ("payments", at("http://127.0.0.1:8084")),
            ("reviews", at(reviews)),
        ])
    }

    #[test]
    fn another_service_is_at_its_own_place_or_behind_the_same_edge_as_users() {
        let own = flags(&[])
            .browser(&places("http://127.0.0.1:8085"))
            .expect("urls");
        assert_eq!(own.added["reviews"], "http://127.0.0.1:8085");
        assert_eq!(own.payments_url, "http://127.0.0.1:8084");
        let edge = flags(&["--public-users-url", "https://shop.example.com"])
            .browser(&places("http://127.0.0.1:8085"))
            .expect("urls");
        assert_eq!(edge.added["reviews"], "https://shop.example.com");
        assert_eq!(edge.users_url, "https://shop.example.com");
        let refused = flags(&[])
            .browser(&places("dns:///reviews:8085"))
            .expect_err("no browser URL");
        assert!(
            refused.to_string().contains("--public-users-url"),
            "{refused}"
        );
    }
}
