//! The malformed-request catalogue: what an outsider sends to the launched
//! shop, on every protocol and service, and the exact code each gets back.
//! After every request the service must still answer its liveness probe.
//! Each line is one case: a name, the service, how it is sent, and the
//! code. Connect codes are checked in the JSON error (and the HTTP status
//! where the spec fixes one); gRPC and gRPC-Web codes in `grpc-status`.

mod launched;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use launched::Shop;
use shop_kit::rpc::envelope::Next;

/// How one request goes out.
enum Send {
    /// Connect over HTTP/1.1 (reqwest): method, path, headers, body.
    Connect(&'static str, String, Vec<(&'static str, String)>, Vec<u8>),
    /// gRPC over h2c: path, extra headers, body (envelopes).
    Grpc(String, Vec<(&'static str, String)>, Vec<u8>),
    /// gRPC-Web over HTTP/1.1: path, content type, body.
    GrpcWeb(String, &'static str, Vec<u8>),
    /// Raw bytes on a fresh TCP connection (HTTP/1.1 framing attacks).
    Raw(Vec<u8>),
}

/// What must come back.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A Connect error: HTTP status and code.
    Connect(u16, String),
    /// A gRPC status number.
    Grpc(u32),
    /// A plain HTTP status (framing refused before any RPC protocol).
    Http(u16),
}

fn connect(status: u16, code: &str) -> Answer {
    Answer::Connect(status, code.to_owned())
}

struct Case {
    name: &'static str,
    service: &'static str,
    send: Send,
    expect: Answer,
}

fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    shop_kit::rpc::envelope::frame(flags, payload, &mut framed);
    framed
}

/// The payload of the first envelope whose flags have `flag`.
fn flagged_payload(mut body: &[u8], flag: u8) -> Option<&[u8]> {
    while let Next::Whole(found, rest) = shop_kit::rpc::envelope::next(body) {
        if found.flags & flag != 0 {
            return Some(found.payload);
        }
        body = rest;
    }
    None
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::{Compression, write::GzEncoder};
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".into())]
}

fn with(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    headers.push((name, value.to_owned()));
    headers
}

const CATALOG: &str = "/shop.catalog.v1.CatalogService";
const STOCK: &str = "/shop.catalog.v1.StockService";
const USERS: &str = "/shop.users.v1.UserService";
const ORDERS: &str = "/shop.orders.v1.OrderService";
const PAYMENTS: &str = "/shop.payments.v1.PaymentService";
const ORDER_PAYMENTS: &str = "/shop.payments.v1.OrderPaymentService";
const WEB_BFF: &str = "/shop.bff.v1.WebBffService";
const HEALTH: &str = "/grpc.health.v1.Health";

