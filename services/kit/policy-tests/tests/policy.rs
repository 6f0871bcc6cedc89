//! The probe's contract changed option by option, the handler never: each
//! test compiles `probe.proto` with other `kit.policy.v1` options, serves
//! the same Rust under those descriptors on loopback, and calls it over
//! Connect and gRPC-Web as a foreign client would.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use shop_kit::{
    Shutdown,
    rpc::{
        HttpConfig,
        rate_class::{RateClass, RateRefused},
        start,
    },
};
use shop_kit_policy_tests::{PROBE_PROTO, handmade, server};
use shop_users::tokens::TokenIssuer;

/// The probe's descriptors with its service's options replaced by
/// `options`, leaked for the server's life.
fn descriptors(options: &str) -> &'static [u8] {
    const BASE: &str = "caller: { anyone: true }";
    assert!(PROBE_PROTO.contains(BASE), "the probe's options moved");
    let set = shop_kit_policy::testing::descriptor_set(
        "probe/v1/probe.proto",
        &PROBE_PROTO.replace(BASE, options),
    );
    Box::leak(set.into_boxed_slice())
}

/// A rate class of so many calls, then none (come back in 2 s).
#[derive(Debug)]
struct Allowance {
    left: AtomicU32,
}

impl Allowance {
    fn of(calls: u32) -> Self {
        Self {
            left: AtomicU32::new(calls),
        }
    }
}

impl RateClass for Allowance {
    fn admit(&self, _: &http::request::Parts) -> Result<(), RateRefused> {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .map(|_| ())
            .map_err(|_| RateRefused {
                message: "the probe's allowance is spent".to_owned(),
                retry_after: Duration::from_secs(2),
            })
    }
}

struct Probe {
    url: String,
    issuer: TokenIssuer,
    _shutdown: Shutdown,
}

impl Probe {
    /// The probe served with its service's options `options`.
    async fn with(options: &str) -> Self {
        Self::with_limiter(options, Arc::new(Allowance::of(u32::MAX))).await
    }

    /// The probe served with its service's options `options`, and
    /// `limiter` as the rate class `probe`.
    async fn with_limiter(options: &str, limiter: Arc<dyn RateClass>) -> Self {
        Self::served(server, options, limiter).await
    }

