//! The soak's visitors: people browsing and looking in, each call on a
//! protocol other than the customers' gRPC, as foreign clients make them
//! over TLS (no client certificate), spread over every replica:
//!
//! | share | what | protocol |
//! |---:|---|---|
//! | 30% | the product list (`ListProducts`) | Connect GET, JSON |
//! | 25% | a product (`GET /v1/products/{id}`) | REST |
//! | 25% | the web home, signed in (`GetHome`, a fan-out) | gRPC-Web, binary |
//! | 19% | their order, watched to its end (`WatchOrder`) | Connect streaming, JSON |
//! | 1% | signing in again (`LogIn`) | Connect POST, JSON |
//!
//! Signing in is rare, as in a shop (a session lasts): each is an argon2id
//! hash, 19 MiB and tens of milliseconds of a CPU. At one visit in twenty
//! (21 a second) their bursts, up to 12 at once, stalled every service
//! sharing this machine's two cores: the p99 of every call rose to 200 ms.
//!
//! Each visitor signs up and places one order (Connect JSON) first: it is
//! in the ledger the invariants are checked against.
//!
//! As the web app does (`web-client/src/lib/overload.ts`), a visitor sends
//! a call refused before any work (`x-shop-not-processed`: a replica with
//! more calls at work than it takes) once more after the pause the
//! refusal asks for; the refused attempt counts as a failed attempt.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use prost::Message;
use shop_kit::client::Peer;
use shop_proto::shop::{
    bff::v1::{WebBffServiceGetHomeRequest, WebBffServiceGetHomeResponse},
    orders::v1::{CreateOrderRequest, CreateOrderResponse, create_order_request::Item},
    users::v1::{LogInRequest, SignUpRequest, SignUpResponse},
};
use tonic::{Code, Status};

use crate::{
    chaos::{
        calls::Calls,
        customers::{PRODUCTS, PlacedOrder},
        session::Session,
    },
    dial::{Answer, Dial},
    overload::load::{Call, Outcome},
    targets,
};

const PASSWORD: &str = "soak-password-1";

/// Where each service's replicas listen.
#[derive(Clone, Debug)]
pub struct Addresses {
    pub users: SocketAddr,
    pub catalog: Vec<SocketAddr>,
    pub orders: Vec<SocketAddr>,
    pub gateway: SocketAddr,
}

struct Visitor {
    email: String,
    session: Session,
    order_id: String,
}

/// The visitors, called in turn.
pub struct Visitors {
    dial: Dial,
    at: Addresses,
    people: Vec<Visitor>,
    calls: Arc<Calls>,
}

impl Visitors {
    /// Signs up `count` visitors, each placing one order: them, and the
    /// orders for the ledger. Their sessions are renewed at `users` (see
    /// `Session`).
    pub async fn sign_up(
        dial: Dial,
        users: &Peer,
        at: Addresses,
        count: usize,
        seed: u64,
        calls: Arc<Calls>,
    ) -> anyhow::Result<(Arc<Self>, Vec<PlacedOrder>)> {
        let mut people = Vec::with_capacity(count);
        let mut placed = Vec::with_capacity(count);
        for number in 0..count {
            let email = format!("soak-{seed}-{number}@example.com");
            let signed_up: SignUpResponse = unary_json(
                &dial,
                at.users,
                "/shop.users.v1.UserService/SignUp",
                &SignUpRequest {
                    email: email.clone(),
                    password: PASSWORD.to_owned(),
                    display_name: format!("Soak visitor {number}"),
                },
                None,
            )
            .await
            .with_context(|| format!("signing up {email}"))?;
            let issued = signed_up.session.context("no session")?;
            let token = issued.access_token.clone();
            let session = Session::renewed(
                issued,
                users.clone(),
                email.clone(),
                PASSWORD.to_owned(),
                calls.clone(),
            );
            let user_id = signed_up.user.context("no user")?.id;
            let key = format!("soak-visitor-{seed}-{number}");
            let product = PRODUCTS[number % PRODUCTS.len()];
            let created: CreateOrderResponse = unary_json(
                &dial,
                at.orders[number % at.orders.len()],
                "/shop.orders.v1.OrderService/CreateOrder",
                &CreateOrderRequest {
                    items: vec![Item {
                        product_id: product.to_owned(),
                        quantity: 1,
                    }],
                    payment_token: "tok_visa".to_owned(),
                    idempotency_key: key.clone(),
                },
                Some(&token),
            )
            .await
            .with_context(|| format!("{email}'s first order"))?;
            let order = created.order.context("no order")?;
            placed.push(PlacedOrder {
                session: session.clone(),
                user_id,
                key,
                id: order.id.clone(),
                lines: vec![(product.to_owned(), 1)],
                total_minor_units: order.total.as_ref().map_or(0, |t| t.minor_units),
                cancel_asked: false,
            });
            people.push(Visitor {
                email,
                session,
                order_id: order.id,
            });
        }
        Ok((
            Arc::new(Self {
                dial,
                at,
                people,
                calls,
            }),
            placed,
        ))
    }