fn post(path: String, headers: Vec<(&'static str, String)>, body: &[u8]) -> Send {
    Send::Connect("POST", path, headers, body.to_vec())
}

fn get(path: String) -> Send {
    Send::Connect("GET", path, vec![], vec![])
}

fn grpc(path: String, body: Vec<u8>) -> Send {
    Send::Grpc(path, vec![], body)
}

fn catalogue(customer_token: &str) -> Vec<Case> {
    let bearer = format!("Bearer {customer_token}");
    let ten_mib_zeros = gzip(&vec![0u8; 10 * 1024 * 1024]);
    let five_mib = vec![b' '; 5 * 1024 * 1024];
    let list = || format!("{CATALOG}/ListProducts");
    let get_product = || format!("{CATALOG}/GetProduct");
    let watch_stock = || format!("{CATALOG}/WatchStock");
    let stream_headers = || vec![("content-type", "application/connect+json".to_owned())];
    let raw = |text: &str| Send::Raw(text.as_bytes().to_vec());
    let huge_header = format!(
        "POST {CATALOG}/ListProducts HTTP/1.1\r\nHost: shop\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(200 * 1024)
    );
    vec![
        // Connect, unary, bad bodies.
        Case {
            name: "bad JSON",
            service: "catalog",
            send: post(list(), json_headers(), b"{"),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "wrong type",
            service: "catalog",
            send: post(list(), json_headers(), br#"{"pageSize":"many"}"#),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "array instead of object",
            service: "catalog",
            send: post(get_product(), json_headers(), b"[]"),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "two JSON objects",
            service: "catalog",
            send: post(list(), json_headers(), b"{}{}"),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "number for a string",
            service: "users",
            send: post(format!("{USERS}/SignUp"), json_headers(), br#"{"email":5}"#),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "invalid UTF-8 in JSON",
            service: "users",
            send: post(
                format!("{USERS}/LogIn"),
                json_headers(),
                b"{\"email\":\"\xff\xfe\"}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "bad proto bytes",
            service: "catalog",
            send: post(
                get_product(),
                vec![("content-type", "application/proto".into())],
                &[0xff, 0xff, 0xff, 0xff],
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "bad JSON to the gateway",
            service: "gateway",
            send: post(
                format!("{WEB_BFF}/GetHome"),
                json_headers(),
                b"{\"featuredCount\":",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "bad JSON to payments",
            service: "payments",
            send: post(format!("{PAYMENTS}/Charge"), json_headers(), b"nope"),
            expect: connect(401, "unauthenticated"),
        },
        // Connect, content types and methods.
        Case {
            name: "text/plain",
            service: "catalog",
            send: post(list(), vec![("content-type", "text/plain".into())], b"{}"),
            expect: Answer::Http(415),
        },
        Case {
            name: "no content type",
            service: "catalog",
            send: post(list(), vec![], b"{}"),
            expect: Answer::Http(415),
        },
        Case {
            name: "application/xml",
            service: "orders",
            send: post(
                format!("{ORDERS}/ListOrders"),
                vec![("content-type", "application/xml".into())],
                b"<a/>",
            ),
            expect: Answer::Http(415),
        },
        Case {
            name: "PUT on an RPC",
            service: "catalog",
            send: Send::Connect("PUT", list(), json_headers(), b"{}".to_vec()),
            expect: Answer::Http(405),
        },
        Case {
            name: "DELETE on an RPC",
            service: "users",
            send: Send::Connect("DELETE", format!("{USERS}/GetMe"), json_headers(), vec![]),
            expect: Answer::Http(405),
        },
        Case {
            name: "GET on a method with side effects",
            service: "orders",
            send: get(format!(
                "{ORDERS}/CreateOrder?connect=v1&encoding=json&message=%7B%7D"
            )),
            expect: Answer::Http(405),
        },
        Case {
            // A service it serves: refused by the server, with the code.
            name: "unknown method",
            service: "catalog",
            send: post(format!("{CATALOG}/Nope"), json_headers(), b"{}"),
            expect: connect(404, "unimplemented"),
        },
        Case {
            name: "unknown service",
            service: "payments",
            send: post("/shop.nope.v1.Nope/Nope".into(), json_headers(), b"{}"),
            expect: Answer::Http(404),
        },
        Case {
            name: "Connect protocol version 2",
            service: "catalog",
            send: post(
                list(),
                with(json_headers(), "connect-protocol-version", "2"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        // Connect, timeouts.
        Case {
            name: "timeout not a number",
            service: "catalog",
            send: post(
                list(),
                with(json_headers(), "connect-timeout-ms", "abc"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "negative timeout",
            service: "users",
            send: post(
                format!("{USERS}/GetPublicKeys"),
                with(json_headers(), "connect-timeout-ms", "-5"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "timeout of 11 digits",
            service: "orders",
            send: post(
                format!("{ORDERS}/ListOrders"),
                with(json_headers(), "connect-timeout-ms", "12345678901"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            // No time left: the deadline's passing, not "the catalog is
            // unavailable" (which sent clients to retry a healthy service).
            name: "an order with no time left",
            service: "orders",
            send: post(
                format!("{ORDERS}/CreateOrder"),
                with(
                    with(json_headers(), "connect-timeout-ms", "0"),
                    "authorization",
                    &format!("Bearer {customer_token}"),
                ),
                br#"{"items": [{"productId": "prod_mug", "quantity": 1}], "paymentToken": "tok_visa", "idempotencyKey": "no-time-left"}"#,
            ),
            expect: connect(504, "deadline_exceeded"),
        },
        Case {
            name: "an order of a product not in the catalog",
            service: "orders",
            send: post(
                format!("{ORDERS}/CreateOrder"),
                with(
                    json_headers(),
                    "authorization",
                    &format!("Bearer {customer_token}"),
                ),
                br#"{"items": [{"productId": "prod_nope", "quantity": 1}], "paymentToken": "tok_visa", "idempotencyKey": "nope"}"#,
            ),
            expect: connect(404, "not_found"),
        },
        Case {
            name: "bridged health, bad timeout",
            service: "catalog",
            send: post(
                format!("{HEALTH}/Check"),
                with(json_headers(), "connect-timeout-ms", "abc"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "bridged health, bad JSON",
            service: "users",
            send: post(format!("{HEALTH}/Check"), json_headers(), b"{"),
            expect: connect(400, "invalid_argument"),
        },
        // Connect, compression and size.
        Case {
            name: "unknown content encoding",
            service: "catalog",
            send: post(
                list(),
                with(json_headers(), "content-encoding", "br"),
                b"{}",
            ),
            expect: connect(501, "unimplemented"),
        },
        Case {
            name: "gzip header, plain body",
            service: "catalog",
            send: post(
                list(),
                with(json_headers(), "content-encoding", "gzip"),
                b"{}",
            ),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "gzip bomb (10 MiB of zeros)",
            service: "catalog",
            send: post(
                list(),
                with(json_headers(), "content-encoding", "gzip"),
                &ten_mib_zeros,
            ),
            expect: connect(429, "resource_exhausted"),
        },
        Case {
            name: "5 MiB body",
            service: "users",
            send: post(format!("{USERS}/LogIn"), json_headers(), &five_mib),
            expect: connect(429, "resource_exhausted"),
        },
        // Connect GET.
        Case {
            name: "GET without message",
            service: "catalog",
            send: get(format!("{CATALOG}/GetProduct?connect=v1&encoding=json")),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "GET bad base64",
            service: "catalog",
            send: get(format!(
                "{CATALOG}/GetProduct?connect=v1&encoding=proto&base64=1&message=%%%%"
            )),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "GET unknown encoding",
            service: "catalog",
            send: get(format!(
                "{CATALOG}/GetProduct?connect=v1&encoding=xml&message=x"
            )),
            expect: Answer::Http(415),
        },
        Case {
            name: "GET unknown compression",
            service: "catalog",
            send: get(format!(
                "{CATALOG}/GetProduct?connect=v1&encoding=json&compression=br&message=x"
            )),
            expect: connect(501, "unimplemented"),
        },
        Case {
            name: "GET message not JSON",
            service: "catalog",
            send: get(format!(
                "{CATALOG}/GetProduct?connect=v1&encoding=json&message=nope"
            )),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "GET connect=v2",
            service: "users",
            send: get(format!(
                "{USERS}/GetPublicKeys?connect=v2&encoding=json&message=%7B%7D"
            )),
            expect: connect(400, "invalid_argument"),
        },
        Case {
            name: "GET gzip flag, plain message",
            service: "catalog",
            send: get(format!(
                "{CATALOG}/ListProducts?connect=v1&encoding=json&compression=gzip&message=%7B%7D"
            )),
            expect: connect(400, "invalid_argument"),
        },
        // Connect streaming envelopes.
        Case {
            name: "stream: envelope longer than the body",
            service: "catalog",
            send: post(watch_stock(), stream_headers(), &{
                let mut e = envelope(0, b"{}");
                e[4] = 100;
                e
            }),
            expect: connect(200, "invalid_argument"),
        },
        Case {
            name: "stream: compressed flag, no encoding",
            service: "catalog",
            send: post(watch_stock(), stream_headers(), &envelope(1, b"{}")),
            expect: connect(200, "internal"),
        },
        Case {
            name: "stream: 4 GiB length, 1 byte sent",
            service: "catalog",
            send: post(
                watch_stock(),
                stream_headers(),
                &[0, 0xff, 0xff, 0xff, 0xff, b'{'],
            ),
            expect: connect(200, "invalid_argument"),
        },
        Case {
            name: "stream: bad JSON inside",
            service: "catalog",
            send: post(watch_stock(), stream_headers(), &envelope(0, b"{")),
            expect: connect(200, "invalid_argument"),
        },
        Case {
            name: "stream: half an envelope header",
            service: "catalog",
            send: post(watch_stock(), stream_headers(), &[0, 0, 0]),
            expect: connect(200, "invalid_argument"),
        },
        // Tokens, on Connect.
        Case {
            name: "no token",
            service: "orders",
            send: post(format!("{ORDERS}/ListOrders"), json_headers(), b"{}"),
            expect: connect(401, "unauthenticated"),
        },
        Case {
            name: "garbage token",
            service: "orders",
            send: post(
                format!("{ORDERS}/ListOrders"),
                with(json_headers(), "authorization", "Bearer garbage"),
                b"{}",
            ),
            expect: connect(401, "unauthenticated"),
        },
        Case {
            name: "alg none token",
            service: "payments",
            send: post(
                format!("{PAYMENTS}/GetPayment"),
                with(
                    json_headers(),
                    "authorization",
                    "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiJ9.",
                ),
                br#"{"paymentId":"x"}"#,
            ),
            expect: connect(401, "unauthenticated"),
        },
        Case {
            name: "Basic auth",
            service: "users",
            send: post(
                format!("{USERS}/GetMe"),
                with(json_headers(), "authorization", "Basic YTpi"),
                b"{}",
            ),
            expect: connect(401, "unauthenticated"),
        },
        Case {
            name: "customer token reserves stock",
            service: "catalog",
            send: post(
                format!("{STOCK}/ReserveStock"),
                with(json_headers(), "authorization", &bearer),
                br#"{"reservationId":"r1","items":[{"productId":"prod_mug","quantity":1}]}"#,
            ),
            expect: connect(403, "permission_denied"),
        },
        // gRPC (h2c).
        Case {
            name: "grpc: truncated envelope",
            service: "catalog",
            send: grpc(get_product(), {
                let mut e = envelope(0, b"\x0a\x01x");
                e[4] = 50;
                e
            }),
            expect: Answer::Grpc(13),
        },
        Case {
            name: "grpc: compressed flag, no encoding",
            service: "catalog",
            send: grpc(get_product(), envelope(1, b"\x0a\x01x")),
            expect: Answer::Grpc(13),
        },
        Case {
            name: "grpc: unsupported encoding",
            service: "catalog",
            send: Send::Grpc(
                get_product(),
                vec![("grpc-encoding", "br".into())],
                envelope(1, b"x"),
            ),
            expect: Answer::Grpc(12),
        },
        Case {
            name: "grpc: bad protobuf",
            service: "catalog",
            send: grpc(get_product(), envelope(0, &[0xff, 0xff, 0xff])),
            expect: Answer::Grpc(13),
        },
        Case {
            name: "grpc: 5 MiB message",
            service: "users",
            send: grpc(format!("{USERS}/LogIn"), envelope(0, &five_mib)),
            expect: Answer::Grpc(8),
        },
        Case {
            name: "grpc: gzip bomb",
            service: "catalog",
            send: Send::Grpc(
                list(),
                vec![("grpc-encoding", "gzip".into())],
                envelope(1, &ten_mib_zeros),
            ),
            expect: Answer::Grpc(8),
        },
        Case {
            name: "grpc: unknown method",
            service: "orders",
            send: grpc(format!("{ORDERS}/Nope"), envelope(0, b"")),
            expect: Answer::Grpc(12),
        },
        Case {
            name: "grpc: unknown service",
            service: "payments",
            send: grpc("/shop.nope.v1.Nope/Nope".into(), envelope(0, b"")),
            expect: Answer::Grpc(12),
        },
        Case {
            name: "grpc: no token",
            service: "orders",
            send: grpc(format!("{ORDERS}/ListOrders"), envelope(0, b"")),
            expect: Answer::Grpc(16),
        },
        Case {
            name: "grpc: garbage token",
            service: "payments",
            send: Send::Grpc(
                format!("{PAYMENTS}/GetPayment"),
                vec![("authorization", "Bearer x.y.z".into())],
                envelope(0, b""),
            ),
            expect: Answer::Grpc(16),
        },
        Case {
            name: "grpc: customer token refunds an order's charge",
            service: "payments",
            send: Send::Grpc(
                format!("{ORDER_PAYMENTS}/RefundOrder"),
                vec![("authorization", bearer.clone())],
                envelope(0, b"\x0a\x02p1"),
            ),
            expect: Answer::Grpc(7),
        },
        Case {
            name: "grpc: customer token commits stock",
            service: "catalog",
            send: Send::Grpc(
                format!("{STOCK}/CommitStock"),
                vec![("authorization", bearer.clone())],
                envelope(0, b"\x0a\x02r1"),
            ),
            expect: Answer::Grpc(7),
        },
        Case {
            name: "grpc: bad timeout",
            service: "catalog",
            send: Send::Grpc(
                list(),
                vec![("grpc-timeout", "abc".into())],
                envelope(0, b""),
            ),
            expect: Answer::Grpc(0),
        },
        Case {
            name: "grpc: two messages to a unary method",
            service: "catalog",
            send: grpc(list(), [envelope(0, b""), envelope(0, b"")].concat()),
            expect: Answer::Grpc(12),
        },
        Case {
            name: "grpc+json: bad JSON",
            service: "catalog",
            send: Send::Grpc(
                list(),
                vec![("content-type", "application/grpc+json".into())],
                envelope(0, b"{"),
            ),
            expect: Answer::Grpc(3),
        },
        Case {
            name: "grpc+xml: unknown codec",
            service: "catalog",
            send: Send::Grpc(
                list(),
                vec![("content-type", "application/grpc+xml".into())],
                envelope(0, b"<a/>"),
            ),
            // The gRPC spec: a content type the server does not serve is HTTP 415.
            expect: Answer::Http(415),
        },
        Case {
            name: "gRPC of proto, but a GET",
            service: "catalog",
            send: Send::Connect(
                "GET",
                list(),
                vec![("content-type", "application/grpc+proto".into())],
                vec![],
            ),
            // gRPC is POST only (the spec; connect-go answers 405 too).
            expect: Answer::Http(405),
        },
        // gRPC-Web (HTTP/1.1).
        Case {
            name: "grpc-web: truncated envelope",
            service: "catalog",
            send: Send::GrpcWeb(get_product(), "application/grpc-web+proto", {
                let mut e = envelope(0, b"\x0a\x01x");
                e[4] = 50;
                e
            }),
            expect: Answer::Grpc(13),
        },
        Case {
            name: "grpc-web-text: bad base64",
            service: "catalog",
            send: Send::GrpcWeb(
                get_product(),
                "application/grpc-web-text",
                b"!!!not base64!!!".to_vec(),
            ),
            expect: Answer::Grpc(13),
        },
        Case {
            name: "grpc-web: unknown method",
            service: "users",
            send: Send::GrpcWeb(
                format!("{USERS}/Nope"),
                "application/grpc-web+proto",
                envelope(0, b""),
            ),
            expect: Answer::Grpc(12),
        },
        Case {
            name: "grpc-web: 5 MiB message",
            service: "catalog",
            send: Send::GrpcWeb(list(), "application/grpc-web+proto", envelope(0, &five_mib)),
            expect: Answer::Grpc(8),
        },
        Case {
            name: "grpc-web: no token",
            service: "orders",
            send: Send::GrpcWeb(
                format!("{ORDERS}/ListOrders"),
                "application/grpc-web+proto",
                envelope(0, b""),
            ),
            expect: Answer::Grpc(16),
        },
        // HTTP/1.1 framing: refused before any RPC protocol.
        // Transfer-Encoding wins over Content-Length (RFC 9112 6.1): one request, no desync.
        Case {
            name: "smuggling: Content-Length and chunked",
            service: "catalog",
            send: raw(&format!(
                "POST {CATALOG}/ListProducts HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
            )),
            expect: Answer::Http(200),
        },
        Case {
            name: "smuggling: two Content-Lengths",
            service: "users",
            send: raw(&format!(
                "POST {USERS}/LogIn HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}"
            )),
            expect: Answer::Http(400),
        },
        Case {
            name: "smuggling: bad chunk size",
            service: "catalog",
            send: raw(&format!(
                "POST {CATALOG}/ListProducts HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
            )),
            // The body fails mid-read: the caller's fault, invalid_argument (400).
            expect: Answer::Http(400),
        },
        Case {
            name: "huge header (200 KiB)",
            service: "catalog",
            send: Send::Raw(huge_header.into_bytes()),
            expect: Answer::Http(431),
        },
        Case {
            name: "garbage request line",
            service: "payments",
            send: raw("\x01\x02 / HTTP/1.1\r\n\r\n"),
            expect: Answer::Http(400),
        },
        Case {
            name: "header without a colon",
            service: "gateway",
            send: raw("GET /healthz HTTP/1.1\r\nHost shop\r\n\r\n"),
            expect: Answer::Http(400),
        },
    ]
}

async fn send_connect(
    shop: &Shop,
    service: &str,
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Answer {
    let client = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let mut request = client.request(
        method.parse().expect("method"),
        format!("{}{path}", shop.url(service)),
    );
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.body(body).send().await.expect("send");
    let status = response.status().as_u16();
    let is_stream = response
        .headers()
        .get("content-type")
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/connect+"));
    let bytes = response.bytes().await.expect("body");
    let error: serde_json::Value = if is_stream {
        // The end-of-stream message.
        flagged_payload(&bytes, shop_kit::rpc::envelope::END_STREAM).map_or(
            serde_json::Value::Null,
            |payload| {
                serde_json::from_slice::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|end| end.get("error").cloned())
                    .unwrap_or_else(|| serde_json::json!({"code": "ok"}))
            },
        )
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    match error.get("code").and_then(|c| c.as_str()) {
        Some(code) => Answer::Connect(status, code.to_owned()),
        None => Answer::Http(status),
    }
}

fn grpc_status_of(headers: &http::HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

async fn send_grpc(
    shop: &Shop,
    service: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Answer {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut request =
        http::Request::post(format!("{}{path}", shop.url(service))).header("te", "trailers");
    if !headers.iter().any(|(name, _)| *name == "content-type") {
        request = request.header("content-type", "application/grpc");
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("send");
    if let Some(code) = grpc_status_of(response.headers()) {
        return Answer::Grpc(code);
    }
    let status = response.status().as_u16();
    let collected = response.into_body().collect().await.expect("body");
    let code = collected.trailers().and_then(grpc_status_of);
    code.map_or(Answer::Http(status), Answer::Grpc)
}

async fn send_grpc_web(
    shop: &Shop,
    service: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", shop.url(service)))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .expect("send");
    if let Some(code) = grpc_status_of(response.headers()) {
        return Answer::Grpc(code);
    }
    let text_mode = content_type.contains("text");
    let bytes = response.bytes().await.expect("body");
    let bytes = if text_mode {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&bytes)
            .unwrap_or_default()
    } else {
        bytes.to_vec()
    };
    let trailers = flagged_payload(&bytes, shop_kit::rpc::envelope::TRAILERS).unwrap_or_default();
    let code = String::from_utf8_lossy(trailers)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("grpc-status"))
        .and_then(|(_, v)| v.trim().parse().ok());
    if let Some(code) = code {
        return Answer::Grpc(code);
    }
    Answer::Http(0)
}

fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Answer {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = tcp.write_all(bytes);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer::Http(status)
}

#[tokio::test]
async fn every_malformed_request_gets_its_exact_code_and_the_shop_stays_up() {
    let shop = Shop::whole(&[]).await;
    let (_, session) = shop
        .call(
            "users",
            "/shop.users.v1.UserService/LogIn",
            &serde_json::json!({"email": "demo@connect-shop.dev", "password": "demo-password-1"}),
        )
        .await;
    let token = session["session"]["accessToken"]
        .as_str()
        .expect("demo token")
        .to_owned();
    let cases = catalogue(&token);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let answer = match case.send {
            Send::Connect(method, path, headers, body) => {
                send_connect(&shop, case.service, method, &path, &headers, body).await
            }
            Send::Grpc(path, headers, body) => {
                send_grpc(&shop, case.service, &path, &headers, body).await
            }
            Send::GrpcWeb(path, content_type, body) => {
                send_grpc_web(&shop, case.service, &path, content_type, body).await
            }
            Send::Raw(bytes) => {
                let addr = shop.addr(case.service);
                tokio::task::spawn_blocking(move || send_raw(addr, &bytes))
                    .await
                    .expect("raw")
            }
        };
        if answer != case.expect {
            wrong.push(format!(
                "{}: got {answer:?}, want {:?}",
                case.name, case.expect
            ));
        }
        assert!(
            shop.alive(case.service).await,
            "{} is down after {:?}",
            case.service,
            case.name
        );
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