    /// The probe `make` serves, with its service's options `options`, and
    /// `limiter` as the rate class `probe`.
    async fn served(
        make: fn(&HttpConfig, &'static [u8]) -> shop_kit::RpcServer,
        options: &str,
        limiter: Arc<dyn RateClass>,
    ) -> Self {
        let (kid, der) = TokenIssuer::generate_key().expect("key");
        let issuer = TokenIssuer::from_pkcs8(kid, &der).expect("issuer");
        let http = HttpConfig::default();
        let shutdown = Shutdown::new();
        let router = make(&http, descriptors(options))
            .verify_tokens(issuer.verifier().expect("verifier"))
            .rate_class("probe", limiter)
            .into_router(&shutdown)
            .await
            .expect("router");
        let listening = start(
            "127.0.0.1:0".parse().expect("addr"),
            router,
            shutdown.clone(),
            &http,
        )
        .await
        .expect("bind");
        Self {
            url: format!("http://{}/probe.v1.ProbeService/Who", listening.addr),
            issuer,
            _shutdown: shutdown,
        }
    }

    /// Where it listens (host:port).
    fn address(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host:port")
            .to_owned()
    }

    fn token(&self, subject: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        self.issuer.access_token(subject, now).expect("token")
    }

    /// A Connect JSON call, with `token` and `timeout_ms` if given.
    async fn call(
        &self,
        token: Option<&str>,
        timeout_ms: Option<u64>,
        sleep_ms: u32,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .body(json!({ "sleepMs": sleep_ms }).to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = timeout_ms {
            request = request.header("connect-timeout-ms", timeout.to_string());
        }
        let answer = request.send().await.expect("call");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("json"))
    }

    /// A gRPC-Web call (binary), with `token`: its grpc-status and message.
    async fn call_grpc_web(&self, token: Option<&str>) -> (String, String) {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/grpc-web+proto")
            .body(vec![0u8, 0, 0, 0, 0]);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("call");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (status, message) = (header("grpc-status"), header("grpc-message"));
        let body = answer.bytes().await.expect("body");
        // An answer that went on to its body carries the status in its
        // trailers frame.
        let trailers = String::from_utf8_lossy(&body).into_owned();
        if status.is_empty() {
            let status = trailers
                .split("grpc-status:")
                .nth(1)
                .map(|rest| {
                    rest.trim()
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect()
                })
                .unwrap_or_default();
            return (status, trailers);
        }
        (status, message)
    }
}

#[tokio::test]
async fn the_caller_rule_is_the_contracts_and_changes_with_it() {
    // Anyone: no token needed.
    let open = Probe::with("caller: { anyone: true }").await;
    let (status, body) = open.call(None, None, 0).await;
    assert_eq!(status, 200, "{body}");

    // A signed-in customer: no token, or a service's, is refused, with the
    // words the handlers' extractors use; a customer's token passes and
    // the handler is told who it is.
    let customers = Probe::with("caller: { customer: true }").await;
    let (status, body) = customers.call(None, None, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    assert_eq!(body["message"], "sign in: this call needs an access token");
    let service = customers.token("service:orders");
    let (status, body) = customers.call(Some(&service), None, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("permission_denied")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "only a signed-in customer may make this call"
    );
    let ada = customers.token("ada");
    let (status, body) = customers.call(Some(&ada), None, 0).await;
    assert_eq!(
        (status, body["caller"].as_str()),
        (200, Some("ada")),
        "{body}"
    );
    // The same on gRPC-Web.
    assert_eq!(customers.call_grpc_web(None).await.0, "16");
    assert_eq!(customers.call_grpc_web(Some(&service)).await.0, "7");
    assert_eq!(customers.call_grpc_web(Some(&ada)).await.0, "0");

    // Named services: another service and a customer are refused.
    let orders_only = Probe::with("caller: { services: { names: [\"orders\"] } }").await;
    let payments = orders_only.token("service:payments");
    let (status, body) = orders_only.call(Some(&payments), None, 0).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"],
        "only the orders service may make this call"
    );
    let (status, body) = orders_only
        .call(Some(&orders_only.token("ada")), None, 0)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"],
        "only the shop's own services may make this call"
    );
    let orders = orders_only.token("service:orders");
    let (status, body) = orders_only.call(Some(&orders), None, 0).await;
    assert_eq!(
        (status, body["caller"].as_str()),
        (200, Some("service:orders")),
        "{body}"
    );
}

