//! The whole shop on TLS, as a person runs it: `shop certs DIR`, then
//! `shop --tls-dir DIR`, called with curl (a real TLS client). Every
//! service serves its own certificate, they call each other over mutual
//! TLS (an order goes through the saga), and what is refused is refused
//! with a clear message.

mod command;
mod launched;

use std::{path::Path, process::Command, time::Duration};

use launched::Shop;
use serde_json::{Value, json};

fn shop(args: &[&str]) -> std::process::Output {
    command::shop(args, &[])
}

fn certs(dir: &Path) {
    let written = shop(&["certs", &dir.display().to_string()]);
    assert!(written.status.success(), "{written:?}");
}

/// A Connect JSON call with curl: the HTTP status and the body.
async fn call(shop: &Shop, extra: &[&str], url: &str, body: &Value) -> (u16, Value) {
    let output = shop
        .curl()
        .args(extra)
        .args([
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", &body.to_string(), url])
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let body = serde_json::from_str(body).unwrap_or_else(|_| {
        // No answer: what curl said, for the assertion's message.
        json!({"curl": output.status.code(), "stderr": String::from_utf8_lossy(&output.stderr)})
    });
    (status.parse().unwrap_or(0), body)
}

#[test]
fn certs_writes_a_ca_and_each_services_certificates_keys_private() {
    let dir = tempfile::tempdir().expect("dir");
    certs(dir.path());
    for &service in launched::SERVICES {
        for file in [
            format!("{service}.pem"),
            format!("{service}-key.pem"),
            format!("{service}-client.pem"),
            format!("{service}-client-key.pem"),
        ] {
            assert!(dir.path().join(&file).exists(), "{file}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(format!("{service}-key.pem")))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{service}'s key is private");
    }
    assert!(dir.path().join("ca.pem").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
        .expect("the CA's key is kept, to renew under the same CA")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the CA's key is private");
}

/// What openssl (a verifier that is not ours) says of `certificates`
/// against the CA in `dir`.
fn openssl_verify(dir: &Path, certificates: &[&str]) -> String {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-CAfile", "ca.pem"])
        .args(certificates)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn certs_run_again_renews_under_the_kept_ca_and_new_ca_replaces_it() {
    let dir = tempfile::tempdir().expect("dir");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
    certs(dir.path());
    let (ca, leaf) = (read("ca.pem"), read("catalog.pem"));

    let renewed = shop(&["certs", &dir.path().display().to_string()]);
    assert!(renewed.status.success(), "{renewed:?}");
    assert!(String::from_utf8_lossy(&renewed.stdout).contains("renewing under the CA kept"));
    assert_eq!(read("ca.pem"), ca, "the CA stays");
    assert_ne!(read("catalog.pem"), leaf, "the certificates are new");
    let said = openssl_verify(dir.path(), &["catalog.pem", "orders-client.pem"]);
    assert!(
        said.contains("catalog.pem: OK") && said.contains("orders-client.pem: OK"),
        "{said}"
    );

    let replaced = shop(&["certs", "--new-ca", &dir.path().display().to_string()]);
    assert!(replaced.status.success(), "{replaced:?}");
    assert_ne!(read("ca.pem"), ca, "--new-ca makes a new CA");

    // A CA without its key (as `shop certs` wrote before it kept the key)
    // cannot renew: the message says how to go on.
    std::fs::remove_file(dir.path().join("ca-key.pem")).expect("rm");
    let keyless = shop(&["certs", &dir.path().display().to_string()]);
    let said = String::from_utf8_lossy(&keyless.stderr);
    assert!(!keyless.status.success());
    assert!(
        said.contains("ca.pem") && said.contains("--new-ca"),
        "{said}"
    );
}

#[test]
fn tls_start_up_errors_name_the_file_or_the_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data").display().to_string();
    let missing = shop(&[
        "--data-dir",
        &data,
        "--tls-dir",
        &dir.path().display().to_string(),
    ]);
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        said.contains("no ca.pem there") && said.contains("shop certs"),
        "{said}"
    );

    certs(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let mismatched = shop(&[
        "serve",
        "catalog",
        "--data-dir",
        &data,
        "--tls-cert",
        &file("catalog.pem"),
        "--tls-key",
        &file("orders-key.pem"),
        "--tls-ca",
        &file("ca.pem"),
    ]);
    let said = String::from_utf8_lossy(&mismatched.stderr);
    assert!(!mismatched.status.success());
    assert!(
        said.contains("orders-key.pem") && said.contains("does not match"),
        "{said}"
    );
    let no_ca = shop(&[
        "serve",
        "catalog",
        "--data-dir",
        &data,
        "--tls-cert",
        &file("catalog.pem"),
        "--tls-key",
        &file("catalog-key.pem"),
    ]);
    let said = String::from_utf8_lossy(&no_ca.stderr);
    assert!(!no_ca.status.success());
    assert!(said.contains("give --tls-ca"), "{said}");
}

#[tokio::test]
async fn the_whole_shop_runs_on_mutual_tls_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().expect("dir");
    certs(dir.path());
    let secret = "tls-test-secret";
    let shop = Shop::whole_tls(dir.path(), &["--service-secret", secret]).await;
    let users = shop.url("users");
    let orders = shop.url("orders");

    // A customer signs up and orders over https; orders reserves stock,
    // charges and confirms over mutual TLS.
    let (status, signed_up) = call(
        &shop,
        &[],
        &format!("{users}/shop.users.v1.UserService/SignUp"),
        &json!({"email": "tls@example.com", "password": "correct horse 9", "displayName": "T"}),
    )
    .await;
    assert_eq!(status, 200, "{signed_up}");
    let token = signed_up["session"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    let (status, placed) = call(
        &shop,
        &["-H", &bearer],
        &format!("{orders}/shop.orders.v1.OrderService/CreateOrder"),
        &json!({"idempotencyKey": "tls-1", "paymentToken": "tok_visa",
                "items": [{"productId": "prod_mug", "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
    let id = placed["order"]["id"].as_str().expect("id").to_owned();
    let mut order = Value::Null;
    for _ in 0..100 {
        (_, order) = call(
            &shop,
            &["-H", &bearer],
            &format!("{orders}/shop.orders.v1.OrderService/GetOrder"),
            &json!({"orderId": id}),
        )
        .await;
        if order["order"]["status"] == "ORDER_STATUS_CONFIRMED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        order["order"]["status"], "ORDER_STATUS_CONFIRMED",
        "{order}"
    );

    // Plain text on a TLS port is told to use https.
    let plain = Command::new("curl")
        .args(["-s", &format!("http://{}/healthz", shop.addr("catalog"))])
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("This port speaks TLS only"),
        "{plain:?}"
    );

    // The service secret alone gets no service token...
    let issue = format!("{users}/shop.users.v1.ServiceTokenService/IssueServiceToken");
    let (status, refused) = call(
        &shop,
        &[],
        &issue,
        &json!({"serviceName": "orders", "serviceSecret": secret}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("unauthenticated")),
        "{refused}"
    );
    // ...orders' client certificate does, for orders only.
    let file = |name: &str| dir.path().join(name).display().to_string();
    let as_orders = [
        "--cert".to_owned(),
        file("orders-client.pem"),
        "--key".to_owned(),
        file("orders-client-key.pem"),
    ];
    let as_orders: Vec<&str> = as_orders.iter().map(String::as_str).collect();
    let (status, issued) = call(&shop, &as_orders, &issue, &json!({"serviceName": "orders"})).await;
    assert_eq!(status, 200, "{issued}");
    let (status, other) = call(
        &shop,
        &as_orders,
        &issue,
        &json!({"serviceName": "payments"}),
    )
    .await;
    assert_eq!(
        (status, other["code"].as_str()),
        (403, Some("permission_denied")),
        "{other}"
    );

    // An internal service: a customer's token, even over TLS, is not a
    // service's certificate.
    let stock = format!(
        "{}/shop.catalog.v1.StockService/ReserveStock",
        shop.url("catalog")
    );
    let (status, refused) = call(
        &shop,
        &["-H", &bearer],
        &stock,
        &json!({"orderId": "o-1", "items": [{"productId": "prod_mug", "quantity": 1}]}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("unauthenticated")),
        "{refused}"
    );

    // A client certificate from another CA is refused at the handshake.
    let other = tempfile::tempdir().expect("dir");
    certs(other.path());
    let foreign = shop
        .curl()
        .arg("--cert")
        .arg(other.path().join("orders-client.pem"))
        .arg("--key")
        .arg(other.path().join("orders-client-key.pem"))
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{users}/healthz"),
        ])
        .output()
        .await
        .expect("curl");
    assert!(!foreign.status.success(), "{foreign:?}");
}

/// `--metrics-port`, as the Kubernetes manifests run every service: the
/// metrics in plain HTTP on a port of their own (a scraper needs none of
/// the services' certificates), the served certificates' expiry among
/// them, and no `/metrics` left on the services' TLS ports, where a route
/// from the edge could reach it.
#[tokio::test]
async fn metrics_on_their_own_port_need_no_certificate_and_leave_the_services_ports() {
    let dir = tempfile::tempdir().expect("dir");
    certs(dir.path());
    let port = launched::free_port().to_string();
    let shop = Shop::whole_tls(dir.path(), &["--metrics-port", &port]).await;

    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("the metrics port answers plain HTTP")
        .text()
        .await
        .expect("text");
    for role in ["server", "client"] {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("shop_tls_certificate_expiry_timestamp_seconds{")
                    && l.contains(&format!("role=\"{role}\""))
            })
            .unwrap_or_else(|| panic!("no {role} certificate's expiry in:\n{text}"));
        let expires: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect(line);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let days = (expires - now) / 86_400.0;
        assert!((390.0..=400.0).contains(&days), "{line}: {days} days");
    }

    for &service in launched::SERVICES {
        let output = shop
            .curl()
            .args(["-w", "\n%{http_code}"])
            .arg(format!("{}/metrics", shop.url(service)))
            .output()
            .await
            .expect("curl");
        let answer = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = answer.rsplit_once('\n').expect("status");
        assert!(
            status != "200" && !body.contains("# TYPE"),
            "{service}'s own port still serves /metrics: {status} {body}"
        );
    }
}

/// Services apart on mutual TLS, orders started before its catalog and
/// payments: it says it is not ready, and why, until each peer has an
/// endpoint that serves; and the calls sent at the very moment it says it
/// is ready are all placed (none refused because the first health check
/// of a peer was not done, as a new replica's first calls were in a
/// rolling restart).
#[tokio::test]
async fn orders_is_ready_only_once_its_peers_serve_and_takes_calls_from_that_instant() {
    let dir = tempfile::tempdir().expect("dir");
    certs(dir.path());
    let secret = ["--service-secret", "ready-test-secret"];
    let users =
        Shop::serve_tls_answering("users", dir.path(), launched::free_port(), &secret).await;
    let users_url = users.url("users");
    let (catalog_port, payments_port) = (launched::free_port(), launched::free_port());
    let catalog_url = format!("https://localhost:{catalog_port}");
    let payments_url = format!("https://localhost:{payments_port}");
    let orders = Shop::serve_tls_answering(
        "orders",
        dir.path(),
        launched::free_port(),
        &[
            secret[0],
            secret[1],
            "--users-url",
            &users_url,
            "--catalog-url",
            &catalog_url,
            "--payments-url",
            &payments_url,
        ],
    )
    .await;
    let (status, said) = orders.readyz("orders").await;
    assert_eq!(status, 503, "orders is ready with no catalog: {said}");
    assert!(said.contains("no catalog endpoint serves yet"), "{said}");

    let (status, signed_up) = call(
        &users,
        &[],
        &format!("{users_url}/shop.users.v1.UserService/SignUp"),
        &json!({"email": "first@example.com", "password": "correct horse 9", "displayName": "F"}),
    )
    .await;
    assert_eq!(status, 200, "{signed_up}");
    let bearer = format!(
        "Authorization: Bearer {}",
        signed_up["session"]["accessToken"].as_str().expect("token")
    );

    let with_users = ["--users-url", users_url.as_str()];
    let _catalog =
        Shop::serve_tls_answering("catalog", dir.path(), catalog_port, &with_users).await;
    let _payments =
        Shop::serve_tls_answering("payments", dir.path(), payments_port, &with_users).await;
    let mut waited = 0;
    while orders.readyz("orders").await.0 != 200 {
        waited += 1;
        assert!(waited < 500, "orders never got ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let create = format!(
        "{}/shop.orders.v1.OrderService/CreateOrder",
        orders.url("orders")
    );
    let placed = futures::future::join_all((0..8).map(|n| {
        let body = json!({"idempotencyKey": format!("first-{n}"), "paymentToken": "tok_visa",
                          "items": [{"productId": "prod_mug", "quantity": 1}]});
        let (orders, bearer, create) = (&orders, &bearer, &create);
        async move { call(orders, &["-H", bearer], create, &body).await }
    }))
    .await;
    for (status, body) in placed {
        assert_eq!(status, 200, "a call at the instant of readiness: {body}");
    }
}
