//! RPC handlers of `shop.bff.v1.WebBffService` and `MobileBffService`: the
//! same gathered home screen, shaped for each kind of client.

use axum::{extract::FromRequestParts, extract::State, http::request::Parts};
use connectrpc_axum::prelude::*;
use shop_kit::rpc::Valid;
use shop_proto::shop::{
    bff::v1 as pb,
    orders::v1::{Order, OrderStatus},
};

use crate::{
    AppState,
    home::{self, Home, Part},
};

pub const DEFAULT_FEATURED: i32 = 8;
pub const MAX_FEATURED: i32 = 24;
/// Orders on the web home screen.
pub const WEB_RECENT_ORDERS: i32 = 5;
/// Orders the mobile screen looks through to count the pending ones.
pub const MOBILE_ORDERS_SCANNED: i32 = 20;

/// Whether the caller sent a bearer token: its account and orders are
/// then asked for, as the caller (the token rides in the call's context).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedIn(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(shop_kit::auth::bearer_token(&parts.headers).is_some()))
    }
}

fn connect_error(status: tonic::Status) -> ConnectError {
    ConnectError::new(
        connectrpc_axum::message::error::code_from_tonic(status.code()),
        status.message().to_owned(),
    )
}

fn degraded(home: &Home) -> Vec<pb::Degraded> {
    let mut degraded = Vec::new();
    if let Part::Degraded(reason) = &home.account {
        degraded.push(pb::Degraded {
            section: pb::Section::Account.into(),
            reason: reason.clone(),
        });
    }
    if let Part::Degraded(reason) = &home.orders {
        degraded.push(pb::Degraded {
            section: pb::Section::RecentOrders.into(),
            reason: reason.clone(),
        });
    }
    degraded
}

pub async fn web_home(
    SignedIn(signed_in): SignedIn,
    State(state): State<AppState>,
    Valid(request): Valid<pb::WebBffServiceGetHomeRequest>,
) -> Result<ConnectResponse<pb::WebBffServiceGetHomeResponse>, ConnectError> {
    // As page sizes: 0 is the default, over the maximum is the maximum
    // (AIP-158), negative is refused.
    let featured = match request.featured_count {
        0 => DEFAULT_FEATURED,
        n if n < 0 => {
            return Err(ConnectError::new(
                Code::InvalidArgument,
                "featured_count: must not be negative",
            ));
        }
        n => n.min(MAX_FEATURED),
    };
    let home = home::gather(&state.services, signed_in, featured, WEB_RECENT_ORDERS)
        .await
        .map_err(connect_error)?;
    let degraded = degraded(&home);
    Ok(ConnectResponse::new(pb::WebBffServiceGetHomeResponse {
        account: match home.account {
            Part::Ready(user) => Some(pb::Account {
                customer_id: user.id,
                email: user.email,
                display_name: user.display_name,
            }),
            Part::Absent | Part::Degraded(_) => None,
        },
        featured_products: home
            .products
            .iter()
            .map(|p| pb::FeaturedProduct {
                id: p.id.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                price: p.price.clone(),
                stock_on_hand: p.stock_on_hand,
            })
            .collect(),
        recent_orders: match home.orders {
            Part::Ready(orders) => orders,
            Part::Absent | Part::Degraded(_) => Vec::new(),
        },
        degraded,
    }))
}

fn pending(orders: &[Order]) -> i32 {
    let count = orders
        .iter()
        .filter(|o| o.status() == OrderStatus::Pending)
        .count();
    i32::try_from(count).unwrap_or(i32::MAX)
}

pub async fn mobile_home(
    SignedIn(signed_in): SignedIn,
    State(state): State<AppState>,
    Valid(_request): Valid<pb::MobileBffServiceGetHomeRequest>,
) -> Result<ConnectResponse<pb::MobileBffServiceGetHomeResponse>, ConnectError> {
    // The same featured page as the web screen, so both share the cache.
    let home = home::gather(
        &state.services,
        signed_in,
        DEFAULT_FEATURED,
        MOBILE_ORDERS_SCANNED,
    )
    .await
    .map_err(connect_error)?;
    let degraded = degraded(&home);
    let greeting = match &home.account {
        Part::Ready(user) if !user.display_name.is_empty() => {
            format!("Hello, {}", user.display_name)
        }
        _ => "Welcome".to_owned(),
    };
    Ok(ConnectResponse::new(pb::MobileBffServiceGetHomeResponse {
        greeting,
        pending_orders: match &home.orders {
            Part::Ready(orders) => pending(orders),
            Part::Absent | Part::Degraded(_) => 0,
        },
        top_product: home.products.first().map(|p| pb::TopProduct {
            id: p.id.clone(),
            name: p.name.clone(),
            price: p.price.clone(),
        }),
        degraded,
    }))
}
