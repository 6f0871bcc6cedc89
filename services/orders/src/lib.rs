//! The orders service: a customer's orders, priced server-side from the
//! catalog, created once per idempotency key, visible only to their owner,
//! served as `shop.orders.v1.OrderService`. (Driving an order through
//! stock and payment is the saga's job, a later step.)

pub mod api;
pub mod catalog_client;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use sea_orm::DatabaseConnection;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    auth::TokenVerifier,
    connect_get, grpc_defaults,
    server::{Running, ServerError},
};
use shop_migrations::MigratorTrait;
use shop_proto::shop::orders::v1::{
    self as pb, order_service_connect::OrderServiceTonicCompatibleBuilder,
};

pub use error::OrdersError;

use crate::{
    catalog_client::Catalog,
    domain::{Order, OrderStatus},
    events::OrderFeed,
    store::Store,
};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A customer's orders.
#[derive(Clone, Debug)]
pub struct Orders {
    store: Store,
    feed: OrderFeed,
    catalog: Catalog,
}

impl Orders {
    pub async fn open(database_url: &str, catalog_url: &str) -> Result<Self, OrdersError> {
        let db = shop_kit::database::connect(database_url).await?;
        Self::migrate(db, catalog_url).await
    }

    pub async fn migrate(db: DatabaseConnection, catalog_url: &str) -> Result<Self, OrdersError> {
        shop_migrations::orders::Migrator::up(&db, None).await?;
        Ok(Self {
            store: Store::new(db),
            feed: OrderFeed::new(),
            catalog: Catalog::new(catalog_url)?,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn feed(&self) -> &OrderFeed {
        &self.feed
    }

    /// Places an order once per (customer, key); prices from the catalog.
    pub async fn create(
        &self,
        user_id: &str,
        key: &str,
        lines: &[(String, i32)],
        payment_token: &str,
    ) -> Result<Order, OrdersError> {
        let key = domain::idempotency_key(key)?;
        if let Some(existing) = self.store.by_key(user_id, key).await? {
            return Ok(existing);
        }
        let wanted = domain::wanted_lines(lines)?;
        let payment_token = domain::payment_token(payment_token)?;
        let ids: Vec<String> = wanted.iter().map(|w| w.product_id.clone()).collect();
        let prices = self.catalog.prices(&ids).await?;
        let (lines, currency_code, total_minor_units) = domain::price(&wanted, &prices)?;
        let now = now_ms();
        let order = Order {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            lines,
            currency_code,
            total_minor_units,
            status: OrderStatus::Pending,
            cancel_reason: String::new(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        let (order, created) = self.store.create(order, key, payment_token).await?;
        if created {
            self.feed.publish(order.clone());
        }
        Ok(order)
    }

    /// The caller's own order; anyone else's does not exist for them.
    pub async fn own(&self, user_id: &str, order_id: &str) -> Result<Order, OrdersError> {
        self.store
            .get(order_id)
            .await?
            .filter(|order| order.user_id == user_id)
            .ok_or_else(|| OrdersError::NotFound {
                id: order_id.to_owned(),
            })
    }

    /// Cancels the caller's pending order (a cancelled one stays so).
    pub async fn cancel(&self, user_id: &str, order_id: &str) -> Result<Order, OrdersError> {
        let order = self.own(user_id, order_id).await?;
        match order.status {
            OrderStatus::Cancelled => return Ok(order),
            OrderStatus::Confirmed => {
                return Err(OrdersError::NotCancellable {
                    id: order.id,
                    status: order.status.as_str(),
                });
            }
            OrderStatus::Pending => {}
        }
        if !self
            .store
            .cancel(order_id, "cancelled at your request", now_ms())
            .await?
        {
            // It moved meanwhile; report what it is now.
            let now = self.own(user_id, order_id).await?;
            if now.status != OrderStatus::Cancelled {
                return Err(OrdersError::NotCancellable {
                    id: now.id,
                    status: now.status.as_str(),
                });
            }
            return Ok(now);
        }
        let cancelled = self.own(user_id, order_id).await?;
        self.feed.publish(cancelled.clone());
        Ok(cancelled)
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub orders: Orders,
    pub shutdown: Shutdown,
}

const GET_ORDER: &str = "/shop.orders.v1.OrderService/GetOrder";
const LIST_ORDERS: &str = "/shop.orders.v1.OrderService/ListOrders";

pub async fn router(
    orders: Orders,
    verifier: TokenVerifier,
    http: &HttpConfig,
    shutdown: &Shutdown,
) -> Result<Router, ServerError> {
    let readiness = Readiness::database(orders.store().connection().clone());
    let state = AppState {
        orders,
        shutdown: shutdown.clone(),
    };
    let (connect, grpc) = OrderServiceTonicCompatibleBuilder::new()
        .create_order(api::create_order)
        .get_order(api::get_order)
        .list_orders(api::list_orders)
        .cancel_order(api::cancel_order)
        .watch_order(api::watch_order)
        .with_state(state.clone())
        .build();
    let gets = Router::new()
        .merge(connect_get::<
            pb::GetOrderRequest,
            pb::GetOrderResponse,
            _,
            _,
            _,
        >(GET_ORDER, api::get_order))
        .merge(connect_get::<
            pb::ListOrdersRequest,
            pb::ListOrdersResponse,
            _,
            _,
            _,
        >(LIST_ORDERS, api::list_orders))
        .with_state(state);
    RpcServer::new(http.clone(), readiness)
        .service(connect.merge(gets), grpc_defaults!(grpc, http))
        .descriptors(shop_proto::FILE_DESCRIPTOR_SET)
        .verify_tokens(verifier)
        .into_router(shutdown)
        .await
}

#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    pub users_url: String,
    pub catalog_url: String,
    pub http: HttpConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("orders database {url}: {source}")]
    Database { url: String, source: OrdersError },
    #[error("orders cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("orders cannot verify tokens: {0}")]
    Auth(#[from] shop_kit::auth::AuthError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let orders = Orders::open(&config.database_url, &config.catalog_url)
        .await
        .map_err(|source| StartError::Database {
            url: shop_kit::database::redact(&config.database_url),
            source,
        })?;
    let verifier = TokenVerifier::fetch(&config.users_url, Duration::from_secs(30)).await?;
    let app = router(orders, verifier, &config.http, &shutdown).await?;
    shop_kit::server::start(config.addr, app, shutdown, config.http.shutdown_grace())
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })
}
