//! What an outsider can do to the launched shop, and what holds: memory
//! under a log-in burst, slow clients, made-up paths in /metrics, echoed
//! input, file modes, where the demo account exists, the web app's headers.
//! Each runs the real `shop` binary as a child process on loopback.

mod launched;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use launched::Shop;
use serde_json::json;

const LOG_IN: &str = "/shop.users.v1.UserService/LogIn";

#[tokio::test]
async fn a_log_in_burst_stays_within_the_hashing_budget_and_memory_comes_back() {
    // The per-IP limit is raised and admission control is off (it would
    // refuse log-ins queueing for the hashing budget): this test is about
    // memory, not throttling. A budget of 40 MiB is two hashes at once
    // whatever the cores, and the memory two slots keep.
    let shop = Shop::serve(
        "users",
        &[
            "--sign-in-ip-burst",
            "1000",
            "--password-hashing-wait-ms",
            "60000",
            "--password-hashing-mib",
            "40",
            "--max-calls-in-flight",
            "0",
        ],
    )
    .await;
    // Settle: one log-in first, so the runtime's threads exist.
    shop.call(
        "users",
        LOG_IN,
        &json!({"email": "x@example.com", "password": "nope"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = shop.rss_mib();
    let url = format!("{}{LOG_IN}", shop.url("users"));
    let burst = (0..64).map(|i| {
        let url = url.clone();
        async move {
            let body =
                json!({"email": format!("nobody{i}@example.com"), "password": "wrong password 1"});
            shop_kit::testing::call_json(&url, None, &body).await
        }
    });
    let sampling = async {
        let mut peak = 0f64;
        for _ in 0..400 {
            peak = peak.max(shop.rss_mib());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        peak
    };
    let (answers, peak) = tokio::join!(futures::future::join_all(burst), sampling);
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{body}"
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = shop.rss_mib();
    eprintln!(
        "users RSS: {before:.1} MiB before, {peak:.1} MiB peak during 64 log-ins, {after:.1} MiB 10 s after"
    );
    // Before, one slot's memory is kept (the settling log-in's); the
    // second slot's is kept after the burst, and nothing more.
    assert!(
        peak - before < 40.0 + 16.0,
        "peak {peak:.1} MiB from {before:.1}"
    );
    assert!(
        after - before < 19.0 + 13.0,
        "memory not given back: {after:.1} MiB from {before:.1}"
    );
}

/// Seconds until the server closes a connection that sends `request` and
/// then one more header line every second.
fn seconds_until_closed(addr: std::net::SocketAddr) -> f64 {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(900)))
        .expect("timeout");
    let started = Instant::now();
    tcp.write_all(b"POST /shop.users.v1.UserService/LogIn HTTP/1.1\r\nHost: shop\r\n")
        .expect("write");
    let mut buf = [0u8; 512];
    for line in 0..60 {
        if tcp
            .write_all(format!("X-Trickle-{line}: {line}\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {} // an error answer, then the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    started.elapsed().as_secs_f64()
}

#[tokio::test]
async fn a_client_trickling_headers_is_closed_within_the_header_timeout() {
    let shop = Shop::serve("users", &[]).await;
    let addr = shop.addr("users");
    let closed_after = tokio::task::spawn_blocking(move || seconds_until_closed(addr))
        .await
        .expect("trickle");
    eprintln!("trickling client closed after {closed_after:.1} s");
    assert!(
        (9.0..13.0).contains(&closed_after),
        "closed after {closed_after:.1} s (header timeout 10 s)"
    );
    assert!(shop.alive("users").await);
}

#[tokio::test]
async fn made_up_paths_add_no_metric_series() {
    let shop = Shop::serve("users", &[]).await;
    let metrics_size = || async {
        reqwest::get(format!("{}/metrics", shop.url("users")))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let client = reqwest::Client::new();
    // One first, so the "unknown" series exists.
    client
        .post(format!("{}/x.Svc/Method", shop.url("users")))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send");
    let before = metrics_size().await.len();
    for i in 0..300 {
        client
            .post(format!("{}/made.up{i}.Svc/Method{i}", shop.url("users")))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("send");
    }
    let after = metrics_size().await;
    eprintln!(
        "/metrics: {before} bytes, {} after 300 made-up paths",
        after.len()
    );
    assert!(!after.contains("made.up"), "a made-up name became a label");
    assert!(after.contains(r#"service="unknown""#));
    assert!(after.len() < before + 2048, "{} -> {}", before, after.len());
}

#[tokio::test]
async fn echoed_input_is_bounded() {
    let shop = Shop::serve("users", &[]).await;
    let client = reqwest::Client::new();
    let url = format!("{}{LOG_IN}", shop.url("users"));
    let send = |id: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-request-id", id)
            .body(r#"{"email":"a@example.com","password":"x"}"#)
            .send()
    };
    let long = send("r".repeat(4 * 1024)).await.expect("send");
    let echoed = long.headers()["x-request-id"].to_str().expect("id");
    assert!(
        echoed.len() <= 64 && !echoed.starts_with("rrrr"),
        "{echoed}"
    );
    // 100 KiB of id: refused as too large a head (431), or replaced; never
    // echoed (hyper's head limit is its read buffer, which a reused
    // connection may have grown).
    let huge = send("r".repeat(100 * 1024)).await.expect("send");
    let echoed = huge.headers().get("x-request-id").map_or(0, |id| id.len());
    assert!(echoed <= 64, "{} echoed {echoed} bytes", huge.status());
    let kept = send("order-7.retry_2".to_owned()).await.expect("send");
    assert_eq!(kept.headers()["x-request-id"], "order-7.retry_2");

    // A 1 MiB email: refused at once, quoted briefly.
    let huge = format!("{}@example.com", "a".repeat(1 << 20));
    let (status, error) = shop
        .call(
            "users",
            "/shop.users.v1.UserService/SignUp",
            &json!({"email": huge, "password": "a password 1", "displayName": "Ada"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    let message = error["message"].as_str().expect("message");
    assert!(message.len() <= 200, "{} bytes: {message}", message.len());

    // Control characters in an email or a name are refused.
    for (email, name) in [
        ("a\u{0}b@example.com", "Ada"),
        ("ada@example.com", "A\u{0}da"),
    ] {
        let (status, error) = shop
            .call(
                "users",
                "/shop.users.v1.UserService/SignUp",
                &json!({"email": email, "password": "a password 1", "displayName": name}),
            )
            .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_argument")),
            "{error}"
        );
    }
}

const DEMO: (&str, &str) = ("demo@connect-shop.dev", "demo-password-1");

async fn demo_log_in(shop: &Shop) -> u16 {
    shop.call(
        "users",
        LOG_IN,
        &json!({"email": DEMO.0, "password": DEMO.1}),
    )
    .await
    .0
}

#[tokio::test]
async fn the_whole_shop_on_loopback_keeps_its_files_private_and_its_pages_safe() {
    use std::os::unix::fs::PermissionsExt;
    let shop = Shop::whole(&[]).await;
    let mode = |path: std::path::PathBuf| {
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let data = shop.data.path().join("data");
    assert_eq!(mode(data.clone()), 0o700, "the data folder");
    for service in ["users", "catalog", "orders", "payments"] {
        assert_eq!(
            mode(data.join(format!("{service}.db"))),
            0o600,
            "{service}.db"
        );
    }
    // The demo account exists here, and only here by default.
    assert_eq!(demo_log_in(&shop).await, 200);

    let page = reqwest::get(format!("{}/", shop.url("gateway")))
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for service in ["users", "catalog", "orders"] {
        assert!(
            csp.contains(&shop.url(service)),
            "{service} missing from {csp}"
        );
    }
    assert!(
        !csp.contains(&shop.url("payments")),
        "the app never calls payments: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");

    // A decoder error quoting a caller's 100 kB is cut short too.
    let (status, error) = shop
        .call(
            "catalog",
            "/shop.catalog.v1.CatalogService/ListProducts",
            &json!({"query": 5, "pageToken": {"x": "z".repeat(100_000)}}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().map_or(0, str::len) <= 300,
        "{error}"
    );
}

#[tokio::test]
async fn the_demo_account_only_where_it_is_safe() {
    let alone = Shop::serve("users", &[]).await;
    assert_eq!(
        demo_log_in(&alone).await,
        401,
        "shop serve users seeds no demo account"
    );
    drop(alone);
    let asked = Shop::serve("users", &["--demo-account"]).await;
    assert_eq!(demo_log_in(&asked).await, 200, "--demo-account asks for it");
    drop(asked);
    let exposed = Shop::whole(&["--host", "0.0.0.0"]).await;
    assert_eq!(
        demo_log_in(&exposed).await,
        401,
        "a shop others can reach has no demo account"
    );
}

#[tokio::test]
async fn the_signing_key_can_come_from_a_file() {
    let (_, der) = shop_users::tokens::TokenIssuer::generate_key().expect("key");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("signing-key.der");
    std::fs::write(&file, &der).expect("write");
    let kid = shop_users::tokens::key_id(&der).expect("kid");
    let file_arg = file.display().to_string();
    let shop = Shop::serve("users", &["--signing-key-file", &file_arg]).await;
    let jwks: serde_json::Value =
        reqwest::get(format!("{}/.well-known/jwks.json", shop.url("users")))
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str(), "{jwks}");
}

#[tokio::test]
async fn with_every_port_moved_the_gateways_origin_may_call_every_service() {
    let shop = Shop::whole(&[]).await;
    let gateway_origin = shop.url("gateway");
    let client = reqwest::Client::new();
    let preflight = |service: &str, origin: &str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!(
                    "{}/shop.catalog.v1.CatalogService/ListProducts",
                    shop.url(service)
                ),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,connect-protocol-version",
            )
            .send()
    };
    for &service in launched::SERVICES {
        let allowed = preflight(service, &gateway_origin)
            .await
            .expect("preflight");
        assert_eq!(
            allowed
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(gateway_origin.as_str()),
            "{service} refuses the gateway's origin"
        );
        let elsewhere = preflight(service, "http://evil.example")
            .await
            .expect("preflight");
        assert!(
            elsewhere
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{service} allows any origin"
        );
    }
}

#[tokio::test]
async fn no_browser_may_call_an_internal_service_not_even_from_the_shops_own_origin() {
    let shop = Shop::whole(&[]).await;
    let gateway_origin = shop.url("gateway");
    let client = reqwest::Client::new();
    for (service, path) in [
        ("catalog", "/shop.catalog.v1.StockService/ReserveStock"),
        (
            "users",
            "/shop.users.v1.ServiceTokenService/IssueServiceToken",
        ),
        (
            "payments",
            "/shop.payments.v1.OrderPaymentService/RefundOrder",
        ),
    ] {
        let url = format!("{}{path}", shop.url(service));
        let preflight = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", &gateway_origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
            .await
            .expect("preflight");
        assert_eq!(preflight.status(), 403, "{path}");
        assert!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path} allowed a browser"
        );
        // A request that skips the preflight is refused the same way.
        let call = client
            .post(&url)
            .header("origin", &gateway_origin)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("call");
        assert_eq!(call.status(), 403, "{path}");
        // Without a browser's Origin the service is there, for services.
        let (status, body) = shop_kit::testing::call_json(&url, None, &json!({})).await;
        assert_ne!(status, 403, "{path}: {body}");
        assert_ne!(status, 404, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_service_secret_rotates_without_a_window() {
    // As the manifests give them (docs/tls.md): the Secret's two values in
    // SHOP_SERVICE_SECRET and SHOP_SERVICE_SECRET_PREVIOUS. Callers on
    // either side of the rotation get their service tokens; a guess does not.
    let users = Shop::serve_logged(
        "users",
        &[],
        &[
            ("SHOP_SERVICE_SECRET", "the new service secret"),
            ("SHOP_SERVICE_SECRET_PREVIOUS", "the old service secret"),
        ],
    )
    .await;
    let issue = async |secret: &str| {
        users
            .call(
                "users",
                "/shop.users.v1.ServiceTokenService/IssueServiceToken",
                &json!({"serviceName": "orders", "serviceSecret": secret}),
            )
            .await
    };
    for secret in ["the new service secret", "the old service secret"] {
        let (status, answer) = issue(secret).await;
        assert_eq!(status, 200, "{secret}: {answer}");
    }
    let (status, answer) = issue("a guess").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let log = users.stop_for_log();
    assert!(!log.contains("the old service secret"), "never printed");
}