    /// The `n`th visit: what, and its answer as a status.
    async fn visit(&self, n: u64) -> (&'static str, Result<(), Status>) {
        let index = n as usize;
        let visitor = &self.people[index % self.people.len()];
        let catalog = self.at.catalog[index % self.at.catalog.len()];
        let orders = self.at.orders[index % self.at.orders.len()];
        match n % 100 {
            0..=29 => {
                let path = "/shop.catalog.v1.CatalogService/ListProducts\
                            ?connect=v1&encoding=json&message=%7B%7D";
                ("ListProducts (Connect GET)", self.get(catalog, path).await)
            }
            30..=54 => {
                let path = format!("/v1/products/{}", PRODUCTS[index % PRODUCTS.len()]);
                ("GetProduct (REST)", self.get(catalog, &path).await)
            }
            55..=79 => ("GetHome (gRPC-Web)", self.home(visitor).await),
            80..=98 => (
                "WatchOrder (Connect stream)",
                self.watch(orders, visitor).await,
            ),
            _ => ("LogIn (Connect)", self.log_in(visitor).await),
        }
    }

    async fn get(&self, at: SocketAddr, path: &str) -> Result<(), Status> {
        let request = http::Request::get(path)
            .body(Full::default())
            .map_err(|e| Status::internal(e.to_string()))?;
        let answer = send(&self.dial, at, request).await?;
        connect_unary_status(&answer)
    }

    async fn log_in(&self, visitor: &Visitor) -> Result<(), Status> {
        let request = LogInRequest {
            email: visitor.email.clone(),
            password: PASSWORD.to_owned(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| Status::internal(e.to_string()))?;
        let answer = post(
            &self.dial,
            self.at.users,
            "/shop.users.v1.UserService/LogIn",
            "application/json",
            body,
            None,
        )
        .await?;
        connect_unary_status(&answer)
    }

    async fn home(&self, visitor: &Visitor) -> Result<(), Status> {
        let token = visitor.session.token().await?;
        let request = WebBffServiceGetHomeRequest { featured_count: 4 };
        let answer = post(
            &self.dial,
            self.at.gateway,
            "/shop.bff.v1.WebBffService/GetHome",
            "application/grpc-web+proto",
            targets::envelope(&request.encode_to_vec()),
            Some(&token),
        )
        .await?;
        grpc_web_status(&answer)?;
        home_whole(&answer)
    }

    async fn watch(&self, at: SocketAddr, visitor: &Visitor) -> Result<(), Status> {
        let token = visitor.session.token().await?;
        let message = serde_json::json!({ "orderId": visitor.order_id }).to_string();
        let answer = post(
            &self.dial,
            at,
            "/shop.orders.v1.OrderService/WatchOrder",
            "application/connect+json",
            targets::envelope(message.as_bytes()),
            Some(&token),
        )
        .await?;
        connect_stream_status(&answer)
    }
}

impl Call for Visitors {
    async fn call(&self, n: u64) -> Outcome {
        let sent = Instant::now();
        let (what, result) = self.visit(n).await;
        self.calls.count_timed(what, &result, sent.elapsed());
        Outcome::of(&result)
    }
}

/// A Connect unary call with a JSON body, its answer decoded.
async fn unary_json<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
    dial: &Dial,
    at: SocketAddr,
    path: &str,
    request: &Q,
    token: Option<&str>,
) -> anyhow::Result<A> {
    let answer = post(
        dial,
        at,
        path,
        "application/json",
        serde_json::to_vec(request)?,
        token,
    )
    .await?;
    connect_unary_status(&answer)?;
    Ok(serde_json::from_slice(&answer.body)?)
}

