//! The orders service: a customer's orders, priced server-side from the
//! catalog, placed once per idempotency key, visible only to their owner,
//! taken to CONFIRMED or CANCELLED by a persisted saga (reserve stock ->
//! charge -> commit stock, compensated in reverse), served as
//! `shop.orders.v1.OrderService`.

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod feed;
pub mod flags;
pub mod peers;
pub mod saga;
pub mod store;

/// Its schema, as `shop migrate orders` and its start apply it.
pub use shop_migrations::orders as migration;

use std::time::Duration;

use shop_kit::client::{CallContext, Peer};
use shop_kit::{
    RpcServer, Shutdown,
    app::{Context, Service, StartFailure},
    auth::TokenKeys,
    db::DatabaseUrl,
    events::{Broker, Delivery, Ledger, Subscription},
    observe::traces,
};

pub use domain::saga::SagaPolicy;
pub use error::OrdersError;
pub use peers::Peers;

use crate::{
    domain::{Cursor, Order, OrderStatus},
    feed::OrderFeed,
    peers::{Catalog, Connected, Payments},
    saga::SagaDriver,
    store::{History, NewOrder, Placed, Store},
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
    history: History,
    feed: OrderFeed,
    catalog: Catalog,
    payments: Payments,
    sagas: SagaDriver,
    /// The peers it calls (for readiness).
    needed: Vec<Peer>,
}

impl Orders {
    /// Opens the database (migrations applied), starts relaying events
    /// through `broker` and driving sagas over `peers` (resuming unfinished
    /// ones) until `shutdown`.
    pub async fn open(
        database_url: &str,
        peers: Connected,
        broker: Broker,
        policy: SagaPolicy,
        shutdown: &Shutdown,
    ) -> Result<Self, OrdersError> {
        let db = shop_kit::db::connect("orders", database_url).await?;
        shop_migrations::up::<shop_migrations::orders::Migrator>(&db, "orders")
            .await
            .map_err(shop_kit::db::StorageError::migrate)?;
        let Connected {
            catalog,
            payments,
            needed,
        } = peers;
        let feed = OrderFeed::new();
        let history = History::new(db.clone());
        let recorder = history.clone();
        let subscriptions = vec![
            Subscription::batched(
                store::HISTORY_CONSUMER,
                events::ORDER_EVENTS,
                Delivery::Durable,
                move |batch| {
                    let history = recorder.clone();
                    async move { history.record(&batch).await.map_err(|e| e.to_string()) }
                },
            ),
            feed.subscription(),
        ];
        let ledger = Ledger::start(db, events::SERVICE, broker, subscriptions, shutdown);
        let store = Store { ledger };
        let sagas = SagaDriver::start(
            store.clone(),
            catalog.clone(),
            payments.clone(),
            policy,
            shutdown,
        );
        Ok(Self {
            store,
            history,
            feed,
            catalog,
            payments,
            sagas,
            needed,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn feed(&self) -> &OrderFeed {
        &self.feed
    }

    /// Whether each peer it calls has an endpoint that serves (else which
    /// has none): orders is not ready before.
    pub fn peers_serving(&self) -> Result<(), String> {
        shop_kit::client::each_serving(&self.needed)
    }

    /// One page of a customer's order history, newest first, and whether
    /// more follow. The history is a read model fed by the order events,
    /// completed with the orders it has not caught up with yet, so a
    /// customer who has just seen an order confirmed finds it here,
    /// whichever replica they ask.
    pub async fn history_page(
        &self,
        user_id: &str,
        size: u64,
        after: Option<&Cursor>,
    ) -> Result<(Vec<Order>, bool), OrdersError> {
        self.history.page(user_id, size, after).await
    }

    /// Places an order once per (customer, key), priced by the catalog, and
    /// starts its saga; answers at once, PENDING.
    pub async fn create(
        &self,
        user_id: &str,
        key: &str,
        lines: &[(String, i32)],
        payment_token: &str,
    ) -> Result<Order, OrdersError> {
        let key = domain::idempotency_key(key)?;
        let wanted = domain::wanted_lines(lines)?;
        let payment_token = domain::payment_token(payment_token)?;
        let ids: Vec<String> = wanted.iter().map(|w| w.product_id.clone()).collect();
        // Its saga's turn before anything is asked or written, within the
        // caller's time (the call's context, which the calls below carry).
        let turn = self.sagas.turn(CallContext::deadline()).await?;
        // Priced by the catalog while payments checks the token.
        let (prices, ()) = tokio::try_join!(
            self.catalog.prices(&ids),
            self.payments.check_token(payment_token),
        )?;
        let (lines, currency_code, total_minor_units) = domain::price(&wanted, &prices)?;
        let now = now_ms();
        let order = Order {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            lines,
            currency_code,
            total_minor_units,
            status: OrderStatus::Pending,
            cancellation: None,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
        };
        let deadline = now.saturating_add(
            i64::try_from(self.sagas.policy().deadline.as_millis()).unwrap_or(i64::MAX),
        );
        let placed = self
            .store
            .create(NewOrder {
                order,
                idempotency_key: key,
                payment_token,
                deadline_at_ms: deadline,
                traceparent: &traces::current_traceparent(),
                lease_until_ms: self.sagas.lease_from(now),
            })
            .await?;
        Ok(match placed {
            Placed::New(held) => {
                let order = held.order.clone();
                self.sagas.drive_held(held, turn);
                order
            }
            Placed::Existing {
                order,
                payment_token: paid_with,
            } => {
                if !domain::asks_for(&order, &paid_with, &wanted, payment_token) {
                    return Err(OrdersError::KeyReused {
                        key: key.to_owned(),
                    });
                }
                order
            }
        })
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
            let mut watch = self.feed.watch(order_id);
            self.store.request_cancel(order_id).await?;
            self.sagas.kick(order_id);
            let ended = async {
                let mut version = order.version;
                while let Some(change) = watch.newer_than(version).await {
                    if change.status.is_final() {
                        return;
                    }
                    version = change.version;
                }
            };
            let _ = tokio::time::timeout(CANCEL_PATIENCE, ended).await;
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

/// Orders as it is started (by the launcher, `shop serve orders` and the
/// tests alike, through [`shop_kit::app::Launch`]).
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub peers: Peers,
    /// NATS for events; in process when `None`.
    pub nats: Option<shop_kit::events::NatsServer>,
    pub saga: SagaPolicy,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: TokenKeys,
}

impl Service for Config {
    const NAME: &'static str = "orders";
    type Handle = Orders;

    /// Also resumes the sagas a previous run left unfinished.
    async fn open(&self, context: &Context) -> Result<Orders, StartFailure> {
        let peers = self.peers.connect().await.map_err(StartFailure::config)?;
        let broker = Broker::new(self.nats.as_ref(), Self::NAME).await?;
        Orders::open(
            self.database_url.expose(),
            peers,
            broker,
            self.saga.clone(),
            &context.shutdown,
        )
        .await
        .map_err(|e| StartFailure::database(&self.database_url, e))
    }

    async fn seed(&self, _: &Orders) -> Result<String, StartFailure> {
        Ok("nothing".to_owned())
    }

    /// OrderService on all three protocols; GetOrder and ListOrders also
    /// on GET.
    async fn server(&self, orders: Orders, context: &Context) -> Result<RpcServer, StartFailure> {
        let serving = orders.clone();
        let server = context
            .server(orders.store().ledger.db(), &self.token_keys)
            .await?
            .ready_after(move || serving.peers_serving());
        let state = AppState {
            orders,
            shutdown: context.shutdown.clone(),
        };
        Ok(server.serve(api::order_service(state)))
    }
}
