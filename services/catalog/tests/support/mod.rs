//! A catalog on an ephemeral loopback port with its own SQLite file, and the
//! wire helpers the protocol tests share.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use bytes::{Buf, Bytes, BytesMut};
use shop_catalog::{
    Catalog,
    domain::{Money, NewProduct},
};
use shop_kit::{HttpConfig, Shutdown, app::Launch, auth::TokenKeys};

pub const SERVICE: &str = "shop.catalog.v1.CatalogService";
/// The internal service of the saga's stock moves, on the same port.
pub const STOCK_SERVICE: &str = "shop.catalog.v1.StockService";
const STOCK_METHODS: [&str; 3] = ["ReserveStock", "ReleaseStock", "CommitStock"];

pub struct TestCatalog {
    pub addr: SocketAddr,
    /// A valid access token for customer "u1".
    pub token: String,
    /// A valid access token for the orders service.
    pub service_token: String,
    /// Another of the shop's services, which the contract does not let
    /// move stock.
    pub payments_token: String,
    pub catalog: Catalog,
    pub shutdown: Shutdown,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    _database: shop_kit::testing::TestDatabase,
}

impl TestCatalog {
    /// A catalog with three products: `p1` (stock 5), `p2` (stock 2), `p3`
    /// (stock 0), served on all protocols.
    pub async fn start() -> Self {
        Self::start_with(HttpConfig::default()).await
    }

    pub async fn start_with(http: HttpConfig) -> Self {
        let database = shop_kit::testing::TestDatabase::new("catalog").await;
        let (kid, der) = shop_users::tokens::TokenIssuer::generate_key().expect("key");
        let issuer = shop_users::tokens::TokenIssuer::from_pkcs8(kid, &der).expect("issuer");
        let shutdown = Shutdown::new();
        let running = Launch::new(shop_catalog::Config {
            database_url: database.url.as_str().into(),
            demo_data: false,
            demo_stock: None,
            nats: None,
            token_keys: TokenKeys::Given(issuer.verifier().expect("verifier")),
        })
        .http(HttpConfig {
            shutdown_grace_secs: 5,
            ..http
        })
        .shutdown(shutdown.clone())
        .start()
        .await
        .expect("catalog");
        let catalog = running.handle;
        for (id, sku, name, cents, stock) in [
            ("p1", "CUP-001", "Blue cup", 1200, 5),
            ("p2", "CUP-002", "Red cup", 1300, 2),
            ("p3", "POT-001", "Coffee pot", 4500, 0),
        ] {
            let price = Money::new("EUR", cents).expect("price");
            let product =
                NewProduct::new(id, sku, name, "A test product", price, stock).expect("product");
            catalog.add_product(product).await.expect("insert");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let token = issuer.access_token("u1", now).expect("token");
        let service_token = issuer.access_token("service:orders", now).expect("token");
        let payments_token = issuer.access_token("service:payments", now).expect("token");
        Self {
            addr: running.addr,
            token,
            service_token,
            payments_token,
            catalog,
            shutdown,
            server: running.task,
            _database: database,
        }
    }

    /// The URL of `method`, of CatalogService or, for the stock moves,
    /// StockService.
    pub fn url(&self, method: &str) -> String {
        let service = if STOCK_METHODS.contains(&method) {
            STOCK_SERVICE
        } else {
            SERVICE
        };
        format!("http://{}/{service}/{method}", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// An HTTP/1.1 client (reqwest speaks HTTP/1.1 to http:// URLs).
pub fn http1() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// One message in the 5-byte-prefixed envelope of Connect streaming, gRPC
/// and gRPC-Web.
pub fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(payload.len() + 5);
    framed.push(flags);
    framed.extend_from_slice(&u32::try_from(payload.len()).expect("length").to_be_bytes());
    framed.extend_from_slice(payload);
    framed
}

/// Splits complete envelopes off a growing buffer.
#[derive(Default)]
pub struct Envelopes(BytesMut);

impl Envelopes {
    pub fn push(&mut self, chunk: &[u8]) {
        self.0.extend_from_slice(chunk);
    }

    pub fn next(&mut self) -> Option<(u8, Bytes)> {
        if self.0.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.0[1], self.0[2], self.0[3], self.0[4]]) as usize;
        if self.0.len() < 5 + len {
            return None;
        }
        let flags = self.0[0];
        self.0.advance(5);
        Some((flags, self.0.split_to(len).freeze()))
    }
}

/// Reads envelopes from a streaming response, one at a time.
pub struct EnvelopeStream {
    response: reqwest::Response,
    buffer: Envelopes,
}

impl EnvelopeStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Envelopes::default(),
        }
    }

    /// The next envelope, or None when the body ends; panics after 10 s.
    pub async fn next(&mut self) -> Option<(u8, Bytes)> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(envelope) = self.buffer.next() {
                    return Some(envelope);
                }
                match self.response.chunk().await.expect("read body") {
                    Some(chunk) => self.buffer.push(&chunk),
                    None => return None,
                }
            }
        })
        .await
        .expect("no envelope within 10 s")
    }
}

/// The `grpc-status` inside a gRPC-Web trailers frame.
pub fn grpc_web_status(trailers: &[u8]) -> Option<String> {
    String::from_utf8_lossy(trailers)
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("grpc-status"))
        .map(|(_, value)| value.trim().to_owned())
}

/// A bare gRPC call over h2c with hyper, so nothing on the client side
/// enforces deadlines: what the test sees is what the server did.
pub struct RawGrpc {
    body: hyper::body::Incoming,
    pub status: u16,
    pub headers: http::HeaderMap,
    buffer: Envelopes,
}

impl RawGrpc {
    pub async fn call(
        addr: SocketAddr,
        path: &str,
        message: &[u8],
        headers: &[(&str, &str)],
    ) -> Self {
        Self::call_raw(addr, path, envelope(0, message), headers).await
    }

    /// Sends `body` as it is (any number of envelopes).
    pub async fn call_raw(
        addr: SocketAddr,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http::<http_body_util::Full<Bytes>>();
        let mut request =
            http::Request::post(format!("http://{addr}{path}")).header("te", "trailers");
        if !headers.iter().any(|(name, _)| *name == "content-type") {
            request = request.header("content-type", "application/grpc");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(Bytes::from(body)))
            .expect("request");
        let response = client.request(request).await.expect("h2 call");
        let (parts, body) = response.into_parts();
        Self {
            body,
            status: parts.status.as_u16(),
            headers: parts.headers,
            buffer: Envelopes::default(),
        }
    }

    /// The next message, or the trailers once the messages are done.
    pub async fn next(&mut self) -> Result<Bytes, http::HeaderMap> {
        use http_body_util::BodyExt;
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some((_, message)) = self.buffer.next() {
                    return Ok(message);
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => self.buffer.push(&data),
                        Err(frame) => return Err(frame.into_trailers().unwrap_or_default()),
                    },
                    Some(Err(error)) => panic!("body error: {error}"),
                    None => return Err(self.headers.clone()),
                }
            }
        })
        .await
        .expect("nothing within 10 s")
    }
}
