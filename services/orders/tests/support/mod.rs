//! A whole shop on loopback for the orders tests: real users (service
//! tokens), catalog and payments services in the test's runtime, and the
//! orders service in a runtime of its own, so a test can crash it (drop
//! every task and connection at once, as a killed process would) and start
//! it again on the same database. Faults are injected at the peers' doors:
//! a crash of orders just before or just after a peer handles a step, or a
//! step held until the test lets it through.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use shop_catalog::domain::{Money, NewProduct};
use shop_kit::{
    HttpConfig, app::Launch, auth::TokenKeys, client::PeerTarget, testing::TestDatabase,
};
use shop_orders::{Peers, SagaPolicy};
use tokio::sync::Semaphore;

pub const SECRET: &str = "orders-test-secret";

/// What happens to the next call of one peer method.
#[derive(Clone)]
pub enum Fault {
    /// Orders dies before the peer sees the call.
    CrashBefore,
    /// The peer does the work, then orders dies before hearing of it.
    CrashAfter,
    /// The call waits until the gate gets a permit.
    Hold(Arc<Semaphore>),
}

type OrdersRuntime = Arc<Mutex<Option<tokio::runtime::Runtime>>>;

#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<(String, Fault)>>>,
    orders: OrdersRuntime,
}

impl Faults {
    /// The next call of `method` (e.g. "ReserveStock") meets `fault`.
    pub fn on(&self, method: &str, fault: Fault) {
        self.rules
            .lock()
            .expect("rules")
            .push((method.to_owned(), fault));
    }

    /// Whether a fault set for `method` still waits for its call.
    pub fn pending(&self, method: &str) -> bool {
        self.pending_count(method) > 0
    }

    /// How many faults set for `method` still wait for their calls.
    pub fn pending_count(&self, method: &str) -> usize {
        self.rules
            .lock()
            .expect("rules")
            .iter()
            .filter(|(m, _)| m == method)
            .count()
    }

    fn take(&self, method: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("rules");
        let at = rules.iter().position(|(m, _)| m == method)?;
        Some(rules.remove(at).1)
    }

    /// Kills the orders service: every task and connection of its runtime.
    pub fn crash_orders(&self) {
        if let Some(runtime) = self.orders.lock().expect("runtime").take() {
            runtime.shutdown_background();
        }
    }
}

async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let method = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match faults.take(&method) {
        None => next.run(request).await,
        Some(Fault::CrashBefore) => {
            faults.crash_orders();
            axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Some(Fault::CrashAfter) => {
            let response = next.run(request).await;
            faults.crash_orders();
            response
        }
        Some(Fault::Hold(gate)) => {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
            next.run(request).await
        }
    }
}

/// The test's servers stop within a second when asked.
fn http() -> HttpConfig {
    HttpConfig {
        shutdown_grace_secs: 1,
        ..Default::default()
    }
}

/// The contract's calls, but a saga step's given 5 s rather than 3: 24
/// racing orders on a loaded CI machine queue for the catalog's hot rows,
/// and a lease shorter than a call only risks a second driver repeating
/// an idempotent step. Said as a deployment would say it: a gRPC service
/// config.
pub fn calls() -> shop_kit::client::Calls {
    shop_kit::client::Calls::configured(
        shop_proto::FILE_DESCRIPTOR_SET,
        r#"{"methodConfig": [{
            "name": [{"service": "shop.catalog.v1.StockService"},
                     {"service": "shop.payments.v1.OrderPaymentService"}],
            "timeout": "5s",
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "1s",
                            "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]}
        }]}"#,
    )
    .expect("the service config")
}

/// Quick retries and leases, so crashes and retries resolve in a test's time.
pub fn fast_policy() -> SagaPolicy {
    SagaPolicy {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        deadline: Duration::from_secs(60),
        lease: Duration::from_millis(2500),
        sweep_every: Duration::from_millis(100),
        max_driving: SagaPolicy::default().max_driving,
    }
}

