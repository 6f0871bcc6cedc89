//! Events through a real NATS JetStream (Debian's `nats-server`, started
//! here with JetStream on): the order history as a durable consumer, events
//! waiting in the outbox while the broker is down, duplicates ignored.
//! `just test-nats` runs these (they need the binary: NATS_SERVER or PATH).

mod support;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use support::{Options, Shop};

/// A nats-server with JetStream, storing under its own folder, on a port
/// that stays the same across restarts.
struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
    /// Its configuration file, when it wants a token and TLS.
    config: Option<std::path::PathBuf>,
}

/// The token a secured server wants (as production's from a Secret).
const TOKEN: &str = "s3cret-events-token";

impl NatsServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            store: tempfile::tempdir().expect("store"),
            child: None,
            config: None,
        };
        server.up();
        server
    }

    /// A server as deploy/kubernetes runs it: a token, TLS from a
    /// certificate of `ca`, and JetStream within limits.
    fn start_secured(ca: &shop_kit::tls::DevCa) -> Self {
        let mut server = Self {
            port: TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port(),
            store: tempfile::tempdir().expect("store"),
            child: None,
            config: None,
        };
        let dir = server.store.path();
        let issued = ca.server("nats", &[]).expect("certificate");
        std::fs::write(dir.join("tls.crt"), &issued.cert).expect("cert");
        std::fs::write(dir.join("tls.key"), &issued.key).expect("key");
        std::fs::write(dir.join("ca.crt"), ca.cert_pem()).expect("ca");
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\n\
                 authorization {{ token: \"{TOKEN}\" }}\n\
                 tls {{ cert_file: \"{d}/tls.crt\", key_file: \"{d}/tls.key\" }}\n\
                 jetstream {{ store_dir: \"{d}/js\", max_memory_store: 64MB, max_file_store: 2GB }}\n",
                port = server.port,
                d = dir.display()
            ),
        )
        .expect("config");
        server.config = Some(config);
        server.up();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let mut command = Command::new(&binary);
        match &self.config {
            Some(config) => command.arg("-c").arg(config),
            None => command
                .args([
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-sd",
                ])
                .arg(self.store.path()),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e} (install nats-server, or: just test-nats)"));
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not start");
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.down();
    }
}

async fn shop_on(nats: &NatsServer) -> Shop {
    Shop::start_with(Options {
        nats: Some(shop_kit::events::NatsServer::new(nats.url())),
        ..Options::default()
    })
    .await
}

#[tokio::test]
#[ignore = "needs nats-server: just test-nats"]
async fn order_events_flow_through_jetstream_into_the_history() {
    let nats = NatsServer::start();
    let shop = shop_on(&nats).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut seen = client.subscribe("shop.events.order.>").await.expect("sub");

    let placed = shop.order(&shop.ada, "via-nats").await;
    let id = placed["id"].as_str().expect("id");
    let order = shop.settled(&shop.ada, id).await;
    assert_eq!(order["status"], "ORDER_STATUS_CONFIRMED");
    let listed = shop.history(&shop.ada, 1, json!({})).await;
    assert_eq!(listed["orders"][0]["id"], id);

    // What crosses the wire: the envelope every consumer gets.
    let message = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .expect("in time")
        .expect("a message");
    let event: Value = serde_json::from_slice(&message.payload).expect("JSON");
    assert_eq!(message.subject.as_str(), "shop.events.order.created");
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["aggregateId"], id);
    assert_eq!(event["version"], 1);
    assert_eq!(event["source"], "orders");
    // The context of the CreateOrder that wrote it (traces on).
    let traceparent = event["traceparent"].as_str().expect("traceparent");
    assert_eq!(traceparent.split('-').count(), 4, "{traceparent}");
    assert!(traceparent.starts_with("00-"), "{traceparent}");
    assert_eq!(event["data"]["items"][0]["productName"], "Product p1");
}

