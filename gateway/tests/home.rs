//! The gateway over real services on loopback (users, catalog, orders with
//! payments), each behind a door the test controls: slowed, failing, or
//! counted. Called like a browser would, over Connect.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use shop_catalog::domain::{Money, NewProduct};
use shop_gateway::{CachePolicy, ServicePeers, ServiceUrls};
use shop_kit::{
    HttpConfig,
    app::{Launch, Service},
    auth::TokenKeys,
    client::{PeerPolicy, PeerTarget},
    rpc::rate_limit::RateLimitConfig,
    testing::TestDatabase,
};

const SECRET: &str = "gateway-test-secret";

/// What the test does to one service's calls.
#[derive(Default)]
struct Door {
    delay_ms: AtomicU64,
    down: AtomicBool,
    /// Fail this many of the next calls with unavailable.
    flaky: AtomicU32,
    /// RPC calls that reached the service.
    reached: AtomicU32,
}

async fn door(State(door): State<Arc<Door>>, request: Request, next: Next) -> Response {
    let rpc = request.uri().path().starts_with("/shop.");
    if rpc {
        door.reached.fetch_add(1, Ordering::SeqCst);
    }
    let delay = door.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let flaky = rpc
        && door
            .flaky
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if rpc && (door.down.load(Ordering::SeqCst) || flaky) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(request).await
}

/// Starts `service` the one way services start, behind `door_state`.
/// Returns its URL and handle.
async fn launch<S: Service>(service: S, door_state: &Arc<Door>) -> (SocketAddr, S::Handle) {
    let door_state = door_state.clone();
    let running = Launch::new(service)
        .http(HttpConfig {
            shutdown_grace_secs: 1,
            ..Default::default()
        })
        .wrap(move |app| app.layer(axum::middleware::from_fn_with_state(door_state, door)))
        .start()
        .await
        .expect("start");
    (running.addr, running.handle)
}

struct Shop {
    gateway: SocketAddr,
    users: Arc<Door>,
    catalog: Arc<Door>,
    orders: Arc<Door>,
    ada: String,
    ada_id: String,
    _web_dir: tempfile::TempDir,
    _databases: Vec<TestDatabase>,
}

struct Settings {
    rate_limit: RateLimitConfig,
    downstream: PeerPolicy,
    catalog_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitConfig {
                ip_per_second: 1000,
                ip_burst: 1000,
                user_per_second: 1000,
                user_burst: 1000,
            },
            downstream: PeerPolicy {
                calls: shop_proto::calls(None).expect("the contract's call policy"),
                breaker_cooldown: Duration::from_millis(300),
                breaker_threshold: 3,
                ..PeerPolicy::default()
            },
            catalog_ttl: Duration::from_millis(1),
        }
    }
}