async fn post(
    dial: &Dial,
    at: SocketAddr,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
    token: Option<&str>,
) -> Result<Answer, Status> {
    let mut request = http::Request::post(path).header(http::header::CONTENT_TYPE, content_type);
    if content_type.starts_with("application/grpc-web") {
        request = request.header("x-grpc-web", "1");
    }
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(body.into()))
        .map_err(|e| Status::internal(e.to_string()))?;
    send(dial, at, request).await
}

/// The longest pause a refusal may ask for and still be waited out (the
/// web app's `MAX_PAUSE_MS`).
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Sends `request` to `at`; a refusal of a call no service worked on is
/// sent once more after the pause it asks for, as the web app does, and
/// counted as a failed attempt (the counter the kit's clients keep, read
/// by the soak from this process's metrics).
async fn send(
    dial: &Dial,
    at: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> Result<Answer, Status> {
    let again = copy(&request);
    let answer = dial.send(at, request).await.map_err(unreachable)?;
    let Some(pause) = pause_asked(&answer.headers) else {
        return Ok(answer);
    };
    metrics::counter!("shop_downstream_calls_total",
        "downstream" => service_of(again.uri().path()), "code" => "resource_exhausted")
    .increment(1);
    tokio::time::sleep(pause).await;
    dial.send(at, again).await.map_err(unreachable)
}

/// The pause a refusal of a call not worked on asks for (`Retry-After`, 1 s
/// when unreadable), if it is one worth waiting.
fn pause_asked(headers: &http::HeaderMap) -> Option<Duration> {
    headers.get(shop_kit::wire::NOT_PROCESSED)?;
    let seconds = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(1);
    Some(Duration::from_secs(seconds)).filter(|pause| *pause <= MAX_PAUSE)
}

fn copy(request: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut again = http::Request::new(request.body().clone());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.headers_mut() = request.headers().clone();
    again
}

/// The service a visitor's call goes to, as the failed attempts name it.
fn service_of(path: &str) -> &'static str {
    ["users", "catalog", "orders", "bff"]
        .into_iter()
        .find(|service| path.starts_with(&format!("/shop.{service}.")))
        .unwrap_or(if path.starts_with("/v1/products") {
            "catalog"
        } else {
            "unknown"
        })
}

fn unreachable(error: anyhow::Error) -> Status {
    Status::unavailable(format!("no answer: {error:#}"))
}

/// The messages of an enveloped body: (flags, message).
/// A served home must be whole: one that says a section is degraded (a
/// service the gateway could not reach) is a failed visit, not a served
/// one.
fn home_whole(answer: &Answer) -> Result<(), Status> {
    let message = envelopes(&answer.body)?
        .into_iter()
        .find(|(flags, _)| flags & 0x80 == 0)
        .ok_or_else(|| Status::internal("a home with no message"))?;
    let home = WebBffServiceGetHomeResponse::decode(message.1)
        .map_err(|e| Status::internal(format!("a home that does not decode: {e}")))?;
    if home.degraded.is_empty() {
        return Ok(());
    }
    let reasons: Vec<&str> = home.degraded.iter().map(|d| d.reason.as_str()).collect();
    Err(Status::unavailable(format!(
        "the home came degraded: {}",
        reasons.join("; ")
    )))
}

fn envelopes(body: &[u8]) -> Result<Vec<(u8, &[u8])>, Status> {
    targets::envelopes(body).ok_or_else(|| Status::internal("an envelope cut short"))
}

/// A Connect error's code name as a status code.
fn code_named(name: &str) -> Code {
    (0..=16)
        .find(|number| shop_kit::wire::code_name(*number) == name)
        .map_or(Code::Unknown, Code::from_i32)
}

/// A Connect error body (`{"code": ..., "message": ...}`) as a status.
fn connect_error(json: &[u8], fallback: &str) -> Status {
    let error: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    Status::new(
        code_named(error["code"].as_str().unwrap_or("unknown")),
        error["message"].as_str().unwrap_or(fallback).to_owned(),
    )
}

fn connect_unary_status(answer: &Answer) -> Result<(), Status> {
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(connect_error(&answer.body, answer.status.as_str()))
    }
}