#[tokio::test]
#[ignore = "needs nats-server: just test-nats"]
async fn events_wait_in_the_outbox_while_the_broker_is_down_and_duplicates_change_nothing() {
    let mut nats = NatsServer::start();
    let shop = shop_on(&nats).await;
    nats.down();

    // The saga does not need the broker: the order completes, its events
    // wait in the outbox, the history (fed by JetStream) does not know it;
    // ListOrders finds it all the same (read from the orders themselves).
    let placed = shop.order(&shop.ada, "while-down").await;
    let id = placed["id"].as_str().expect("id").to_owned();
    assert_eq!(
        shop.settled(&shop.ada, &id).await["status"],
        "ORDER_STATUS_CONFIRMED"
    );
    let db = shop.orders_database().await;
    let outbox = shop_kit::events::Outbox::new("orders");
    assert_eq!(outbox.backlog(&db).await.expect("backlog"), 2);
    let in_history = |db: sea_orm::DatabaseConnection| async move {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM order_history".to_owned(),
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    };
    assert_eq!(in_history(db.clone()).await, 0, "the history has not heard");
    let (_, listed_anyway) = shop.call("ListOrders", Some(&shop.ada), json!({})).await;
    assert_eq!(listed_anyway["orders"][0]["id"], id.as_str());
    assert_eq!(
        listed_anyway["orders"][0]["status"],
        "ORDER_STATUS_CONFIRMED"
    );

    // Back up: the relay publishes, the history catches up (the client
    // reconnects, the consumer notices within its heartbeat).
    nats.up();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while in_history(db.clone()).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the history never heard"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = shop
        .history_within(&shop.ada, 1, json!({}), Duration::from_secs(30))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut listed = listed;
    while listed["orders"][0]["status"] != "ORDER_STATUS_CONFIRMED" {
        assert!(tokio::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        listed = shop.history(&shop.ada, 1, json!({})).await;
    }
    // The relay marks an event sent once JetStream acknowledged it, which
    // may be a moment after a consumer already handled it.
    while outbox.backlog(&db).await.expect("backlog") > 0 {
        assert!(tokio::time::Instant::now() < deadline, "events left unsent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same event again (as a redelivery would bring it, under a new
    // message id so JetStream does not drop it first), and old news.
    let events = shop_kit::testing::outbox_events(&db, "orders").await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    for event in &events {
        jetstream
            .publish(
                event.subject(),
                serde_json::to_vec(event).expect("json").into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    let consumer_done = async {
        let stream = jetstream.get_stream("SHOP_EVENTS").await.expect("stream");
        loop {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .get_consumer("orders-order-history")
                .await
                .expect("consumer");
            let info = consumer.info().await.expect("info");
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= 4
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), consumer_done)
        .await
        .expect("the duplicates were delivered and acked");
    let after = shop.history(&shop.ada, 1, json!({})).await;
    assert_eq!(after, listed, "duplicates changed nothing");
}

/// Two orders replicas on one database and one JetStream: an order placed
/// on one and watched to its end on the other (its saga driven by the
/// first; the change reaches the second over NATS) is listed, final, at
/// once by either, though the history is fed by a consumer that may not
/// have had its events yet.
#[tokio::test]
#[ignore = "needs nats-server: just test-nats"]
async fn an_order_seen_final_on_one_replica_is_listed_at_once_on_either() {
    let nats = NatsServer::start();
    let shop = Shop::start_with(Options {
        nats: Some(shop_kit::events::NatsServer::new(nats.url())),
        stock: 1000,
        ..Options::default()
    })
    .await;
    let other = shop.orders_replica().await;
    for n in 0..20 {
        let placed = shop.order(&shop.ada, &format!("replica-{n}")).await;
        let id = placed["id"].as_str().expect("id");
        let watched = shop.watch_until_final_at(other.addr, &shop.ada, id).await;
        assert_eq!(
            watched, "ORDER_STATUS_CONFIRMED",
            "seen final on the other replica"
        );
        for orders in [other.addr, shop.orders] {
            let (status, listed) = shop
                .call_at(
                    orders,
                    "ListOrders",
                    Some(&shop.ada),
                    json!({"pageSize": 1}),
                )
                .await;
            assert_eq!(status, 200, "{listed}");
            assert_eq!(listed["orders"][0]["id"], id, "listed at once: {listed}");
            assert_eq!(listed["orders"][0]["status"], watched.as_str(), "{listed}");
        }
    }
}

/// NATS as production runs it (deploy/kubernetes: a token from a Secret,
/// TLS from the shop's CA, JetStream within limits): the shop's events get
/// through, the stream is bounded, and a client without the token or
/// without the CA is refused.
#[tokio::test]
#[ignore = "needs nats-server: just test-nats"]
async fn events_flow_through_a_nats_that_wants_a_token_and_tls() {
    let ca = shop_kit::tls::DevCa::new("test CA").expect("ca");
    let nats = NatsServer::start_secured(&ca);
    let ca_file = nats.store.path().join("ca.crt");
    let url = format!("tls://{TOKEN}@localhost:{}", nats.port);
    let shop = Shop::start_with(Options {
        nats: Some(shop_kit::events::NatsServer::new(&url).with_ca(Some(ca_file.clone()))),
        ..Options::default()
    })
    .await;
    let placed = shop.order(&shop.ada, "via-secured-nats").await;
    let id = placed["id"].as_str().expect("id");
    assert_eq!(
        shop.settled(&shop.ada, id).await["status"],
        "ORDER_STATUS_CONFIRMED"
    );
    // The history is fed by a JetStream consumer: the events got through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = shop.history(&shop.ada, 1, json!({})).await;
        if listed["orders"][0]["id"] == id {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in the history: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let secured = || {
        async_nats::ConnectOptions::new()
            .add_root_certificates(ca_file.clone())
            .require_tls(true)
    };
    let client = secured()
        .token(TOKEN.to_owned())
        .connect(format!("tls://localhost:{}", nats.port))
        .await
        .expect("the token and the CA");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("SHOP_EVENTS")
        .await
        .expect("stream");
    let config = &stream.info().await.expect("info").config;
    assert_eq!(config.max_bytes, 1024 * 1024 * 1024, "bounded in size");
    assert_eq!(
        config.max_age,
        Duration::from_secs(7 * 24 * 3600),
        "and age"
    );
    assert_eq!(
        config.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );

    let refused = secured()
        .connect(format!("tls://localhost:{}", nats.port))
        .await;
    assert!(refused.is_err(), "no token: refused");
    let untrusted = async_nats::ConnectOptions::new()
        .token(TOKEN.to_owned())
        .require_tls(true)
        .connect(format!("tls://localhost:{}", nats.port))
        .await;
    assert!(
        untrusted.is_err(),
        "a certificate of an unknown CA: refused"
    );
}