impl Shop {
    async fn start(settings: Settings) -> Self {
        let doors: [Arc<Door>; 5] = Default::default();
        let [
            users_door,
            catalog_door,
            orders_door,
            payments_door,
            gateway_door,
        ] = doors;

        let users_db = TestDatabase::new("users").await;
        let (users, _) = launch(
            shop_users::Config {
                service_secret: SECRET.into(),
                ..shop_users::Config::new(users_db.url.as_str().into())
            },
            &users_door,
        )
        .await;
        let users_url = format!("http://{users}");
        let token_keys = TokenKeys::users_at(users, shop_proto::identity::token_rules());

        // A real account: the gateway's GetMe must find it.
        let (status, signed_up) = shop_kit::testing::call_json(
            &format!("{users_url}/shop.users.v1.UserService/SignUp"),
            None,
            &json!({"email": "ada@example.com", "password": "correct horse 9", "displayName": "Ada"}),
        )
        .await;
        assert_eq!(status, 200, "{signed_up}");
        let ada = signed_up["session"]["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        let ada_id = signed_up["user"]["id"].as_str().expect("id").to_owned();

        let catalog_db = TestDatabase::new("catalog").await;
        let (catalog_addr, catalog) = launch(
            shop_catalog::Config {
                database_url: catalog_db.url.as_str().into(),
                demo_data: false,
                demo_stock: None,
                nats: None,
                token_keys: token_keys.clone(),
            },
            &catalog_door,
        )
        .await;
        let catalog_url = format!("http://{catalog_addr}");
        for (id, name, cents) in [
            ("p1", "Mug", 1800),
            ("p2", "Beans", 1290),
            ("p3", "Kettle", 4500),
        ] {
            let product = NewProduct::new(
                id,
                &format!("SKU-{}", id.to_uppercase()),
                name,
                "for testing",
                Money::new("EUR", cents).expect("price"),
                7,
            )
            .expect("product");
            catalog.add_product(product).await.expect("insert");
        }

        let payments_db = TestDatabase::new("payments").await;
        let (payments, _) = launch(
            shop_payments::Config {
                database_url: payments_db.url.as_str().into(),
                nats: None,
                token_keys: token_keys.clone(),
            },
            &payments_door,
        )
        .await;

        let orders_db = TestDatabase::new("orders").await;
        let (orders, _) = launch(
            shop_orders::Config {
                database_url: orders_db.url.as_str().into(),
                peers: shop_orders::Peers {
                    users: PeerTarget::addr(users),
                    catalog: PeerTarget::addr(catalog_addr),
                    payments: PeerTarget::addr(payments),
                    service_secret: SECRET.into(),
                    calls: shop_proto::calls(None).expect("the contract's call policy"),
                },
                nats: None,
                saga: shop_orders::SagaPolicy::default(),
                token_keys: token_keys.clone(),
            },
            &orders_door,
        )
        .await;

        let web_dir = tempfile::tempdir().expect("web dir");
        std::fs::write(web_dir.path().join("index.html"), "<h1>connect-shop</h1>").expect("index");
        let (gateway, _) = launch(
            shop_gateway::Config {
                browser: ServiceUrls {
                    users_url,
                    catalog_url,
                    orders_url: format!("http://{orders}"),
                    payments_url: "http://127.0.0.1:8084".to_owned(),
                    added: Default::default(),
                },
                services: ServicePeers {
                    users: PeerTarget::addr(users),
                    catalog: PeerTarget::addr(catalog_addr),
                    orders: PeerTarget::addr(orders),
                },
                downstream: settings.downstream,
                cache: CachePolicy {
                    catalog_ttl: settings.catalog_ttl,
                },
                rate_limit: settings.rate_limit,
                web_dir: Some(web_dir.path().to_owned()),
                token_keys,
            },
            &gateway_door,
        )
        .await;
        Self {
            gateway,
            users: users_door,
            catalog: catalog_door,
            orders: orders_door,
            ada,
            ada_id,
            _web_dir: web_dir,
            _databases: vec![users_db, catalog_db, payments_db, orders_db],
        }
    }

    async fn home(
        &self,
        service: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("http://{}/shop.bff.v1.{service}/GetHome", self.gateway);
        shop_kit::testing::call_json_with(&url, token, headers, &json!({})).await
    }

    fn slow_everything(&self, ms: u64) {
        for door in [&self.users, &self.catalog, &self.orders] {
            door.delay_ms.store(ms, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn the_web_home_fans_out_in_parallel_and_takes_the_slowest_part_not_the_sum() {
    let shop = Shop::start(Settings::default()).await;
    // Warm the connections, then slow every service by 600 ms: in
    // parallel the home takes 600 ms, one call after another 1.8 s; the
    // bound is halfway, room for a busy machine either side.
    let (status, _) = shop.home("WebBffService", Some(&shop.ada), &[]).await;
    assert_eq!(status, 200);
    shop.slow_everything(600);
    let started = Instant::now();
    let (status, home) = shop.home("WebBffService", Some(&shop.ada), &[]).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{home}");
    assert!(
        took < Duration::from_millis(1200),
        "three 600 ms calls took {took:?}: not in parallel"
    );
    assert_eq!(home["account"]["customerId"], shop.ada_id.as_str());
    assert_eq!(home["account"]["displayName"], "Ada");
    let products = home["featuredProducts"].as_array().expect("products");
    assert_eq!(products.len(), 3);
    assert_eq!(products[0]["name"], "Mug");
    assert_eq!(products[0]["stockOnHand"], 7);
    assert_eq!(home.get("degraded"), None);
}

#[tokio::test]
async fn optional_parts_down_are_marked_degraded_a_required_part_down_fails_the_call() {
    let shop = Shop::start(Settings::default()).await;
    shop.orders.down.store(true, Ordering::SeqCst);
    let (status, home) = shop.home("WebBffService", Some(&shop.ada), &[]).await;
    assert_eq!(status, 200, "{home}");
    assert_eq!(home["degraded"][0]["section"], "SECTION_RECENT_ORDERS");
    assert_eq!(
        home["degraded"][0]["reason"],
        "the orders service is unavailable, try again later"
    );
    assert_eq!(home["account"]["displayName"], "Ada", "the rest still came");

    shop.users.down.store(true, Ordering::SeqCst);
    let (_, mobile) = shop.home("MobileBffService", Some(&shop.ada), &[]).await;
    let sections: Vec<&str> = mobile["degraded"]
        .as_array()
        .expect("degraded")
        .iter()
        .map(|d| d["section"].as_str().expect("section"))
        .collect();
    assert_eq!(sections, ["SECTION_ACCOUNT", "SECTION_RECENT_ORDERS"]);
    assert_eq!(mobile["greeting"], "Welcome");

    shop.catalog.down.store(true, Ordering::SeqCst);
    let (status, failed) = shop.home("WebBffService", None, &[]).await;
    assert_eq!(
        (status, failed["code"].as_str()),
        (503, Some("unavailable")),
        "{failed}"
    );
}

#[tokio::test]
async fn the_callers_deadline_bounds_the_whole_fan_out() {
    let shop = Shop::start(Settings::default()).await;
    // Services 5 s away, a caller's 100 ms: bounded at half the slow way.
    shop.slow_everything(5000);
    let started = Instant::now();
    let (status, answer) = shop
        .home(
            "WebBffService",
            Some(&shop.ada),
            &[("connect-timeout-ms", "100")],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(
        (status, answer["code"].as_str()),
        (504, Some("deadline_exceeded")),
        "{answer}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[tokio::test]
async fn the_mobile_home_is_the_same_screen_much_smaller() {
    let shop = Shop::start(Settings::default()).await;
    let size = |service: &'static str| {
        let url = format!("http://{}/shop.bff.v1.{service}/GetHome", shop.gateway);
        let token = shop.ada.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/proto")
                .bearer_auth(token)
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body").len()
        }
    };
    let web = size("WebBffService").await;
    let mobile = size("MobileBffService").await;
    assert!(mobile * 3 < web, "mobile {mobile} bytes, web {web} bytes");
    let (_, home) = shop.home("MobileBffService", Some(&shop.ada), &[]).await;
    assert_eq!(home["topProduct"]["name"], "Mug");
    assert_eq!(home.get("pendingOrders"), None, "zero pending");
}

#[tokio::test]
async fn a_failing_downstream_opens_the_breaker_and_a_probe_closes_it() {
    let shop = Shop::start(Settings::default()).await;
    shop.catalog.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let (status, _) = shop.home("WebBffService", None, &[]).await;
        assert_eq!(status, 503);
    }
    let reached = shop.catalog.reached.load(Ordering::SeqCst);
    for _ in 0..5 {
        let (status, failed) = shop.home("WebBffService", None, &[]).await;
        assert_eq!(status, 503, "{failed}");
    }
    assert_eq!(
        shop.catalog.reached.load(Ordering::SeqCst),
        reached,
        "open: failing fast without calling the catalog"
    );
    shop.catalog.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, _) = shop.home("WebBffService", None, &[]).await;
    assert_eq!(status, 200, "the probe closed it");
    assert_eq!(shop.catalog.reached.load(Ordering::SeqCst), reached + 1);
}

#[tokio::test]
async fn a_flaky_downstream_is_retried_for_these_idempotent_reads() {
    let shop = Shop::start(Settings::default()).await;
    shop.catalog.flaky.store(1, Ordering::SeqCst);
    let (status, home) = shop.home("WebBffService", None, &[]).await;
    assert_eq!(status, 200, "{home}");
    assert_eq!(shop.catalog.reached.load(Ordering::SeqCst), 2, "one retry");
}

#[tokio::test]
async fn a_burst_over_a_callers_limit_gets_resource_exhausted_others_still_pass() {
    let shop = Shop::start(Settings {
        rate_limit: RateLimitConfig {
            ip_per_second: 1000,
            ip_burst: 1000,
            user_per_second: 1,
            user_burst: 3,
        },
        ..Settings::default()
    })
    .await;
    let mut limited = Vec::new();
    for _ in 0..6 {
        let url = format!("http://{}/shop.bff.v1.WebBffService/GetHome", shop.gateway);
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .bearer_auth(&shop.ada)
            .body("{}")
            .send()
            .await
            .expect("send");
        if response.status() == 429 {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .expect("hint")
                .to_owned();
            let body: Value = response.json().await.expect("json");
            limited.push((retry_after, body));
        }
    }
    assert_eq!(limited.len(), 3, "3 of the burst pass: {limited:?}");
    let (retry_after, body) = &limited[0];
    assert_eq!(body["code"], "resource_exhausted");
    assert!(retry_after.parse::<u64>().expect("seconds") >= 1);
    // Anonymous callers (and other customers) are not held back by Ada.
    let (status, _) = shop.home("WebBffService", None, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root() {
    let shop = Shop::start(Settings::default()).await;
    for path in ["/", "/orders/123"] {
        let page = reqwest::get(format!("http://{}{path}", shop.gateway))
            .await
            .expect("get");
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(page.text().await.expect("text"), "<h1>connect-shop</h1>");
    }
}

#[tokio::test]
async fn the_home_screens_rest_routes_are_calls_not_pages() {
    let shop = Shop::start(Settings::default()).await;
    let client = reqwest::Client::new();
    let web: Value = client
        .get(format!("http://{}/v1/web/home", shop.gateway))
        .bearer_auth(&shop.ada)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("the home screen, not a page");
    assert_eq!(web["account"]["displayName"], "Ada", "{web}");
    let mobile = client
        .get(format!("http://{}/v1/mobile/home", shop.gateway))
        .send()
        .await
        .expect("get");
    assert_eq!(mobile.status(), 200);
    assert_eq!(mobile.headers()["content-type"], "application/json");
    // The API's OpenAPI document, not a page either.
    let document: Value = client
        .get(format!("http://{}/openapi.json", shop.gateway))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("the OpenAPI document");
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["paths"]["/v1/web/home"]["servers"][0]["url"], "/");
    // Another path under /v1 is still the app's.
    let page = reqwest::get(format!("http://{}/v1/elsewhere", shop.gateway))
        .await
        .expect("get");
    assert_eq!(page.text().await.expect("text"), "<h1>connect-shop</h1>");
}

#[tokio::test]
async fn catalog_reads_are_cached_and_concurrent_misses_share_one_call() {
    let shop = Shop::start(Settings {
        catalog_ttl: Duration::from_secs(30),
        ..Settings::default()
    })
    .await;
    shop.catalog.delay_ms.store(100, Ordering::SeqCst);
    let homes = (0..10).map(|_| shop.home("MobileBffService", None, &[]));
    for (status, home) in futures::future::join_all(homes).await {
        assert_eq!(status, 200, "{home}");
    }
    assert_eq!(shop.catalog.reached.load(Ordering::SeqCst), 1, "coalesced");
    let (status, _) = shop.home("WebBffService", None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(shop.catalog.reached.load(Ordering::SeqCst), 1, "cached");
}

#[tokio::test]
async fn bad_input_is_invalid_argument_and_a_bad_token_unauthenticated() {
    let shop = Shop::start(Settings::default()).await;
    let url = format!("http://{}/shop.bff.v1.WebBffService/GetHome", shop.gateway);
    // The rule of bff.proto, on every protocol, with a BadRequest.
    shop_kit::testing::refusals::assert_bad_request(
        &format!("http://{}", shop.gateway),
        "/shop.bff.v1.WebBffService/GetHome",
        None,
        &shop_proto::shop::bff::v1::WebBffServiceGetHomeRequest { featured_count: -1 },
        &[("featured_count", "featuredCount")],
    )
    .await;
    // Over the maximum is clamped to it (AIP-158), as page sizes are.
    let (status, home) =
        shop_kit::testing::call_json(&url, None, &json!({"featuredCount": 99})).await;
    assert_eq!(status, 200, "{home}");
    let (status, error) = shop.home("WebBffService", Some("not-a-token"), &[]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("unauthenticated")),
        "{error}"
    );
}

#[tokio::test]
async fn the_web_app_learns_the_service_urls_from_its_runtime_config() {
    let shop = Shop::start(Settings::default()).await;
    let config: Value = reqwest::get(format!("http://{}/config.json", shop.gateway))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    for key in ["usersUrl", "catalogUrl", "ordersUrl"] {
        let url = config[key].as_str().expect(key);
        assert!(url.starts_with("http://127.0.0.1:"), "{key}: {url}");
    }
}

#[tokio::test]
async fn every_downstream_call_is_timed_by_method_and_code() {
    let shop = Shop::start(Settings::default()).await;
    let (status, _) = shop.home("WebBffService", Some(&shop.ada), &[]).await;
    assert_eq!(status, 200);
    let metrics = reqwest::get(format!("http://{}/metrics", shop.gateway))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    for (service, method) in [
        ("shop.catalog.v1.CatalogService", "ListProducts"),
        ("shop.users.v1.UserService", "GetMe"),
        ("shop.orders.v1.OrderService", "ListOrders"),
    ] {
        let series = format!(
            "rpc_client_call_duration_seconds_count{{service=\"{service}\",method=\"{method}\",code=\"ok\"}}"
        );
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
}