/// A Connect stream ends with an end-stream message (flag 2) that holds
/// its error, if any.
fn connect_stream_status(answer: &Answer) -> Result<(), Status> {
    if !answer.status.is_success() {
        return Err(connect_error(&answer.body, answer.status.as_str()));
    }
    let messages = envelopes(&answer.body)?;
    match messages.iter().find(|(flags, _)| flags & 2 != 0) {
        None => Err(Status::internal("the stream had no end-stream message")),
        Some((_, end)) => {
            let end: serde_json::Value = serde_json::from_slice(end).unwrap_or_default();
            match end.get("error") {
                Some(error) => Err(connect_error(error.to_string().as_bytes(), "stream error")),
                None => Ok(()),
            }
        }
    }
}

/// gRPC-Web's status: in the headers (trailers-only) or in the trailer
/// frame (flag 0x80) at the end of the body.
fn grpc_web_status(answer: &Answer) -> Result<(), Status> {
    if !answer.status.is_success() {
        return Err(Status::unavailable(format!("HTTP {}", answer.status)));
    }
    let in_headers = answer
        .headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(|v| (v.to_owned(), header_text(answer, "grpc-message")));
    let status = match in_headers {
        Some(found) => found,
        None => {
            let messages = envelopes(&answer.body)?;
            let trailers = messages
                .iter()
                .find(|(flags, _)| flags & 0x80 != 0)
                .map(|(_, text)| String::from_utf8_lossy(text).into_owned())
                .ok_or_else(|| Status::internal("no gRPC-Web trailers"))?;
            let field = |name: &str| {
                trailers.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_owned())
                })
            };
            (
                field("grpc-status").unwrap_or_default(),
                field("grpc-message").unwrap_or_default(),
            )
        }
    };
    match status.0.parse::<i32>() {
        Ok(0) => Ok(()),
        Ok(code) => Err(Status::new(Code::from_i32(code), status.1)),
        Err(_) => Err(Status::internal(format!("grpc-status {:?}", status.0))),
    }
}

fn header_text(answer: &Answer, name: &str) -> String {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(retry_after: Option<&'static str>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            shop_kit::wire::NOT_PROCESSED,
            http::HeaderValue::from_static("overloaded"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static(seconds),
            );
        }
        headers
    }

    #[test]
    fn only_a_refusal_of_a_call_not_worked_on_is_sent_again_after_a_short_pause() {
        assert_eq!(pause_asked(&http::HeaderMap::new()), None);
        assert_eq!(pause_asked(&refusal(None)), Some(Duration::from_secs(1)));
        assert_eq!(
            pause_asked(&refusal(Some("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            pause_asked(&refusal(Some("soon"))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(pause_asked(&refusal(Some("30"))), None);
    }

    fn home_answer(home: &WebBffServiceGetHomeResponse) -> Answer {
        let mut body = targets::envelope(&home.encode_to_vec());
        body.extend_from_slice(&[0x80, 0, 0, 0, 15]);
        body.extend_from_slice(b"grpc-status: 0\n");
        Answer {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: body.into(),
        }
    }

    #[test]
    fn a_degraded_home_is_a_failed_visit() {
        let whole = WebBffServiceGetHomeResponse::default();
        assert!(grpc_web_status(&home_answer(&whole)).is_ok());
        assert!(home_whole(&home_answer(&whole)).is_ok());
        let degraded = WebBffServiceGetHomeResponse {
            degraded: vec![shop_proto::shop::bff::v1::Degraded {
                section: 2,
                reason: "the orders service is unavailable".to_owned(),
            }],
            ..Default::default()
        };
        // Served (status 0), and still a failure: a service was unreachable.
        assert!(grpc_web_status(&home_answer(&degraded)).is_ok());
        let failed = home_whole(&home_answer(&degraded)).expect_err("degraded");
        assert!(failed.message().contains("orders service"), "{failed:?}");
    }

    #[test]
    fn a_failed_attempt_is_named_by_the_service_called() {
        assert_eq!(
            service_of("/shop.orders.v1.OrderService/WatchOrder"),
            "orders"
        );
        assert_eq!(service_of("/shop.bff.v1.WebBffService/GetHome"), "bff");
        assert_eq!(service_of("/v1/products/p1"), "catalog");
        assert_eq!(service_of("/elsewhere"), "unknown");
    }
}
