//! The widgets service over Connect on loopback, with its own SQLite file
//! (PostgreSQL under `just test-postgres`) and the real catalog beside it
//! (the peer its contract declares, with its demo products): who may call
//! it on whose data, each RPC's answers, and its event.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use shop_kit::{
    app::{Basics, Launch},
    auth::TokenKeys,
    client::{PeerPolicy, PeerTarget, Peers},
};
use shop_users::tokens::TokenIssuer;
use shop_widgets::Widgets;

struct TestWidgets {
    addr: SocketAddr,
    ada: String,
    bob: String,
    a_service: String,
    widgets: Widgets,
    _database: shop_kit::testing::TestDatabase,
    _catalog_database: shop_kit::testing::TestDatabase,
}

/// A product of the catalog's demo data.
const A_PRODUCT: &str = "prod_espresso";

impl TestWidgets {
    async fn start() -> Self {
        let database = shop_kit::testing::TestDatabase::new("widgets").await;
        let (kid, der) = TokenIssuer::generate_key().expect("key");
        let issuer = TokenIssuer::from_pkcs8(kid, &der).expect("issuer");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let catalog_database = shop_kit::testing::TestDatabase::new("catalog").await;
        let catalog = Launch::new(shop_catalog::Config {
            database_url: catalog_database.url.as_str().into(),
            demo_data: true,
            demo_stock: None,
            nats: None,
            token_keys: TokenKeys::Given(issuer.verifier().expect("verifier")),
        })
        .start()
        .await
        .expect("catalog");
        // The peers the contract declares, called with its policy.
        let peers = Peers::new(PeerPolicy {
            calls: shop_proto::calls(None).expect("the contract's call policy"),
            ..PeerPolicy::default()
        })
        .with("catalog", PeerTarget::addr(catalog.addr));
        let running = Launch::new(shop_widgets::Config(Basics {
            database_url: database.url.as_str().into(),
            nats: None,
            token_keys: TokenKeys::Given(issuer.verifier().expect("verifier")),
            peers,
        }))
        .start()
        .await
        .expect("widgets");
        Self {
            addr: running.addr,
            ada: issuer.access_token("ada", now).expect("token"),
            bob: issuer.access_token("bob", now).expect("token"),
            a_service: issuer.access_token("service:orders", now).expect("token"),
            widgets: running.handle,
            _database: database,
            _catalog_database: catalog_database,
        }
    }

    fn url(&self, method: &str) -> String {
        format!(
            "http://{}/shop.widgets.v1.WidgetService/{method}",
            self.addr
        )
    }

    async fn call(&self, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        shop_kit::testing::call_json(&self.url(method), token, &body).await
    }

    async fn create(&self, token: &str, request_id: &str, title: &str) -> Value {
        let (status, created) = self
            .call(
                "CreateWidget",
                Some(token),
                json!({"requestId": request_id, "title": title, "productId": A_PRODUCT}),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        created["widget"].clone()
    }
}

#[tokio::test]
async fn a_widget_is_created_once_per_request_id() {
    let service = TestWidgets::start().await;
    let first = service.create(&service.ada, "r1", "A widget").await;
    assert_eq!(first["title"], "A widget");
    assert_eq!(first["customerId"], "ada");
    assert!(first["createTime"].is_string(), "{first}");
    let repeat = service.create(&service.ada, "r1", "A widget").await;
    assert_eq!(repeat["id"], first["id"]);

    let (status, reused) = service
        .call(
            "CreateWidget",
            Some(&service.ada),
            json!({"requestId": "r1", "title": "Another", "productId": A_PRODUCT}),
        )
        .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (409, Some("already_exists"))
    );
    assert_eq!(
        shop_kit::testing::error_info(&reused).map(|(reason, _)| reason),
        Some("REQUEST_ID_REUSED".to_owned())
    );

    // Bob's request ids are his own.
    let bobs = service.create(&service.bob, "r1", "Another").await;
    assert_ne!(bobs["id"], first["id"]);

    // One widget.created event for each widget made, none for the repeat.
    let events =
        shop_kit::testing::outbox_events(service.widgets.store().ledger.db(), "widgets").await;
    let created: Vec<&str> = events
        .iter()
        .filter(|event| event.event_type == "widget.created")
        .map(|event| event.aggregate_id.as_str())
        .collect();
    assert_eq!(
        created,
        [
            first["id"].as_str().expect("id"),
            bobs["id"].as_str().expect("id")
        ]
    );
}

