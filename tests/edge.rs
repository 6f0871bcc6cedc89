//! The shop behind a real edge: Debian's nginx and HAProxy in front, as a
//! Gateway, an ingress or a load balancer would be (`just edge`, which
//! installs them; these tests are `#[ignore]`d in the README's command,
//! which needs no proxy on the machine).
//!
//! - Per-address rules see the client, not the proxy: behind nginx one
//!   client's sign-in lock-out leaves another's alone, the gateway limits
//!   each client on its own, and the log names the client. A client that
//!   forges its address every way it can (`Forwarded`, `X-Forwarded-For`,
//!   both, several lines, bad bytes, IPv6, `unknown`), through nginx and
//!   through HAProxy, for each header an edge may write, is limited on its
//!   own address every time; so is a caller that is no trusted proxy.
//!   Without `--trusted-proxies`, the same run locks everyone out.
//! - Streams outlive the proxy's idle timeout: WatchStock through nginx
//!   with a 35 s read timeout, over Connect, gRPC and REST's events, still
//!   delivers a stock change after 45 s of quiet; with heartbeats slower
//!   than the timeout the Connect and REST streams are cut.

mod launched;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use launched::{Shop, free_port};
use serde_json::{Value, json};
use shop_proto::shop::catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient};

/// nginx, started on its own prefix, stopped when dropped.
struct Nginx {
    child: Child,
    _prefix: tempfile::TempDir,
    log: PathBuf,
}

/// One server block: where nginx listens and what it passes to.
struct Route {
    listen: u16,
    upstream: SocketAddr,
    /// gRPC over HTTP/2 (h2c) rather than HTTP/1.1.
    grpc: bool,
    /// More of nginx's directives for the location (the headers it sets).
    set: &'static str,
}