#[tokio::test]
async fn the_deadline_is_given_when_none_is_sent_and_cut_when_longer() {
    // No deadline in the contract: a call without one has none.
    let open = Probe::with("caller: { anyone: true }").await;
    let (_, body) = open.call(None, None, 0).await;
    assert_eq!(body["deadlineMs"], Value::Null, "none: {body}");

    // A minute: what the handler finds left of it is far from any other
    // deadline in play, however long a busy machine takes to get there.
    let bounded = Probe::with("caller: { anyone: true } deadline: { seconds: 60 }").await;
    let left = |body: &Value| {
        body["deadlineMs"]
            .as_str()
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a deadline: {body}"))
    };
    let the_methods = 30_000..=60_000;
    // None sent: the method's.
    let (_, body) = bounded.call(None, None, 0).await;
    assert!(the_methods.contains(&left(&body)), "{body}");
    // A longer one (an hour): cut to the method's.
    let (_, body) = bounded.call(None, Some(3_600_000), 0).await;
    assert!(the_methods.contains(&left(&body)), "{body}");
    // A shorter one: kept.
    let (_, body) = bounded.call(None, Some(100), 0).await;
    assert!(left(&body) <= 100, "{body}");
    // And enforced: a handler of 5 s against a method's 300 ms (and a
    // caller's minute), answered at the deadline: bounded at half the
    // handler's time, room for a busy machine.
    let short = Probe::with("caller: { anyone: true } deadline: { nanos: 300000000 }").await;
    let started = std::time::Instant::now();
    let (status, body) = short.call(None, Some(60_000), 5_000).await;
    assert_eq!(body["code"], "deadline_exceeded", "{status} {body}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_rate_class_named_by_the_contract_counts_its_calls_and_one_not_named_does_not() {
    // Named: the third call is refused before the handler runs, on every
    // protocol, saying when to come back.
    let limited = Probe::with_limiter(
        "caller: { anyone: true } rate_class: \"probe\"",
        Arc::new(Allowance::of(2)),
    )
    .await;
    for _ in 0..2 {
        let (status, body) = limited.call(None, None, 0).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = limited.call(None, None, 0).await;
    assert_eq!(
        (status, body["code"].as_str(), body["message"].as_str()),
        (
            429,
            Some("resource_exhausted"),
            Some("the probe's allowance is spent")
        ),
        "{body}"
    );
    assert!(
        body["details"]
            .as_array()
            .is_some_and(|details| details.iter().any(|d| d["type"] == "google.rpc.RetryInfo")),
        "{body}"
    );
    assert_eq!(limited.call_grpc_web(None).await.0, "8");

    // Not named: the same limiter counts nothing.
    let open = Probe::with_limiter("caller: { anyone: true }", Arc::new(Allowance::of(0))).await;
    let (status, body) = open.call(None, None, 0).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_class_the_server_has_no_limiter_for_stops_it_being_assembled() {
    let refused = server(
        &HttpConfig::default(),
        descriptors("caller: { anyone: true } rate_class: \"nobody\""),
    )
    .into_router(&Shutdown::new())
    .await
    .expect_err("no limiter for the class");
    assert_eq!(
        refused.to_string(),
        "probe.v1.ProbeService.Who counts against the rate class \"nobody\", which this server has no limiter for: register one with RpcServer::rate_class"
    );
}

/// The server a probe contract makes, or why it would not start.
async fn assembled(descriptors: &'static [u8]) -> Result<axum::Router, shop_kit::rpc::ServerError> {
    server(&HttpConfig::default(), descriptors)
        .into_router(&Shutdown::new())
        .await
}

#[tokio::test]
async fn a_service_its_contract_does_not_describe_or_whose_caller_is_unsaid_never_starts() {
    // The contract of another service: the probe's rules could not be read.
    let elsewhere = assembled(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .await
        .expect_err("served without its contract");
    assert!(
        elsewhere.to_string().contains("probe.v1.ProbeService")
            && elsewhere.to_string().contains("does not describe it"),
        "{elsewhere}"
    );
    // Its contract, with no caller rule: who may call it is unsaid.
    let unsaid = assembled(descriptors("deadline: { seconds: 1 }"))
        .await
        .expect_err("served with no caller rule");
    assert!(unsaid.to_string().contains("no caller policy"), "{unsaid}");
    // Said: it starts.
    let _started = assembled(descriptors("caller: { anyone: true }"))
        .await
        .expect("the probe's own contract");
}

#[tokio::test]
async fn a_service_only_services_may_call_is_internal_by_its_contract() {
    // Internal by its caller rule alone: a browser's request is refused
    // outright, preflight or not, with no handler or list of names in code.
    let internal = Probe::with("caller: { services: { names: [\"orders\"] } }").await;
    assert_eq!(from_a_browser(&internal.url).await, 403);
    let public = Probe::with("caller: { anyone: true }").await;
    assert_eq!(from_a_browser(&public.url).await, 200);
}

/// The status of a call to `url` as a browser's page makes it.
async fn from_a_browser(url: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(url)
        .header("origin", "http://localhost:8080")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send")
        .status()
}

/// The doors around the contract, each shut: whatever answers a method,
/// the server admits its callers first; a path under a served service that
/// is no method of it is refused there; a hand route cannot take an RPC's
/// path; a `shop_secret` caller the kit could not check never starts.
#[tokio::test]
async fn a_hand_made_server_still_meets_the_contracts_caller_rule() {
    // A tonic server whose handler checks nothing, under a contract that
    // lets only customers call: the server refuses the others before it.
    let customers = Probe::served(
        handmade,
        "caller: { customer: true }",
        Arc::new(Allowance::of(u32::MAX)),
    )
    .await;
    assert_eq!(customers.call_grpc_web(None).await.0, "16");
    let service = customers.token("service:orders");
    assert_eq!(customers.call_grpc_web(Some(&service)).await.0, "7");
    let (status, body) = customers.call(None, None, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    // Another verb is no way around it: refused, and the handler not run.
    for verb in [reqwest::Method::GET, reqwest::Method::PUT] {
        for content_type in ["application/grpc", "application/grpc-web+proto"] {
            let answer = reqwest::Client::new()
                .request(verb.clone(), &customers.url)
                .header("content-type", content_type)
                .body(vec![0u8, 0, 0, 0, 0])
                .send()
                .await
                .expect("call");
            let status = answer
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = answer.bytes().await.expect("body");
            assert_ne!(status.as_deref(), Some("0"), "{verb} {content_type}");
            assert!(
                !String::from_utf8_lossy(&body).contains("unchecked"),
                "{verb} {content_type} reached the handler"
            );
        }
    }
    // A customer reaches the hand-made handler.
    let ada = customers.token("ada");
    let (status, _) = customers.call_grpc_web(Some(&ada)).await;
    assert_eq!(status, "0");
    // Its rate class too: one call, then none.
    let limited = Probe::served(
        handmade,
        "caller: { anyone: true } rate_class: \"probe\"",
        Arc::new(Allowance::of(1)),
    )
    .await;
    assert_eq!(limited.call_grpc_web(None).await.0, "0");
    assert_eq!(limited.call_grpc_web(None).await.0, "8");
}

#[tokio::test]
async fn a_path_under_a_served_service_that_is_no_method_of_it_is_refused_there() {
    let probe = Probe::with("caller: { anyone: true }").await;
    let unknown = probe.url.replace("/Who", "/Open");
    for content_type in ["application/json", "application/proto"] {
        let answer = reqwest::Client::new()
            .post(&unknown)
            .header("content-type", content_type)
            .body("{}")
            .send()
            .await
            .expect("call");
        let status = answer.status();
        let text = answer.text().await.expect("body");
        // As connect-go answers a procedure it does not serve.
        assert_eq!(status, 404, "{content_type}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a Connect error");
        assert_eq!(body["code"], "unimplemented", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("/probe.v1.ProbeService/Open")),
            "{body}"
        );
    }
    let answer = reqwest::Client::new()
        .post(&unknown)
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("call");
    assert_eq!(
        answer
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("12")
    );
}

#[tokio::test]
async fn a_hand_route_cannot_take_a_path_an_rpc_or_the_kit_serves() {
    let open = || {
        server(
            &HttpConfig::default(),
            descriptors("caller: { anyone: true }"),
        )
    };
    let hello = || axum::routing::get(|| async { "hello" });
    for (path, why) in [
        ("/probe.v1.ProbeService/Who", "shape of an RPC"),
        ("/probe.v1.ProbeService/Other", "shape of an RPC"),
        (
            "/shop.catalog.v1.StockService/ReserveStock",
            "shape of an RPC",
        ),
        ("/healthz", "the kit serves it"),
        ("/metrics", "the kit serves it"),
        ("hello", "starts with /"),
    ] {
        let refused = open()
            .http_route(path, hello())
            .into_router(&Shutdown::new())
            .await
            .expect_err(path);
        assert!(refused.to_string().contains(why), "{path}: {refused}");
    }
    let twice = open()
        .http_route("/hello", hello())
        .http_route("/hello", hello())
        .into_router(&Shutdown::new())
        .await
        .expect_err("the same path twice");
    assert!(twice.to_string().contains("given twice"), "{twice}");
    // A page of its own is served, as plain HTTP.
    let _served = open()
        .http_route("/hello", hello())
        .http_route("/.well-known/jwks.json", hello())
        .into_router(&Shutdown::new())
        .await
        .expect("plain routes");
}

#[tokio::test]
async fn a_shop_secret_caller_needs_the_field_the_kit_checks() {
    let unchecked = assembled(descriptors("caller: { shop_secret: true }"))
        .await
        .expect_err("a shop_secret caller with nothing for the kit to check");
    assert!(
        unchecked.to_string().contains("shop_secret_field"),
        "{unchecked}"
    );
}

/// A call's work handed to a task (`shop_kit::task::spawn`) or done in its
/// response stream (polled after the handler returned) calls the next
/// service as the call itself would: with the caller's token and what is
/// left of its deadline.
#[tokio::test]
async fn a_peer_call_from_a_spawned_task_or_a_stream_keeps_the_callers_deadline_and_token() {
    // Who is for a signed-in caller only: it answers only if the token came.
    let probe = Probe::with("caller: { signed_in: true }").await;
    let address = probe.address();
    let ada = probe.token("ada");
    let request = json!({ "address": address }).to_string();

    let relayed = reqwest::Client::new()
        .post(probe.url.replace("/Who", "/Relay"))
        .header("content-type", "application/json")
        .header("connect-timeout-ms", "4000")
        .bearer_auth(&ada)
        .body(request.clone())
        .send()
        .await
        .expect("relay");
    assert_eq!(relayed.status(), 200);
    let seen: Value = relayed.json().await.expect("json");
    assert_seen_within(&seen, 4000);

    // Connect streaming: an enveloped request, the messages enveloped back.
    let streamed = reqwest::Client::new()
        .post(probe.url.replace("/Who", "/RelayStream"))
        .header("content-type", "application/connect+json")
        .header("connect-timeout-ms", "4000")
        .bearer_auth(&ada)
        .body(envelopes(&[json!({ "address": address })]))
        .send()
        .await
        .expect("relay stream");
    assert_eq!(streamed.status(), 200);
    let answers = unframed(&streamed.bytes().await.expect("body"));
    assert_eq!(answers[0].0, 0, "a message first: {answers:?}");
    assert_seen_within(&answers[0].1["seen"], 4000);
}

/// JSON messages in Connect's streaming envelopes (flags 0, then the
/// length).
fn envelopes(messages: &[Value]) -> Vec<u8> {
    let mut framed = Vec::new();
    for message in messages {
        let bytes = message.to_string().into_bytes();
        framed.push(0);
        framed.extend(u32::try_from(bytes.len()).expect("short").to_be_bytes());
        framed.extend(bytes);
    }
    framed
}

/// The envelopes of a Connect streaming answer: each one's flags and JSON
/// (the last, flags 2, is the end of the stream).
fn unframed(mut body: &[u8]) -> Vec<(u8, Value)> {
    let mut answers = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes(body[1..5].try_into().expect("a length")) as usize;
        let message = serde_json::from_slice(&body[5..5 + length]).expect("JSON");
        answers.push((body[0], message));
        body = &body[5 + length..];
    }
    answers
}

/// The two streaming kinds of call go through the pipeline a unary call
/// does: the contract's caller rule and deadline, and each message's rule
/// (`buf.validate`), checked as it arrives. Over gRPC with the kit's own
/// client (`Peer` under tonic's generated client), and over Connect on
/// HTTP/2 as a foreign client writes it.
#[tokio::test]
async fn a_stream_of_requests_meets_the_caller_rule_the_deadline_and_each_messages_rule() {
    use futures::StreamExt as _;
    use shop_kit::client::{Peer, PeerPolicy};
    use shop_kit_policy_tests::probe::v1::{
        TallyRequest, probe_service_client::ProbeServiceClient,
    };

    let probe = Probe::with("caller: { signed_in: true } deadline: { seconds: 60 }").await;
    let address = probe.address().parse().expect("an address");
    let client = ProbeServiceClient::new(Peer::at("probe", address, PeerPolicy::default()));
    let ada = probe.token("ada");
    // A stream of requests with the counts `counts`, from ada (or no one)
    // with 4 s to answer.
    let requests = |token: Option<&str>, counts: &[u32]| {
        let messages: Vec<TallyRequest> =
            counts.iter().map(|&count| TallyRequest { count }).collect();
        let mut request = tonic::Request::new(futures::stream::iter(messages));
        if let Some(token) = token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("a header"),
            );
        }
        request.set_timeout(Duration::from_secs(4));
        request
    };

    // Client streaming: every message counted, the caller and the
    // caller's deadline seen.
    let tally = client
        .clone()
        .tally(requests(Some(&ada), &[1, 2, 3]))
        .await
        .expect("a tally")
        .into_inner();
    assert_eq!((tally.requests, tally.sum), (3, 6), "{tally:?}");
    let seen = tally.seen.expect("seen");
    assert_eq!(seen.caller, "ada");
    assert!((1..=4000).contains(&seen.deadline_ms), "{seen:?}");
    // The caller rule: no token, no call.
    let anonymous = client
        .clone()
        .tally(requests(None, &[1]))
        .await
        .expect_err("refused");
    assert_eq!(
        anonymous.code(),
        tonic::Code::Unauthenticated,
        "{anonymous:?}"
    );
    // A message that breaks its rule (count <= 1000) is refused with the
    // field named, wherever it is in the stream.
    let broken = client
        .clone()
        .tally(requests(Some(&ada), &[1, 1001, 2]))
        .await
        .expect_err("refused");
    assert_eq!(broken.code(), tonic::Code::InvalidArgument, "{broken:?}");
    assert!(broken.message().starts_with("count:"), "{broken:?}");

    // Bidirectional: an answer per request, and the first broken one ends
    // the stream with its refusal.
    let running_tally = |counts: &'static [u32]| {
        let mut client = client.clone();
        let request = requests(Some(&ada), counts);
        async move {
            let answers = client.running_tally(request).await.expect("answers");
            answers.into_inner().collect::<Vec<_>>().await
        }
    };
    let sums: Vec<u32> = running_tally(&[1, 2, 3])
        .await
        .iter()
        .map(|answer| answer.as_ref().expect("an answer").sum)
        .collect();
    assert_eq!(sums, [1, 3, 6]);
    let answers = running_tally(&[5, 1001, 2]).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].as_ref().expect("the first").sum, 5);
    let refusal = answers[1].as_ref().expect_err("the refusal");
    assert_eq!(refusal.code(), tonic::Code::InvalidArgument, "{refusal:?}");

    // Connect on HTTP/2, JSON: the same tally, and the same refusal in the
    // end of the stream, its field named as JSON names it.
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("a client");
    let connect = |method: &str, counts: &[u32], token: Option<&str>| {
        let messages: Vec<Value> = counts
            .iter()
            .map(|count| json!({ "count": count }))
            .collect();
        let mut request = http2
            .post(probe.url.replace("/Who", &format!("/{method}")))
            .header("content-type", "application/connect+json")
            .header("connect-timeout-ms", "4000")
            .body(envelopes(&messages));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let answer = request.send().await.expect("a call");
            assert_eq!(answer.version(), reqwest::Version::HTTP_2);
            unframed(&answer.bytes().await.expect("a body"))
        }
    };
    let tally = connect("Tally", &[4, 5], Some(&ada)).await;
    assert_eq!(tally[0].1["requests"], 2, "{tally:?}");
    assert_eq!(tally[0].1["sum"], 9, "{tally:?}");
    assert_seen_within(&tally[0].1["seen"], 4000);
    let broken = connect("Tally", &[4, 5000], Some(&ada)).await;
    let end = &broken.last().expect("an end").1;
    assert_eq!(end["error"]["code"], "invalid_argument", "{broken:?}");
    assert!(
        end["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("count:")),
        "{broken:?}"
    );
    let anonymous = connect("RunningTally", &[1], None).await;
    let end = &anonymous.last().expect("an end").1;
    assert_eq!(end["error"]["code"], "unauthenticated", "{anonymous:?}");
    let running = connect("RunningTally", &[1, 2], Some(&ada)).await;
    let sums: Vec<&Value> = running
        .iter()
        .filter(|(flags, _)| *flags == 0)
        .map(|(_, answer)| &answer["sum"])
        .collect();
    assert_eq!(sums, [&json!(1), &json!(3)], "{running:?}");
}

/// Who saw the caller ada, with a deadline of at most `ms` left.
fn assert_seen_within(seen: &Value, ms: u64) {
    assert_eq!(seen["caller"], "ada", "{seen}");
    let left: u64 = seen["deadlineMs"]
        .as_str()
        .and_then(|ms| ms.parse().ok())
        .expect("a deadline");
    assert!(left > 0 && left <= ms, "{seen}");
}
