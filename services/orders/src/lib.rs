//! The orders service: a customer's orders, priced server-side from the
//! catalog, placed once per idempotency key, visible only to their owner,
//! taken to CONFIRMED or CANCELLED by a persisted saga (reserve stock ->
//! charge -> commit stock, compensated in reverse), served as
//! `shop.orders.v1.OrderService`.

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod peers;
pub mod saga;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    auth::TokenVerifier,
    connect_get,
    deadline::CallerDeadline,
    events::{Broker, Delivery, Relay, Subscription},
    grpc_defaults,
    server::{Running, ServerError},
    trace_context::TraceParent,
};
use shop_migrations::MigratorTrait;
use shop_proto::shop::orders::v1::{
    self as pb, order_service_connect::OrderServiceTonicCompatibleBuilder,
};

pub use domain::saga::SagaPolicy;
pub use error::OrdersError;
pub use peers::PeerUrls;

use crate::{
    domain::{Order, OrderStatus},
    events::OrderFeed,
    peers::{Catalog, Payments, ServiceToken},
    saga::SagaDriver,
    store::Store,
};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How long CancelOrder waits for the saga to turn back before answering
/// with the order as it then is.
const CANCEL_PATIENCE: Duration = Duration::from_secs(5);

/// A customer's orders.
#[derive(Clone, Debug)]
pub struct Orders {
    store: Store,
    feed: OrderFeed,
    catalog: Catalog,
    relay: Relay,
    sagas: SagaDriver,
}

impl Orders {
    /// Opens the database (migrations applied), starts relaying events
    /// through `broker` and driving sagas (resuming unfinished ones) until
    /// `shutdown`.
    pub async fn open(
        database_url: &str,
        peers: &PeerUrls,
        broker: Broker,
        policy: SagaPolicy,
        shutdown: &Shutdown,
    ) -> Result<Self, OrdersError> {
        let db = shop_kit::database::connect(database_url).await?;
        shop_migrations::orders::Migrator::up(&db, None).await?;
        let store = Store::new(db.clone());
        let token = Arc::new(ServiceToken::new(
            &peers.users_url,
            peers.service_secret.clone(),
            policy.call_timeout,
        )?);
        let catalog = Catalog::new(&peers.catalog_url, token.clone(), policy.call_timeout)?;
        let payments = Payments::new(&peers.payments_url, token, policy.call_timeout)?;
        let feed = OrderFeed::new();
        let history = store.clone();
        let subscriptions = vec![
            Subscription::new(
                "order-history",
                events::ORDER_EVENTS,
                Delivery::Durable,
                move |event| {
                    let history = history.clone();
                    async move {
                        history
                            .record_history(&event)
                            .await
                            .map_err(|e| e.to_string())
                    }
                },
            ),
            feed.subscription(),
        ];
        let relay = Relay::start(db, events::SERVICE, broker, subscriptions, shutdown);
        let sagas = SagaDriver::start(
            store.clone(),
            catalog.clone(),
            payments,
            relay.clone(),
            policy,
            shutdown,
        );
        Ok(Self {
            store,
            feed,
            catalog,
            relay,
            sagas,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn feed(&self) -> &OrderFeed {
        &self.feed
    }

    /// Places an order once per (customer, key), priced by the catalog, and
    /// starts its saga; answers at once, PENDING.
    pub async fn create(
        &self,
        user_id: &str,
        key: &str,
        lines: &[(String, i32)],
        payment_token: &str,
        trace: &TraceParent,
        deadline: CallerDeadline,
    ) -> Result<Order, OrdersError> {
        let key = domain::idempotency_key(key)?;
        if let Some(existing) = self.store.by_key(user_id, key).await? {
            return Ok(existing);
        }
        let wanted = domain::wanted_lines(lines)?;
        let payment_token = domain::payment_token(payment_token)?;
        let ids: Vec<String> = wanted.iter().map(|w| w.product_id.clone()).collect();
        let prices = self.catalog.prices(&ids, deadline.0).await?;
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
            version: 1,
        };
        let deadline = now.saturating_add(
            i64::try_from(self.sagas.policy().deadline.as_millis()).unwrap_or(i64::MAX),
        );
        let (order, created) = self
            .store
            .create(order, key, payment_token, deadline, trace.as_str())
            .await?;
        if created {
            self.relay.wake();
            self.sagas.kick(&order.id);
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

    /// Asks the saga of the caller's order to turn back (refund, release),
    /// and waits a little for it to have done so. An order already charged
    /// goes on to CONFIRMED: that is refused as not cancellable.
    pub async fn cancel(&self, user_id: &str, order_id: &str) -> Result<Order, OrdersError> {
        let order = self.own(user_id, order_id).await?;
        if order.status == OrderStatus::Pending {
            let mut changes = self.feed.subscribe();
            self.store.request_cancel(order_id).await?;
            self.sagas.kick(order_id);
            let patience = tokio::time::sleep(CANCEL_PATIENCE);
            tokio::pin!(patience);
            loop {
                tokio::select! {
                    () = &mut patience => break,
                    change = changes.recv() => match change {
                        Ok(change) if change.id == order_id && change.status.is_final() => break,
                        Ok(_) => {}
                        Err(_) => break,
                    },
                }
            }
        }
        let now = self.own(user_id, order_id).await?;
        if now.status == OrderStatus::Confirmed {
            return Err(OrdersError::NotCancellable {
                id: now.id,
                status: now.status.as_str(),
            });
        }
        Ok(now)
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
    pub database_url: shop_kit::database::DatabaseUrl,
    pub peers: PeerUrls,
    /// NATS for events; in process when `None`.
    pub nats_url: Option<String>,
    pub saga: SagaPolicy,
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
    #[error("orders events: {0}")]
    Events(#[from] shop_kit::events::EventsError),
    #[error("orders cannot verify tokens: {0}")]
    Auth(#[from] shop_kit::auth::AuthError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let broker = Broker::new(config.nats_url.as_deref()).await?;
    let orders = Orders::open(
        config.database_url.expose(),
        &config.peers,
        broker,
        config.saga.clone(),
        &shutdown,
    )
    .await
    .map_err(|source| StartError::Database {
        url: config.database_url.to_string(),
        source,
    })?;
    let verifier = TokenVerifier::fetch(&config.peers.users_url, Duration::from_secs(30)).await?;
    let app = router(orders, verifier, &config.http, &shutdown).await?;
    shop_kit::server::start(config.addr, app, shutdown, &config.http)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })
}
