//! TLS on real loopback connections: a listener served by the kit, clients
//! made with rustls and hyper (and the kit's own), certificates from a
//! `DevCa`.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{Router, routing::get};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use shop_kit::{HttpConfig, Shutdown, auth::CertifiedService, observe::metrics::Metrics, tls::*};

/// The services of the tests' deployment, as certificates name them.
fn services() -> ServiceNames {
    ServiceNames::new(
        "connect-shop",
        ["users", "catalog", "orders", "payments", "gateway"],
    )
}

/// A CA and a folder its files are written to.
struct Pki {
    dir: tempfile::TempDir,
    ca: DevCa,
}

impl Pki {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            ca: DevCa::new("test CA").expect("ca"),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn ca_file(&self) -> PathBuf {
        self.file("ca.pem", self.ca.cert_pem())
    }

    /// The server's certificate and key files (for localhost).
    fn server_files(&self, name: &str) -> (PathBuf, PathBuf) {
        let issued = self.ca.server("catalog", &[]).expect("server cert");
        (
            self.file(&format!("{name}.pem"), &issued.cert),
            self.file(&format!("{name}-key.pem"), &issued.key),
        )
    }

    fn flags(&self, client_ca: bool, require: bool) -> ServerTlsConfig {
        let (cert, key) = self.server_files("server");
        ServerTlsConfig {
            tls_cert: Some(cert),
            tls_key: Some(key),
            tls_client_ca: client_ca.then(|| self.ca_file()),
            tls_require_service_cert: require,
            tls_allow_plaintext: false,
            service_names: services(),
        }
    }
}

/// A listener whose `/who` says what [`CertifiedService`] made of the
/// caller, and `/ping` answers `pong`.
async fn serve(tls: ServerTlsConfig) -> SocketAddr {
    let who = |certified: Result<CertifiedService, connectrpc_axum::prelude::ConnectError>| async move {
        match certified {
            Ok(CertifiedService(Some(service))) => format!("service {service}"),
            Ok(CertifiedService(None)) => "no certificate".to_owned(),
            Err(error) => format!(
                "refused: {:?} {}",
                error.code(),
                error.message().unwrap_or("")
            ),
        }
    };
    let app = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/who", get(who));
    let http = HttpConfig {
        tls,
        header_read_timeout_secs: 2,
        ..HttpConfig::default()
    };
    shop_kit::rpc::start(
        "127.0.0.1:0".parse().expect("addr"),
        app,
        Shutdown::new(),
        &http,
    )
    .await
    .expect("start")
    .addr
}