pub struct Options {
    /// Stock of p1 (12.00 EUR) and p2 (3.50 EUR).
    pub stock: i32,
    pub nats: Option<shop_kit::events::NatsServer>,
    pub policy: SagaPolicy,
    /// Point orders at a catalog that does not answer.
    pub catalog_down: bool,
    /// Orders' admission control (`--max-calls-in-flight`; 0: off).
    pub orders_max_calls_in_flight: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stock: 10,
            nats: None,
            policy: fast_policy(),
            catalog_down: false,
            orders_max_calls_in_flight: HttpConfig::default().max_calls_in_flight,
        }
    }
}

pub struct Shop {
    pub orders: SocketAddr,
    pub catalog: shop_catalog::Catalog,
    pub payments: shop_payments::Payments,
    pub faults: Faults,
    pub accounts: shop_users::Accounts,
    pub ada: String,
    pub bob: String,
    catalog_process: Peer<shop_catalog::Config>,
    payments_process: Peer<shop_payments::Config>,
    peers: Peers,
    options: Options,
    orders_db: TestDatabase,
    /// Users, catalog and payments, in that order.
    databases: Vec<TestDatabase>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.faults.crash_orders();
        let peers = [
            self.catalog_process.runtime.take(),
            self.payments_process.runtime.take(),
        ];
        for runtime in peers.into_iter().flatten() {
            runtime.shutdown_background();
        }
    }
}

/// A peer service (catalog, payments) in a runtime of its own, so a test
/// can kill it (every task and connection at once, as kill -9 would) and
/// start it again on the same port and database.
struct Peer<C> {
    config: C,
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl<C> Peer<C>
where
    C: shop_kit::app::Service + Clone + Send + 'static,
    C::Handle: Send,
{
    /// Kills it, waits `outage`, starts it again: its new handle.
    async fn kill_for(&mut self, outage: Duration, faults: &Faults) -> C::Handle {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        tokio::time::sleep(outage).await;
        let (runtime, running) = in_own_runtime(self.config.clone(), self.addr, faults).await;
        self.runtime = Some(runtime);
        running.handle
    }
}

/// Starts `config`'s service on `addr` in a runtime of its own, its calls
/// passing the fault door.
async fn in_own_runtime<C>(
    config: C,
    addr: SocketAddr,
    faults: &Faults,
) -> (tokio::runtime::Runtime, shop_kit::app::Running<C::Handle>)
where
    C: shop_kit::app::Service + Send + 'static,
    C::Handle: Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let faults = faults.clone();
    let started = runtime.spawn(async move {
        Launch::new(config)
            .addr(addr)
            .http(http())
            .wrap(move |app: axum::Router| {
                app.layer(axum::middleware::from_fn_with_state(faults, inject))
            })
            .start()
            .await
            .expect("a peer service")
    });
    let running = started.await.expect("started");
    (runtime, running)
}

impl Shop {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        // Warnings (a peer call failing, a saga pausing) show in a failing
        // test's output; every call is traced (exported nowhere), so the
        // scenarios run through the tracing code too.
        shop_kit::testing::traces_on();
        let faults = Faults::default();

        let users_db = TestDatabase::new("users").await;
        let users = Launch::new(shop_users::Config {
            service_secret: SECRET.into(),
            ..shop_users::Config::new(users_db.url.as_str().into())
        })
        .http(http())
        .start()
        .await
        .expect("users");
        let accounts = users.handle;
        let token_keys = TokenKeys::users_at(users.addr, shop_proto::identity::token_rules());
        let catalog_db = TestDatabase::new("catalog").await;
        let catalog_config = shop_catalog::Config {
            database_url: catalog_db.url.as_str().into(),
            demo_data: false,
            demo_stock: None,
            nats: None,
            token_keys: token_keys.clone(),
        };
        let (catalog_runtime, catalog) = in_own_runtime(
            catalog_config.clone(),
            "127.0.0.1:0".parse().expect("addr"),
            &faults,
        )
        .await;
        for (id, cents) in [("p1", 1200), ("p2", 350)] {
            let product = NewProduct::new(
                id,
                &format!("SKU-{}", id.to_uppercase()),
                &format!("Product {id}"),
                "",
                Money::new("EUR", cents).expect("price"),
                options.stock,
            )
            .expect("product");
            catalog.handle.add_product(product).await.expect("insert");
        }
        let mut catalog_at = PeerTarget::addr(catalog.addr);
        if options.catalog_down {
            catalog_at = PeerTarget::addr("127.0.0.1:9".parse().expect("addr"));
        }