impl Nginx {
    /// nginx with `routes`, each with a 35 s read timeout, adding the
    /// client's address to `X-Forwarded-For` as the nginx docs show.
    fn start(routes: &[Route]) -> Self {
        let prefix = tempfile::tempdir().expect("prefix");
        let log = prefix.path().join("error.log");
        let mut servers = String::new();
        for route in routes {
            let upstream = route.upstream;
            let set = route.set;
            let server = if route.grpc {
                format!(
                    "server {{ listen 127.0.0.1:{} http2; location / {{ \
                     grpc_pass grpc://{upstream}; grpc_read_timeout 35s; \
                     grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for; {set} }} }}\n",
                    route.listen
                )
            } else {
                format!(
                    "server {{ listen 127.0.0.1:{}; location / {{ \
                     proxy_pass http://{upstream}; proxy_http_version 1.1; \
                     proxy_buffering off; proxy_read_timeout 35s; \
                     proxy_set_header Connection \"\"; \
                     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; {set} }} }}\n",
                    route.listen
                )
            };
            servers.push_str(&server);
        }
        let dir = prefix.path().display();
        let config = format!(
            "daemon off; master_process off; worker_processes 1; pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;\n\
             map $http_forwarded $proxy_add_forwarded {{ \"\" \"for=$remote_addr\"; \
             default \"$http_forwarded, for=$remote_addr\"; }}\n\
             fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;\n\
             {servers}}}\n"
        );
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let child = Command::new(nginx())
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx (just edge installs it)");
        let nginx = Self {
            child,
            _prefix: prefix,
            log,
        };
        for route in routes {
            wait_listening(route.listen);
        }
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx binary: `NGINX`, else the one on the PATH or Debian's.
fn nginx() -> PathBuf {
    if let Some(path) = std::env::var_os("NGINX") {
        return path.into();
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nginx is not listening on {port}");
}

/// An HTTP/1.1 client whose connections come from `from` (any address of
/// 127.0.0.0/8 is this machine's).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("address"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn log_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> (u16, Value) {
    let response = client
        .post(format!("{base}/shop.users.v1.UserService/LogIn"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("LogIn");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Customer A fails to sign in until its address is throttled; customer B
/// then signs in through the same proxy: whether B is refused.
async fn b_refused_after_a_is_throttled(edge: &str) -> bool {
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.3");
    let mut refused = false;
    for _ in 0..5 {
        let (status, _) = log_in(&a, edge, "ada@example.com", "wrong password 1").await;
        refused = status == 429;
        if refused {
            break;
        }
    }
    assert!(refused, "A is throttled after its burst of 4");
    let (status, answer) = log_in(&b, edge, "bea@example.com", "correct horse 9").await;
    match status {
        200 => false,
        429 => {
            assert_eq!(answer["code"], "resource_exhausted", "{answer}");
            true
        }
        other => panic!("B's sign-in: {other} {answer}"),
    }
}

async fn users_behind_nginx(args: &[&str]) -> (Shop, Nginx, String) {
    let mut all = vec!["--sign-in-ip-burst", "4", "--sign-in-ip-per-minute", "1"];
    all.extend_from_slice(args);
    let users = Shop::serve("users", &all).await;
    let (status, answer) = users
        .call(
            "users",
            "/shop.users.v1.UserService/SignUp",
            &json!({"email": "bea@example.com", "password": "correct horse 9", "displayName": "Bea"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let listen = free_port();
    let nginx = Nginx::start(&[Route {
        listen,
        upstream: users.addr("users"),
        grpc: false,
        set: "",
    }]);
    (users, nginx, format!("http://127.0.0.1:{listen}"))
}

/// HAProxy (Debian's), in front of one upstream, started in the
/// foreground, stopped when dropped: it adds a line of `X-Forwarded-For`
/// (`option forwardfor`) and sets `X-Real-IP` and
/// `X-Envoy-External-Address` to the address it saw, replacing the
/// client's, as an Envoy edge sets the latter.
struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(listen: u16, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let config = format!(
            "global\n  maxconn 256\n\
             defaults\n  mode http\n  timeout connect 5s\n  timeout client 35s\n  timeout server 35s\n\
             frontend edge\n  bind 127.0.0.1:{listen}\n  option forwardfor\n\
             \x20 http-request set-header X-Real-IP %[src]\n\
             \x20 http-request set-header X-Envoy-External-Address %[src]\n\
             \x20 default_backend shop\n\
             backend shop\n  server shop {upstream}\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let haproxy = std::env::var_os("HAPROXY").map_or_else(
            || {
                ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|path| path.exists())
                    .unwrap_or_else(|| PathBuf::from("haproxy"))
            },
            PathBuf::from,
        );
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy (just edge installs it)");
        wait_listening(listen);
        Self { child, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forged header a client may send: its name and its value for the
/// `n`-th attempt (a new address each time).
type Forgery = fn(u8) -> Vec<(&'static str, Vec<u8>)>;

/// Every way a client can send a forged address, each a new one per try.
const FORGERIES: [(&str, Forgery); 9] = [
    ("Forwarded", |n| {
        vec![("forwarded", format!("for=198.51.100.{n}").into())]
    }),
    ("X-Forwarded-For", |n| {
        vec![("x-forwarded-for", format!("198.51.100.{n}").into())]
    }),
    ("both", |n| {
        vec![
            ("forwarded", format!("for=203.0.113.{n}").into()),
            ("x-forwarded-for", format!("198.51.100.{n}").into()),
        ]
    }),
    ("several lines", |n| {
        vec![
            ("x-forwarded-for", format!("198.51.100.{n}").into()),
            (
                "x-forwarded-for",
                format!("203.0.113.{n}, 192.0.2.{n}").into(),
            ),
            ("forwarded", format!("for=198.51.100.{n}").into()),
            ("forwarded", format!("for=203.0.113.{n}").into()),
        ]
    }),
    ("bad bytes", |n| {
        vec![
            (
                "x-forwarded-for",
                [
                    &b"\xff, "[..],
                    format!("198.51.100.{n}").as_bytes(),
                    b"\x80",
                ]
                .concat(),
            ),
            (
                "forwarded",
                [&b"for=\"\xfe"[..], format!("{n}").as_bytes()].concat(),
            ),
        ]
    }),
    ("IPv6", |n| {
        vec![
            ("x-forwarded-for", format!("2001:db8::{n}").into()),
            ("forwarded", format!("for=\"[2001:db8::{n}]:443\"").into()),
        ]
    }),
    ("unknown", |_| {
        vec![
            ("forwarded", b"for=unknown".to_vec()),
            ("x-forwarded-for", b"unknown".to_vec()),
        ]
    }),
    ("X-Real-IP", |n| {
        vec![("x-real-ip", format!("198.51.100.{n}").into())]
    }),
    ("X-Envoy-External-Address", |n| {
        vec![("x-envoy-external-address", format!("198.51.100.{n}").into())]
    }),
];

/// The statuses of five failed sign-ins from `from` through `edge`, each
/// with a new forged address (and a new email, so only the address's
/// throttle can refuse): with a burst of 4, the last is refused.
async fn forged_sign_ins(edge: &str, from: u8, forgery: Forgery) -> Vec<u16> {
    let client = client_from(&format!("127.0.0.{from}"));
    let mut statuses = Vec::new();
    for n in 1..=5 {
        let mut request = client
            .post(format!("{edge}/shop.users.v1.UserService/LogIn"))
            .json(&json!({"email": format!("nobody-{from}-{n}@example.com"), "password": "wrong password 1"}));
        for (name, value) in forgery(n) {
            request = request.header(
                name,
                reqwest::header::HeaderValue::from_bytes(&value).expect("a header value"),
            );
        }
        statuses.push(request.send().await.expect("LogIn").status().as_u16());
    }
    statuses
}

#[tokio::test]
#[ignore = "needs nginx and haproxy: just edge"]
async fn a_client_forging_its_address_through_nginx_or_haproxy_is_limited_on_its_own() {
    // Each header an edge may write, with both edges set up to write it;
    // the client's forgeries of every header, the one read among them.
    let mut next_client = 10u8;
    for (header, nginx_sets) in [
        ("x-forwarded-for", ""),
        (
            "forwarded",
            "proxy_set_header Forwarded $proxy_add_forwarded;",
        ),
        ("x-real-ip", "proxy_set_header X-Real-IP $remote_addr;"),
        (
            "x-envoy-external-address",
            "proxy_set_header X-Envoy-External-Address $remote_addr;",
        ),
    ] {
        let users = Shop::serve(
            "users",
            &[
                "--sign-in-ip-burst",
                "4",
                "--sign-in-ip-per-minute",
                "1",
                "--trusted-proxies",
                "127.0.0.1",
                "--client-address-header",
                header,
            ],
        )
        .await;
        let (nginx_port, haproxy_port) = (free_port(), free_port());
        let _nginx = Nginx::start(&[Route {
            listen: nginx_port,
            upstream: users.addr("users"),
            grpc: false,
            set: nginx_sets,
        }]);
        // HAProxy appends X-Forwarded-For and sets the single-value headers;
        // it writes no Forwarded (2.6 cannot).
        let _haproxy =
            (header != "forwarded").then(|| Haproxy::start(haproxy_port, users.addr("users")));
        let mut edges = vec![("nginx", nginx_port)];
        if header != "forwarded" {
            edges.push(("haproxy", haproxy_port));
        }
        for (edge, port) in edges {
            for (forged, forgery) in FORGERIES {
                next_client += 1;
                let from = next_client;
                let statuses =
                    forged_sign_ins(&format!("http://127.0.0.1:{port}"), from, forgery).await;
                assert_eq!(
                    statuses,
                    [401, 401, 401, 401, 429],
                    "{header} through {edge}, forging {forged}: the client (127.0.0.{from}) is limited on its own address"
                );
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs nginx: just edge"]
async fn behind_nginx_one_clients_sign_in_throttle_leaves_anothers_alone() {
    let (users, _nginx, edge) = users_behind_nginx(&["--trusted-proxies", "127.0.0.1"]).await;
    assert!(
        !b_refused_after_a_is_throttled(&edge).await,
        "B was locked out by A's attempts"
    );

    // A caller that is no trusted proxy forges the header in vain: each
    // attempt names another client, all are counted against its own address.
    let forger = client_from("127.0.0.4");
    let direct = users.url("users");
    let mut statuses = Vec::new();
    for n in 0..5 {
        let response = forger
            .post(format!("{direct}/shop.users.v1.UserService/LogIn"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .header("forwarded", format!("for=203.0.113.{n}"))
            .json(&json!({"email": "ada@example.com", "password": "wrong password 1"}))
            .send()
            .await
            .expect("LogIn");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
#[ignore = "needs nginx: just edge"]
async fn without_trusted_proxies_the_edge_is_everyones_address() {
    // The check above fails without the setting: nginx's address is the
    // only one the service sees, so A's attempts lock B out.
    let (_users, _nginx, edge) = users_behind_nginx(&[]).await;
    assert!(b_refused_after_a_is_throttled(&edge).await);
}

#[tokio::test]
#[ignore = "needs nginx: just edge"]
async fn behind_nginx_the_gateway_limits_each_client_and_logs_who_called() {
    let shop = Shop::whole_logged(
        &[
            "--trusted-proxies",
            "127.0.0.1",
            "--rate-limit-ip-burst",
            "5",
            "--rate-limit-ip-per-second",
            "1",
            "--log-rpcs",
        ],
        &[],
    )
    .await;
    let listen = free_port();
    let _nginx = Nginx::start(&[Route {
        listen,
        upstream: shop.addr("gateway"),
        grpc: false,
        set: "",
    }]);
    // Each of A's calls forges another address, in both headers: in vain.
    let home = async |client: &reqwest::Client, forged: u8| {
        client
            .post(format!(
                "http://127.0.0.1:{listen}/shop.bff.v1.MobileBffService/GetHome"
            ))
            .header("forwarded", format!("for=198.51.100.{forged}"))
            .header("x-forwarded-for", format!("203.0.113.{forged}"))
            .json(&json!({}))
            .send()
            .await
            .expect("GetHome")
            .status()
            .as_u16()
    };
    let a = client_from("127.0.0.2");
    let mut a_statuses = Vec::new();
    for forged in 0..8 {
        a_statuses.push(home(&a, forged).await);
    }
    assert_eq!(
        a_statuses.last(),
        Some(&429),
        "A over its burst: {a_statuses:?}"
    );
    assert_eq!(
        home(&client_from("127.0.0.3"), 100).await,
        200,
        "B has its own limit"
    );
    let log = shop.stop_for_log();
    assert!(
        log.contains("client_address=127.0.0.2") && log.contains("client_address=127.0.0.3"),
        "the log names the clients, not nginx: {}",
        log.lines()
            .filter(|line| line.contains("GetHome"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A stream through the edge, read in the background: when it ended and how,
/// and whether the change it waits for came.
#[derive(Debug)]
struct Watched {
    ended_after: Option<Duration>,
    saw_change: bool,
    heartbeats: usize,
}

/// Reads Connect JSON envelopes of WatchStock until a stock level other
/// than `initial`, or the end.
async fn watch_connect(url: String, initial: i64) -> Watched {
    let started = Instant::now();
    let mut body = Vec::new();
    let payload = br#"{"productIds":["prod_mug"]}"#;
    body.push(0);
    body.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
    body.extend_from_slice(payload);
    let response = reqwest::Client::new()
        .post(format!("{url}/shop.catalog.v1.CatalogService/WatchStock"))
        .header("content-type", "application/connect+json")
        .header("connect-protocol-version", "1")
        .body(body)
        .send()
        .await
        .expect("WatchStock");
    assert_eq!(response.status(), 200);
    let mut chunks = response.bytes_stream();
    let mut pending = Vec::new();
    let mut watched = Watched {
        ended_after: None,
        saw_change: false,
        heartbeats: 0,
    };
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk);
        while pending.len() >= 5 {
            let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
            if pending.len() < 5 + len {
                break;
            }
            let message: Value = serde_json::from_slice(&pending[5..5 + len]).unwrap_or_default();
            pending.drain(..5 + len);
            if message.get("heartbeat").is_some() {
                watched.heartbeats += 1;
            } else if message["stockOnHand"]
                .as_i64()
                .is_some_and(|n| n != initial)
            {
                watched.saw_change = true;
                return watched;
            }
        }
    }
    watched.ended_after = Some(started.elapsed());
    watched
}

async fn watch_events(url: String, initial: i64) -> Watched {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(format!("{url}/v1/stock:watch?productIds=prod_mug"))
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status(), 200);
    let mut chunks = response.bytes_stream();
    let mut text = String::new();
    let mut watched = Watched {
        ended_after: None,
        saw_change: false,
        heartbeats: 0,
    };
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some((event, rest)) = text.split_once("\n\n") {
            if event == ": heartbeat" {
                watched.heartbeats += 1;
            } else if let Some(data) = event.strip_prefix("data: ") {
                let message: Value = serde_json::from_str(data).unwrap_or_default();
                if message["stockOnHand"]
                    .as_i64()
                    .is_some_and(|n| n != initial)
                {
                    watched.saw_change = true;
                    return watched;
                }
            }
            text = rest.to_owned();
        }
    }
    watched.ended_after = Some(started.elapsed());
    watched
}

async fn watch_grpc(url: String, initial: i32) -> Watched {
    let started = Instant::now();
    let channel = tonic::transport::Channel::from_shared(url)
        .expect("uri")
        .connect()
        .await
        .expect("connect to nginx");
    let mut stream = CatalogServiceClient::new(channel)
        .watch_stock(pb::WatchStockRequest {
            product_ids: vec!["prod_mug".into()],
        })
        .await
        .expect("WatchStock")
        .into_inner();
    let mut watched = Watched {
        ended_after: None,
        saw_change: false,
        heartbeats: 0,
    };
    while let Ok(Some(message)) = stream.message().await {
        if message.heartbeat.is_some() {
            watched.heartbeats += 1;
        } else if message.stock_on_hand != initial {
            watched.saw_change = true;
            return watched;
        }
    }
    watched.ended_after = Some(started.elapsed());
    watched
}

/// What a watch saw, once it has ended (cut, or the change seen); `None`
/// if it is still open and waiting.
async fn within(watch: tokio::task::JoinHandle<Watched>) -> Option<Watched> {
    let ended = tokio::time::timeout(Duration::from_secs(20), watch)
        .await
        .ok()?;
    Some(ended.expect("the watch task"))
}

/// The stock of the demo mug now.
async fn mug_stock(shop: &Shop) -> i64 {
    let (status, answer) = shop
        .call(
            "catalog",
            "/shop.catalog.v1.CatalogService/GetProduct",
            &json!({"id": "prod_mug"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["product"]["stockOnHand"].as_i64().expect("stock")
}

#[tokio::test]
#[ignore = "needs nginx: just edge"]
async fn streams_outlive_a_35_s_proxy_read_timeout_and_without_heartbeats_are_cut() {
    // The default heartbeat (30 s), and a shop whose heartbeats come too
    // late for the proxy (60 s): the control that shows the timeout bites.
    let beating = Shop::whole(&[]).await;
    let late = Shop::whole(&["--stream-heartbeat-secs", "60"]).await;
    let routes = [
        (beating.addr("catalog"), false),
        (beating.addr("catalog"), true),
        (late.addr("catalog"), false),
    ]
    .map(|(upstream, grpc)| Route {
        listen: free_port(),
        upstream,
        grpc,
        set: "",
    });
    let nginx = Nginx::start(&routes);
    let url = |n: usize| format!("http://127.0.0.1:{}", routes[n].listen);
    let initial = mug_stock(&beating).await;
    let stock = i32::try_from(initial).expect("stock");
    let late_stock = mug_stock(&late).await;
    let watches = (
        tokio::spawn(watch_connect(url(0), initial)),
        tokio::spawn(watch_events(url(0), initial)),
        tokio::spawn(watch_grpc(url(1), stock)),
        tokio::spawn(watch_connect(url(2), late_stock)),
        tokio::spawn(watch_events(url(2), late_stock)),
    );
    // Quiet past the proxy's 35 s, then a change: an order takes a mug.
    tokio::time::sleep(Duration::from_secs(45)).await;
    let token = beating.signed_up("edge@example.com").await;
    let (status, placed) = shop_kit::testing::call_json(
        &format!(
            "{}/shop.orders.v1.OrderService/CreateOrder",
            beating.url("orders")
        ),
        Some(&token),
        &json!({"idempotencyKey": "edge-1", "paymentToken": "tok_visa",
                "items": [{"productId": "prod_mug", "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
    for (protocol, watched) in [
        ("Connect", within(watches.0).await),
        ("REST events", within(watches.1).await),
        ("gRPC", within(watches.2).await),
    ] {
        assert!(
            watched
                .as_ref()
                .is_some_and(|w| w.saw_change && w.heartbeats >= 1),
            "{protocol} through nginx: {watched:?}\n{}",
            nginx.error_log()
        );
    }
    // (No gRPC control here. The kit's server sends no HTTP/2 pings now
    // (the kernel's TCP probes find dead peers), so nothing but a stream's
    // heartbeats keeps a quiet gRPC stream through nginx either.)
    for (protocol, watched) in [
        ("Connect", within(watches.3).await),
        ("REST events", within(watches.4).await),
    ] {
        assert!(
            watched.as_ref().is_some_and(|w| !w.saw_change
                && w.ended_after.is_some_and(|cut| {
                    cut >= Duration::from_secs(30) && cut < Duration::from_secs(45)
                })),
            "{protocol} without timely heartbeats is cut by the proxy: {watched:?}"
        );
    }
    assert!(
        nginx.error_log().contains("timed out"),
        "nginx says why it cut them: {}",
        nginx.error_log()
    );
}