/// A rustls client trusting `ca` (PEM), showing `identity` if given.
fn client(ca: &str, identity: Option<&IssuedPem>, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(issued.cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// GETs `path` over TLS with `config`; the answer's HTTP version and body,
/// or why it failed.
async fn fetch(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<(http::Version, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = http::Request::get(format!("https://localhost{path}"))
        .header(http::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let h2 = config.alpn_protocols.first().is_some_and(|p| p == b"h2");
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }
    .map_err(|e| format!("request: {e}"))?;
    let version = response.version();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        version,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[tokio::test]
async fn one_tls_port_serves_http2_and_http1_by_alpn() {
    let pki = Pki::new();
    let addr = serve(pki.flags(false, false)).await;
    let (version, body) = fetch(addr, client(pki.ca.cert_pem(), None, b"h2"), "/ping")
        .await
        .expect("h2");
    assert_eq!((version, body.as_str()), (http::Version::HTTP_2, "pong"));
    let (version, body) = fetch(addr, client(pki.ca.cert_pem(), None, b"http/1.1"), "/ping")
        .await
        .expect("http/1.1");
    assert_eq!((version, body.as_str()), (http::Version::HTTP_11, "pong"));
}

#[tokio::test]
async fn plain_text_to_a_tls_port_is_told_to_use_https_and_closed() {
    let pki = Pki::new();
    let addr = serve(pki.flags(false, false)).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer)
        .await
        .expect("read until closed");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("This port speaks TLS only"), "{answer}");
    // h2c prior knowledge gets the same and no HTTP/2.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let handshake = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await;
    if let Ok((mut sender, connection)) = handshake {
        tokio::spawn(connection);
        let request = http::Request::get("http://x/ping")
            .body(Empty::new())
            .expect("request");
        assert!(
            sender.send_request(request).await.is_err(),
            "h2c served on a TLS port"
        );
    }
}

#[tokio::test]
async fn plain_text_is_served_beside_tls_only_when_migrating() {
    let pki = Pki::new();
    let addr = serve(ServerTlsConfig {
        tls_allow_plaintext: true,
        ..pki.flags(false, false)
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("pong"),
        "{answer}"
    );
    let (_, body) = fetch(addr, client(pki.ca.cert_pem(), None, b"h2"), "/ping")
        .await
        .expect("tls too");
    assert_eq!(body, "pong");
}

#[tokio::test]
async fn client_certificates_say_which_service_calls() {
    let pki = Pki::new();
    let addr = serve(pki.flags(true, false)).await;
    let ca = pki.ca.cert_pem();
    let orders = pki.ca.client(&services(), "orders").expect("client cert");
    let who = |identity| fetch(addr, client(ca, identity, b"h2"), "/who");
    assert_eq!(who(Some(&orders)).await.expect("mTLS").1, "service orders");
    // Browsers and curl show none, and are served.
    assert_eq!(who(None).await.expect("no cert").1, "no certificate");
    // From the shop's CA, naming no shop service.
    let stranger = pki
        .ca
        .issue(
            "mallory",
            &[services().spiffe_id("mallory"), "mallory.example".into()],
            Usage::Client,
            30,
        )
        .expect("cert");
    let refused = who(Some(&stranger)).await.expect("served, then refused").1;
    assert!(
        refused.starts_with("refused: PermissionDenied")
            && refused.contains("URI:spiffe://connect-shop/mallory"),
        "{refused}"
    );
    // By DNS name, when there is no SPIFFE ID.
    let by_dns = pki
        .ca
        .issue(
            "payments",
            &["payments.connect-shop.svc".into()],
            Usage::Client,
            30,
        )
        .expect("cert");
    assert_eq!(who(Some(&by_dns)).await.expect("dns").1, "service payments");
}

#[tokio::test]
async fn certificates_from_another_ca_expired_or_for_servers_are_refused_at_the_handshake() {
    let pki = Pki::new();
    let addr = serve(pki.flags(true, false)).await;
    let ca = pki.ca.cert_pem();
    let other_ca = DevCa::new("another CA").expect("ca");
    let foreign = other_ca.client(&services(), "orders").expect("cert");
    let expired = pki
        .ca
        .issue(
            "orders",
            &[services().spiffe_id("orders")],
            Usage::Client,
            0,
        )
        .expect("cert");
    let server_only = pki.ca.server("orders", &[]).expect("cert");
    for (what, identity) in [
        ("another CA", &foreign),
        ("expired", &expired),
        ("a server certificate", &server_only),
    ] {
        let refused = fetch(addr, client(ca, Some(identity), b"h2"), "/who").await;
        assert!(refused.is_err(), "{what}: {refused:?}");
    }
}

#[tokio::test]
async fn internal_calls_need_a_service_certificate_where_required() {
    let pki = Pki::new();
    let addr = serve(pki.flags(true, true)).await;
    let ca = pki.ca.cert_pem();
    let refused = fetch(addr, client(ca, None, b"h2"), "/who")
        .await
        .expect("served")
        .1;
    assert!(refused.starts_with("refused: Unauthenticated"), "{refused}");
    let orders = pki.ca.client(&services(), "orders").expect("cert");
    let (_, body) = fetch(addr, client(ca, Some(&orders), b"h2"), "/who")
        .await
        .expect("mTLS");
    assert_eq!(body, "service orders");
}

#[tokio::test]
async fn bad_files_are_start_up_errors_naming_the_file() {
    let pki = Pki::new();
    let (cert, key) = pki.server_files("server");
    let (_, other_key) = pki.server_files("other");
    let missing = pki.dir.path().join("missing.pem");
    let empty = pki.file("empty.pem", "");
    let load = |cert: &PathBuf, key: &PathBuf| {
        ServerTlsConfig {
            tls_cert: Some(cert.clone()),
            tls_key: Some(key.clone()),
            ..ServerTlsConfig::default()
        }
        .load()
        .expect_err("refused")
        .to_string()
    };
    let mismatch = load(&cert, &other_key);
    assert!(
        mismatch.contains("does not match") && mismatch.contains("other-key.pem"),
        "{mismatch}"
    );
    let gone = load(&missing, &key);
    assert!(
        gone.contains("missing.pem") && gone.contains("cannot read"),
        "{gone}"
    );
    let no_cert = load(&empty, &key);
    assert!(
        no_cert.contains("empty.pem") && no_cert.contains("no certificate"),
        "{no_cert}"
    );
    let no_key = load(&cert, &cert);
    assert!(
        no_key.contains("server.pem") && no_key.contains("no private key"),
        "{no_key}"
    );
    // Key material never shows in a message.
    let key_text = std::fs::read_to_string(&key).expect("key");
    let body = key_text.lines().nth(1).expect("a line of key");
    for message in [mismatch, gone, no_cert, no_key] {
        assert!(!message.contains(body));
    }
    let lone = ServerTlsConfig {
        tls_client_ca: Some(cert),
        ..ServerTlsConfig::default()
    };
    assert_eq!(
        lone.load().expect_err("refused").to_string(),
        "--tls-client-ca needs --tls-cert and --tls-key"
    );
}

/// The serial number of the certificate a new connection to `addr` gets.
async fn served_certificate(addr: SocketAddr, ca: &str) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(client(ca, None, b"h2"))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certificates")[0].to_vec()
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_and_a_broken_one_is_not() {
    let pki = Pki::new();
    let flags = pki.flags(false, false);
    let (cert, key) = (
        flags.tls_cert.clone().expect("cert"),
        flags.tls_key.clone().expect("key"),
    );
    let addr = serve(flags).await;
    let ca = pki.ca.cert_pem();
    let before = served_certificate(addr, ca).await;
    // A connection in flight (HTTP/2) before the rotation...
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(client(ca, None, b"h2"))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2");
    tokio::spawn(connection);

    let renewed = pki.ca.server("catalog", &[]).expect("cert");
    std::fs::write(&key, &renewed.key).expect("key");
    std::fs::write(&cert, &renewed.cert).expect("cert");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let after = loop {
        let now = served_certificate(addr, ca).await;
        if now != before || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(after, before, "the renewed certificate was not served");
    // ...is unharmed.
    let request = http::Request::get("https://localhost/ping")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender
        .send_request(request)
        .await
        .expect("in-flight connection");
    assert_eq!(response.status(), http::StatusCode::OK);

    // A rotation to a broken file: the last good certificate stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    tokio::time::sleep(RELOAD_EVERY * 3).await;
    assert_eq!(served_certificate(addr, ca).await, after);
}

/// The expiry gauge of `file`, as the process's `/metrics` renders it.
fn expiry_gauge(metrics: &Metrics, file: &std::path::Path) -> Option<f64> {
    let label = format!("file=\"{}\"", file.display());
    metrics
        .render()
        .lines()
        .find(|line| line.starts_with(EXPIRY_METRIC) && line.contains(&label))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn the_served_certificates_expiry_is_a_metric_a_renewal_moves() {
    const DAY: f64 = 86_400.0;
    // Installed first, as a program does: the certificate's first load
    // sets the gauge.
    let metrics = Metrics::install();
    let pki = Pki::new();
    let expiring = pki
        .ca
        .issue(
            "catalog",
            &server_names("catalog", "connect-shop"),
            Usage::Server,
            20,
        )
        .expect("cert");
    let cert = pki.file("expiring.pem", &expiring.cert);
    let key = pki.file("expiring-key.pem", &expiring.key);
    let _addr = serve(ServerTlsConfig {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key.clone()),
        ..ServerTlsConfig::default()
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let first = expiry_gauge(&metrics, &cert).expect("the served certificate's expiry is a metric");
    let days_left = (first - now) / DAY;
    assert!((19.0..=21.0).contains(&days_left), "{days_left} days left");

    // Renewed on disk (as cert-manager or `shop certs` does): reloaded,
    // the gauge moves to the new certificate's expiry.
    let renewed = pki.ca.server("catalog", &[]).expect("cert");
    std::fs::write(&key, &renewed.key).expect("key");
    std::fs::write(&cert, &renewed.cert).expect("cert");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now_gauge = expiry_gauge(&metrics, &cert).expect("gauge");
        if now_gauge > first + 300.0 * DAY {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewal did not reach the metric: {now_gauge}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn identities_come_from_spiffe_ids_then_dns_names() {
    let ca = DevCa::new("test CA").expect("ca");
    let identity = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let issued = ca.issue("x", &names, Usage::Client, 30).expect("cert");
        ClientIdentity::of(
            &CertificateDer::from_pem_slice(issued.cert.as_bytes()).expect("der"),
            &services(),
        )
    };
    let service = |name: &str| ClientIdentity::Service(name.to_owned());
    assert_eq!(
        identity(&["spiffe://connect-shop/orders"]),
        service("orders")
    );
    assert_eq!(
        identity(&["orders", "spiffe://connect-shop/gateway"]),
        service("gateway")
    );
    assert_eq!(
        identity(&["users.connect-shop.svc.cluster.local"]),
        service("users")
    );
    assert!(matches!(
        identity(&["spiffe://elsewhere/orders"]),
        ClientIdentity::Unknown(_)
    ));
    assert!(matches!(
        identity(&["spiffe://connect-shop/admin"]),
        ClientIdentity::Unknown(_)
    ));
    assert!(matches!(
        identity(&["example.com"]),
        ClientIdentity::Unknown(_)
    ));
    assert!(matches!(identity(&[]), ClientIdentity::Unknown(_)));
}

#[tokio::test]
async fn the_kits_clients_call_over_mutual_tls_and_rotate_their_certificate() {
    use shop_kit::client::{Peer, PeerPolicy, PeerTarget};
    let pki = Pki::new();
    let http = HttpConfig {
        tls: pki.flags(true, true),
        ..HttpConfig::default()
    };
    let who = get(|CertifiedService(service): CertifiedService| async move {
        service.unwrap_or_default()
    });
    let shutdown = Shutdown::new();
    let app = shop_kit::RpcServer::new(http.clone(), shop_kit::Readiness::always())
        .http_route("/who", who)
        .into_router(&shutdown)
        .await
        .expect("router");
    let addr = shop_kit::rpc::start("127.0.0.1:0".parse().expect("addr"), app, shutdown, &http)
        .await
        .expect("start")
        .addr;
    let orders = pki.ca.client(&services(), "orders").expect("cert");
    let (cert, key) = (
        pki.file("orders-client.pem", &orders.cert),
        pki.file("orders-client-key.pem", &orders.key),
    );
    let tls = ClientTlsConfig {
        tls_ca: Some(pki.ca_file()),
        tls_client_cert: Some(cert.clone()),
        tls_client_key: Some(key.clone()),
    }
    .load()
    .expect("client tls");
    let target = PeerTarget::url(&format!("https://localhost:{}", addr.port()))
        .expect("url")
        .with_tls(tls);
    let policy = PeerPolicy {
        timeout: Duration::from_secs(5),
        ..PeerPolicy::default()
    };
    let ask = |peer: Peer| async move { peer.get("/who").await };
    let downstream = Peer::connect("peer", &target, policy.clone())
        .await
        .expect("connect");
    assert_eq!(ask(downstream).await.expect("mTLS call"), &b"orders"[..]);

    // The certificate renewed as another service: new connections show it.
    let gateway = pki.ca.client(&services(), "gateway").expect("cert");
    std::fs::write(&key, &gateway.key).expect("key");
    std::fs::write(&cert, &gateway.cert).expect("cert");
    // Read again within RELOAD_EVERY; asked until it shows, for as long as
    // a busy machine may take (not a fixed wait it could outlast).
    let deadline = tokio::time::Instant::now() + RELOAD_EVERY * 30;
    loop {
        let downstream = Peer::connect("peer", &target, policy.clone())
            .await
            .expect("connect");
        let who = ask(downstream).await.expect("mTLS call");
        if who == b"gateway"[..] {
            break;
        }
        assert_eq!(who, &b"orders"[..], "the old identity or the new one");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was never shown"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An https peer with no CA to check it by is never called.
    let untrusted = PeerTarget::url(&format!("https://localhost:{}", addr.port())).expect("url");
    let downstream = peer_within(&untrusted, Duration::from_millis(500)).await;
    assert!(ask(downstream).await.is_err());
}

/// The kit's client for `target`, each call given at most `timeout`.
async fn peer_within(
    target: &shop_kit::client::PeerTarget,
    timeout: Duration,
) -> shop_kit::client::Peer {
    use shop_kit::client::{Peer, PeerPolicy};
    Peer::connect(
        "peer",
        target,
        PeerPolicy {
            timeout,
            ..PeerPolicy::default()
        },
    )
    .await
    .expect("connect")
}

/// What the kit's client makes of a server with certificate `issued` when
/// it trusts the CA `trusted` and dials `https://localhost`: the answer to
/// `/ping`, or the status of the refusal.
async fn call_tls_server(issued: &IssuedPem, trusted: &str) -> Result<bytes::Bytes, tonic::Status> {
    use shop_kit::client::PeerTarget;
    let dir = tempfile::tempdir().expect("dir");
    let file = |file: &str, text: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write");
        path
    };
    // A server as a service runs one (its health answering the client's
    // watch), on its own TLS files.
    let http = HttpConfig {
        tls: ServerTlsConfig {
            tls_cert: Some(file("server.pem", &issued.cert)),
            tls_key: Some(file("server-key.pem", &issued.key)),
            ..ServerTlsConfig::default()
        },
        ..HttpConfig::default()
    };
    let shutdown = Shutdown::new();
    let app = shop_kit::RpcServer::new(http.clone(), shop_kit::Readiness::always())
        .http_route("/ping", get(|| async { "pong" }))
        .into_router(&shutdown)
        .await
        .expect("router");
    let addr = shop_kit::rpc::start("127.0.0.1:0".parse().expect("addr"), app, shutdown, &http)
        .await
        .expect("start")
        .addr;
    let tls = ClientTlsConfig {
        tls_ca: Some(file("trusted.pem", trusted)),
        tls_client_cert: None,
        tls_client_key: None,
    }
    .load()
    .expect("client tls");
    let target = PeerTarget::url(&format!("https://localhost:{}", addr.port()))
        .expect("url")
        .with_tls(tls);
    let peer = peer_within(&target, Duration::from_millis(800)).await;
    peer.get("/ping").await
}

/// No test server refuses these first: the client alone must.
#[tokio::test]
async fn the_kits_client_refuses_a_server_of_another_ca_or_for_another_name() {
    let ours = DevCa::new("our CA").expect("ca");
    let theirs = DevCa::new("their CA").expect("ca");
    // Our CA, localhost among its names: served.
    let catalog = ours.server("catalog", &[]).expect("cert");
    let served = call_tls_server(&catalog, ours.cert_pem()).await;
    assert_eq!(served.expect("the right server").as_ref(), b"pong");
    // The same names from a CA the client does not trust.
    let foreign = theirs.server("catalog", &[]).expect("cert");
    let refused = call_tls_server(&foreign, ours.cert_pem())
        .await
        .expect_err("another CA's certificate");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    // Our CA, but for another name than the one dialled (localhost).
    let elsewhere = ours
        .issue("orders", &["orders.test".to_owned()], Usage::Server, 30)
        .expect("cert");
    let wrong = call_tls_server(&elsewhere, ours.cert_pem())
        .await
        .expect_err("a certificate for orders.test, dialled as localhost");
    assert_eq!(wrong.code(), tonic::Code::Unavailable, "{wrong:?}");
}