        let payments_db = TestDatabase::new("payments").await;
        let payments_config = shop_payments::Config {
            database_url: payments_db.url.as_str().into(),
            nats: None,
            token_keys: token_keys.clone(),
        };
        let (payments_runtime, payments) = in_own_runtime(
            payments_config.clone(),
            "127.0.0.1:0".parse().expect("addr"),
            &faults,
        )
        .await;

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let ada = accounts.issuer().access_token("ada", now).expect("token");
        let bob = accounts.issuer().access_token("bob", now).expect("token");
        let mut shop = Self {
            orders: "127.0.0.1:9".parse().expect("addr"),
            catalog: catalog.handle,
            payments: payments.handle,
            catalog_process: Peer {
                config: catalog_config,
                addr: catalog.addr,
                runtime: Some(catalog_runtime),
            },
            payments_process: Peer {
                config: payments_config,
                addr: payments.addr,
                runtime: Some(payments_runtime),
            },
            faults,
            accounts,
            ada,
            bob,
            peers: Peers {
                users: PeerTarget::addr(users.addr),
                catalog: catalog_at,
                payments: PeerTarget::addr(payments.addr),
                service_secret: SECRET.into(),
                calls: calls(),
            },
            options,
            orders_db: TestDatabase::new("orders").await,
            databases: vec![users_db, catalog_db, payments_db],
        };
        shop.start_orders().await;
        shop
    }

    /// Starts the orders service (again) on its database, in a runtime of
    /// its own.
    pub async fn start_orders(&mut self) {
        self.faults.crash_orders();
        let (runtime, started) = self.orders_in_own_runtime();
        *self.faults.orders.lock().expect("runtime") = Some(runtime);
        self.orders = started.await.expect("orders started");
    }

    /// Kills the payments service (`"payments"`) or the catalog
    /// (`"catalog"`) for `outage`, then starts it again on its port and
    /// database.
    pub async fn outage(&mut self, service: &str, outage: Duration) {
        match service {
            "payments" => {
                self.payments = self.payments_process.kill_for(outage, &self.faults).await;
            }
            "catalog" => {
                self.catalog = self.catalog_process.kill_for(outage, &self.faults).await;
            }
            other => panic!("no peer {other}"),
        }
    }

    /// Whether the orders service answers at all.
    pub async fn orders_alive(&self) -> bool {
        reqwest::Client::new()
            .get(format!("http://{}/healthz", self.orders))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok()
    }

    /// Kills orders (as a crash would) and starts it again.
    pub async fn restart_orders(&mut self) {
        self.faults.crash_orders();
        self.start_orders().await;
    }

    /// `count` orders by ada (keys `held-0`, `held-1`, ...) at work at once:
    /// the catalog holds each one's price lookup until the returned gate
    /// gets a permit per order. Returns once every lookup is held, with the
    /// calls' answers to come.
    pub async fn orders_held_at_the_catalog(
        &self,
        count: usize,
    ) -> (Arc<Semaphore>, Vec<tokio::task::JoinHandle<(u16, Value)>>) {
        let gate = Arc::new(Semaphore::new(0));
        for _ in 0..count {
            self.faults
                .on("BatchGetProducts", Fault::Hold(gate.clone()));
        }
        let url = format!(
            "http://{}/shop.orders.v1.OrderService/CreateOrder",
            self.orders
        );
        let held = (0..count)
            .map(|n| {
                let (url, token) = (url.clone(), self.ada.clone());
                let order = json!({
                    "idempotencyKey": format!("held-{n}"),
                    "paymentToken": "tok_visa",
                    "items": [{"productId": "p1", "quantity": 1}],
                });
                shop_kit::task::spawn(async move {
                    shop_kit::testing::call_json(&url, Some(&token), &order).await
                })
            })
            .collect();
        for _ in 0..200 {
            if !self.faults.pending("BatchGetProducts") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            !self.faults.pending("BatchGetProducts"),
            "{count} lookups held"
        );
        (gate, held)
    }

    pub async fn call(&self, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call_at(self.orders, method, token, body).await
    }

    /// A call to the orders replica at `orders`.
    pub async fn call_at(
        &self,
        orders: SocketAddr,
        method: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let url = format!("http://{orders}/shop.orders.v1.OrderService/{method}");
        shop_kit::testing::call_json(&url, token, &body).await
    }

    /// An orders service on this shop's database, broker and peers, started
    /// in a runtime of its own (so a test can kill it): the runtime, and
    /// its address once it listens.
    fn orders_in_own_runtime(
        &self,
    ) -> (tokio::runtime::Runtime, tokio::task::JoinHandle<SocketAddr>) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("orders runtime");
        let orders = shop_orders::Config {
            database_url: self.orders_db.url.as_str().into(),
            peers: self.peers.clone(),
            nats: self.options.nats.clone(),
            saga: self.options.policy.clone(),
            token_keys: TokenKeys::FromUsers {
                users: self.peers.users.clone(),
                rules: shop_proto::identity::token_rules(),
            },
        };
        let http = HttpConfig {
            max_calls_in_flight: self.options.orders_max_calls_in_flight,
            ..http()
        };
        let started = runtime.spawn(async move {
            Launch::new(orders)
                .http(http)
                .start()
                .await
                .expect("orders")
                .addr
        });
        (runtime, started)
    }

    /// A second orders replica: the same database, broker and peers, in a
    /// runtime of its own.
    pub async fn orders_replica(&self) -> OrdersReplica {
        let (runtime, started) = self.orders_in_own_runtime();
        let addr = started.await.expect("replica started");
        OrdersReplica {
            addr,
            runtime: Some(runtime),
        }
    }

    /// Places an order of 2 x p1 and 1 x p2 (27.50 EUR).
    pub async fn order(&self, token: &str, key: &str) -> Value {
        self.order_with(token, key, "tok_visa", &[("p1", 2), ("p2", 1)])
            .await
    }

    pub async fn order_with(
        &self,
        token: &str,
        key: &str,
        payment_token: &str,
        items: &[(&str, i32)],
    ) -> Value {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, quantity)| json!({"productId": id, "quantity": quantity}))
            .collect();
        let (status, body) = self
            .call(
                "CreateOrder",
                Some(token),
                json!({"idempotencyKey": key, "paymentToken": payment_token, "items": items}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["order"].clone()
    }

    /// The order once it is CONFIRMED or CANCELLED (or fails the test).
    pub async fn settled(&self, token: &str, order_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self
                .call("GetOrder", Some(token), json!({"orderId": order_id}))
                .await;
            if status == 200 && body["order"]["status"] != "ORDER_STATUS_PENDING" {
                return body["order"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} still pending: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// ListOrders once it lists `count` orders (the history follows the
    /// events, a moment after the orders themselves).
    pub async fn history(&self, token: &str, count: usize, request: Value) -> Value {
        self.history_within(token, count, request, Duration::from_secs(10))
            .await
    }

    /// ListOrders once it lists `count` orders, each as it ended (the
    /// history follows the events, taking in what is committed before each read).
    pub async fn history_settled(&self, token: &str, count: usize) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let listed = self.history(token, count, json!({"pageSize": 100})).await;
            let settled = listed["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|order| order["status"] != "ORDER_STATUS_PENDING");
            if settled {
                return listed;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "history still has pending orders: {listed}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// As `history`, waiting up to `patience`.
    pub async fn history_within(
        &self,
        token: &str,
        count: usize,
        request: Value,
        patience: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let (status, body) = self.call("ListOrders", Some(token), request.clone()).await;
            assert_eq!(status, 200, "{body}");
            let listed = body["orders"].as_array().map_or(0, Vec::len);
            if listed >= count {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "history has {listed} orders, not {count}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stock(&self, product_id: &str) -> i32 {
        self.catalog
            .store()
            .get(product_id)
            .await
            .expect("get")
            .expect("product")
            .stock_on_hand
    }

    /// The payments events about `order_id`: how money moved for it.
    pub async fn money_moves(&self, order_id: &str) -> Vec<String> {
        shop_kit::testing::outbox_events(self.payments.store().ledger.db(), "payments")
            .await
            .into_iter()
            .filter(|event| event.data["reference"] == order_id)
            .map(|event| event.event_type)
            .collect()
    }

    /// Where each service keeps its data: (service, database URL).
    pub fn database_urls(&self) -> Vec<(&'static str, &str)> {
        let others = ["users", "catalog", "payments"]
            .into_iter()
            .zip(self.databases.iter().map(|db| db.url.as_str()));
        std::iter::once(("orders", self.orders_db.url.as_str()))
            .chain(others)
            .collect()
    }

    /// Follows the order with WatchOrder (Connect JSON streaming) until the
    /// stream ends; the last status it reported.
    /// WatchOrder over Connect JSON streaming, read to its end: the HTTP
    /// status and the stream as text (messages and the end-of-stream).
    pub async fn watch(&self, token: &str, order_id: &str) -> (u16, String) {
        self.watch_at(self.orders, token, order_id).await
    }

    /// As `watch`, on the orders replica at `orders`.
    pub async fn watch_at(&self, orders: SocketAddr, token: &str, order_id: &str) -> (u16, String) {
        let body = json!({"orderId": order_id}).to_string();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(body.len()).expect("len").to_be_bytes());
        framed.extend_from_slice(body.as_bytes());
        let response = reqwest::Client::new()
            .post(format!(
                "http://{orders}/shop.orders.v1.OrderService/WatchOrder"
            ))
            .header("content-type", "application/connect+json")
            .bearer_auth(token)
            .body(framed)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("watch");
        let status = response.status().as_u16();
        let received = response.bytes().await.expect("the whole stream");
        (status, String::from_utf8_lossy(&received).into_owned())
    }

    pub async fn watch_until_final(&self, token: &str, order_id: &str) -> String {
        self.watch_until_final_at(self.orders, token, order_id)
            .await
    }

    /// As `watch_until_final`, on the orders replica at `orders`.
    pub async fn watch_until_final_at(
        &self,
        orders: SocketAddr,
        token: &str,
        order_id: &str,
    ) -> String {
        let (status, text) = self.watch_at(orders, token, order_id).await;
        assert_eq!(status, 200);
        [
            "ORDER_STATUS_CONFIRMED",
            "ORDER_STATUS_CANCELLED",
            "ORDER_STATUS_PENDING",
        ]
        .into_iter()
        .filter_map(|status| Some((text.rfind(status)?, status)))
        .max()
        .unwrap_or_else(|| panic!("no status in the stream: {text}"))
        .1
        .to_owned()
    }

    /// The orders service's own database (as it is on disk now).
    pub async fn orders_database(&self) -> sea_orm::DatabaseConnection {
        shop_kit::db::connect("orders", &self.orders_db.url)
            .await
            .expect("orders database")
    }
}

/// An orders replica started beside the shop's own; stopped when dropped.
pub struct OrdersReplica {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for OrdersReplica {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
