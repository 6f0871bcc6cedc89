//! The home screen: the calls fan out in parallel under one deadline and
//! fan in to one answer. The featured products are required; the account
//! and the orders are optional (a failure marks their section degraded).
//! Shaping the answer for each kind of client is `api`'s job.

use std::{sync::Arc, time::Duration};

use shop_kit::client::translate;
use shop_proto::shop::{catalog::v1::Product, orders::v1::Order, users::v1::User};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::downstreams::Services;

/// The whole fan-out's time when the caller set no deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

/// One optional part of a screen.
#[derive(Clone, Debug, PartialEq)]
pub enum Part<T> {
    /// Not asked for (nobody is signed in).
    Absent,
    Ready(T),
    /// Its service failed; the reason is fit to show.
    Degraded(String),
}

/// What the home screen is made of.
#[derive(Clone, Debug)]
pub struct Home {
    pub products: Arc<Vec<Product>>,
    pub account: Part<User>,
    pub orders: Part<Vec<Order>>,
}

/// An optional part's outcome: the caller's bad token fails the whole
/// call (unauthenticated, so the client logs in again); anything else
/// degrades the part.
fn optional<T>(service: &str, outcome: Option<Result<T, Status>>) -> Result<Part<T>, Status> {
    match outcome {
        None => Ok(Part::Absent),
        Some(Ok(value)) => Ok(Part::Ready(value)),
        Some(Err(status)) if status.code() == Code::Unauthenticated => Err(status),
        Some(Err(status)) => {
            let shown = translate(service, &status, |_| None);
            tracing::warn!(service, code = ?status.code(), "home section degraded");
            Ok(Part::Degraded(shown.message().to_owned()))
        }
    }
}

/// Gathers the home screen for the caller (signed in if `bearer`).
pub async fn gather(
    services: &Services,
    bearer: Option<&str>,
    featured: i32,
    orders: i32,
    deadline: Option<Instant>,
) -> Result<Home, Status> {
    let deadline = Some(deadline.unwrap_or_else(|| Instant::now() + DEFAULT_DEADLINE));
    let (products, account, recent) = tokio::join!(
        services.featured_products(featured, deadline),
        async {
            match bearer {
                Some(bearer) => Some(services.me(bearer, deadline).await),
                None => None,
            }
        },
        async {
            match bearer {
                Some(bearer) => Some(services.recent_orders(bearer, orders, deadline).await),
                None => None,
            }
        },
    );
    let account = optional("users", account)?;
    let orders = optional("orders", recent)?;
    let products = products.map_err(|status| translate("catalog", &status, |_| None))?;
    Ok(Home {
        products,
        account,
        orders,
    })
}