#[tokio::test]
async fn a_customer_sees_only_their_own_widgets() {
    let service = TestWidgets::start().await;
    let widget = service.create(&service.ada, "r1", "Ada's").await;
    let id = widget["id"].as_str().expect("id");

    let (status, got) = service
        .call("GetWidget", Some(&service.ada), json!({"widgetId": id}))
        .await;
    assert_eq!((status, &got["widget"]["id"]), (200, &widget["id"]));

    let (status, others) = service
        .call("GetWidget", Some(&service.bob), json!({"widgetId": id}))
        .await;
    assert_eq!((status, others["code"].as_str()), (404, Some("not_found")));

    let (status, listed) = service
        .call("ListWidgets", Some(&service.bob), json!({}))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["widgets"], json!(null), "{listed}");
}

#[tokio::test]
async fn the_contract_says_who_may_call_and_what_is_valid() {
    let service = TestWidgets::start().await;
    let (status, anonymous) = service.call("ListWidgets", None, json!({})).await;
    assert_eq!(
        (status, anonymous["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // A service is no customer.
    let (status, a_service) = service
        .call("ListWidgets", Some(&service.a_service), json!({}))
        .await;
    assert_eq!(
        (status, a_service["code"].as_str()),
        (403, Some("permission_denied"))
    );

    for invalid in [
        json!({"requestId": "r1", "title": "", "productId": A_PRODUCT}),
        json!({"requestId": "", "title": "A widget", "productId": A_PRODUCT}),
        json!({"requestId": "r1", "title": "x".repeat(201), "productId": A_PRODUCT}),
        json!({"requestId": "r1", "title": "A widget"}),
    ] {
        let (status, refused) = service
            .call("CreateWidget", Some(&service.ada), invalid.clone())
            .await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (400, Some("invalid_argument")),
            "{invalid}: {refused}"
        );
    }

    let (status, forged) = service
        .call(
            "ListWidgets",
            Some(&service.ada),
            json!({"pageToken": "forged"}),
        )
        .await;
    assert_eq!(
        (status, forged["code"].as_str()),
        (400, Some("invalid_argument"))
    );
}

#[tokio::test]
async fn widgets_are_listed_newest_first_a_page_at_a_time() {
    let service = TestWidgets::start().await;
    let mut made = Vec::new();
    for n in 0..5 {
        let widget = service
            .create(&service.ada, &format!("r{n}"), &format!("w{n}"))
            .await;
        made.push(widget["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = service
            .call(
                "ListWidgets",
                Some(&service.ada),
                json!({"pageSize": 2, "pageToken": token}),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let widgets = page["widgets"].as_array().cloned().unwrap_or_default();
        assert!(widgets.len() <= 2);
        seen.extend(
            widgets
                .iter()
                .map(|w| w["id"].as_str().expect("id").to_owned()),
        );
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    // Every widget once (newest first: widgets made in the same
    // millisecond follow their ids).
    assert_eq!(seen.len(), made.len());
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_made = made.clone();
    sorted_made.sort();
    assert_eq!(sorted_seen, sorted_made, "every widget once");
}

#[tokio::test]
async fn a_watcher_sees_its_own_new_widgets_live() {
    let service = TestWidgets::start().await;
    let body = b"{}";
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(body.len()).expect("len").to_be_bytes());
    framed.extend_from_slice(body);
    let mut response = reqwest::Client::new()
        .post(service.url("WatchWidgets"))
        .header("content-type", "application/connect+json")
        .bearer_auth(&service.ada)
        .body(framed)
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status(), 200);
    // Bob's widget is not Ada's news; hers is.
    service.create(&service.bob, "r1", "Bob's").await;
    let hers = service.create(&service.ada, "r1", "Ada's").await;
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("Ada's") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("in time")
            .expect("read")
            .expect("the stream goes on");
        received.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains(hers["id"].as_str().expect("id")), "{text}");
    assert!(!text.contains("Bob's"), "{text}");
}

/// A widget is about a product the catalog has: the catalog is asked
/// (the call its contract declares), and a product it does not have is
/// refused before anything is recorded.
#[tokio::test]
async fn a_widget_is_about_a_product_the_catalog_has() {
    let service = TestWidgets::start().await;
    let made = service.create(&service.ada, "r1", "About espresso").await;
    assert_eq!(made["productId"], A_PRODUCT);

    let (status, refused) = service
        .call(
            "CreateWidget",
            Some(&service.ada),
            json!({"requestId": "r2", "title": "About nothing", "productId": "prod_none"}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("failed_precondition")),
        "{refused}"
    );
    assert_eq!(
        shop_kit::testing::error_info(&refused).map(|(reason, _)| reason),
        Some("NO_SUCH_PRODUCT".to_owned())
    );
    let (_, listed) = service
        .call("ListWidgets", Some(&service.ada), json!({}))
        .await;
    assert_eq!(
        listed["widgets"].as_array().map(Vec::len),
        Some(1),
        "nothing recorded for the refused one: {listed}"
    );
}
