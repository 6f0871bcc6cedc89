//! The home screen: the calls fan out in parallel under the call's own
//! deadline (its context: the caller's, or the contract's 5 s) and fan in
//! to one answer. The featured products are required; the account
//! and the orders are optional (a failure marks their section degraded).
//! Shaping the answer for each kind of client is `api`'s job.

use std::sync::Arc;

use shop_kit::client::translate;
use shop_proto::shop::{catalog::v1::Product, orders::v1::Order, users::v1::User};
use tonic::{Code, Status};

use crate::downstreams::Services;

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

/// Gathers the home screen for the caller (its account and orders too
/// when it is `signed_in`).
pub async fn gather(
    services: &Services,
    signed_in: bool,
    featured: i32,
    orders: i32,
) -> Result<Home, Status> {
    let (products, account, recent) = tokio::join!(
        services.featured_products(featured),
        async {
            match signed_in {
                true => Some(services.me().await),
                false => None,
            }
        },
        async {
            match signed_in {
                true => Some(services.recent_orders(orders).await),
                false => None,
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
