//! One customer's visit (the web BFF's home, then an order), as Jaeger (a
//! real one, `SHOP_JAEGER`) returns it from the launched shop: spans from
//! every service and the event consumer in one trace, client and server
//! spans paired, parents right, a declined card's charge marked with its
//! code; and the saga's steps still in the order's trace after a kill
//! -9 of the shop in the middle of it. Run by `just trace-test`, which
//! builds Jaeger once (`tests/observe/build-jaeger.sh`).

mod launched;

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use launched::Shop;
use serde_json::{Value, json};

const QUERY: &str = "http://127.0.0.1:16686";

/// Jaeger with in-memory storage: OTLP on 4317 (gRPC) and 4318 (HTTP), the
/// query API on 16686. Killed when dropped.
struct Jaeger(Child);

impl Jaeger {
    async fn start() -> Self {
        let binary = std::env::var("SHOP_JAEGER")
            .expect("SHOP_JAEGER names the jaeger binary (just trace-test builds it)");
        for port in [4317, 4318, 16686] {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is taken (is `just observe` running?)"
            );
        }
        let child = Command::new(binary)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jaeger");
        let jaeger = Self(child);
        for _ in 0..100 {
            if reqwest::get(format!("{QUERY}/api/services")).await.is_ok() {
                return jaeger;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("jaeger did not answer on {QUERY}");
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One span as Jaeger returns it.
#[derive(Clone, Debug)]
struct Span {
    id: String,
    /// Microseconds since the epoch.
    start_us: u64,
    parent: Option<String>,
    service: String,
    name: String,
    tags: HashMap<String, Value>,
}

impl Span {
    fn kind(&self) -> &str {
        self.tags
            .get("span.kind")
            .and_then(Value::as_str)
            .unwrap_or("internal")
    }

    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).and_then(Value::as_str)
    }

    fn is_error(&self) -> bool {
        self.tags.get("error") == Some(&Value::Bool(true))
    }
}

struct Trace(Vec<Span>);

impl Trace {
    /// The trace `id`, once `done` says it is whole (export is batched).
    async fn wait_for(id: &str, done: impl Fn(&Trace) -> bool) -> Trace {
        let mut last = Trace(Vec::new());
        for _ in 0..60 {
            if let Ok(answer) = reqwest::get(format!("{QUERY}/api/traces/{id}")).await
                && let Ok(body) = answer.json::<Value>().await
            {
                last = Trace::read(&body);
                if done(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "trace {id} never became whole; last seen:\n{}",
            last.outline()
        );
    }

    /// The id of the trace whose `operation` span in `service` is linked
    /// to (follows from) the trace `outside`.
    async fn linked_to(service: &str, operation: &str, outside: &str) -> String {
        let url = format!("{QUERY}/api/traces?service={service}&operation={operation}&limit=50");
        for _ in 0..60 {
            if let Ok(answer) = reqwest::get(&url).await
                && let Ok(body) = answer.json::<Value>().await
                && let Some(found) = body["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|trace| trace["spans"].as_array().into_iter().flatten())
                    .find(|span| {
                        span["references"].as_array().is_some_and(|refs| {
                            refs.iter()
                                .any(|r| r["refType"] == "FOLLOWS_FROM" && r["traceID"] == outside)
                        })
                    })
            {
                return found["traceID"].as_str().unwrap_or_default().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("no {operation} span in {service} is linked to trace {outside}");
    }

    fn read(body: &Value) -> Trace {
        let Some(trace) = body["data"].get(0) else {
            return Trace(Vec::new());
        };
        let spans = trace["spans"].as_array().cloned().unwrap_or_default();
        Trace(
            spans
                .iter()
                .map(|span| {
                    Span {
                        id: span["spanID"].as_str().unwrap_or_default().to_owned(),
                        start_us: span["startTime"].as_u64().unwrap_or_default(),
                        // A consumer's parent is also its link: Jaeger shows
                        // both as one reference.
                        parent: span["references"]
                            .as_array()
                            .and_then(|refs| refs.first())
                            .and_then(|r| r["spanID"].as_str())
                            .map(str::to_owned),
                        service: trace["processes"][span["processID"].as_str().unwrap_or_default()]
                            ["serviceName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        name: span["operationName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        tags: span["tags"]
                            .as_array()
                            .map(|tags| {
                                tags.iter()
                                    .map(|t| {
                                        (
                                            t["key"].as_str().unwrap_or_default().to_owned(),
                                            t["value"].clone(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        )
    }

    fn named(&self, name: &str) -> Vec<&Span> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, service: &str, name: &str, kind: &str) -> &Span {
        let found: Vec<&Span> = self
            .0
            .iter()
            .filter(|s| s.service == service && s.name == name && s.kind() == kind)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {kind} span {name} in {service}:\n{}",
            self.outline()
        );
        found[0]
    }

    fn parent_of(&self, span: &Span) -> Option<&Span> {
        let parent = span.parent.as_deref()?;
        self.0.iter().find(|s| s.id == parent)
    }

    fn services(&self) -> Vec<&str> {
        let mut services: Vec<&str> = self.0.iter().map(|s| s.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        services
    }

    /// Every client span of an RPC has exactly one server span of the same
    /// method as its child, in another service.
    fn assert_paired(&self) {
        for client in self
            .0
            .iter()
            .filter(|s| s.kind() == "client" && s.tags.contains_key("rpc.method"))
        {
            let servers: Vec<&Span> = self
                .0
                .iter()
                .filter(|s| s.kind() == "server" && s.parent.as_deref() == Some(&client.id))
                .collect();
            assert_eq!(
                servers.len(),
                1,
                "{} has one server span:\n{}",
                client.name,
                self.outline()
            );
            assert_eq!(servers[0].tag("rpc.method"), client.tag("rpc.method"));
            assert_ne!(servers[0].service, client.service);
            // Who called, as the server saw it (a service of this process).
            assert_eq!(servers[0].tag("client.address"), Some("127.0.0.1"));
        }
    }

    /// The trace as a tree, children under their parent by start time:
    /// `service: name [kind, code, error]`.
    fn outline(&self) -> String {
        let mut spans: Vec<&Span> = self.0.iter().collect();
        spans.sort_by_key(|s| s.start_us);
        let mut lines = Vec::new();
        for root in spans.iter().filter(|s| self.parent_of(s).is_none()) {
            self.outline_from(root, 0, &spans, &mut lines);
        }
        lines.join("\n")
    }

    fn outline_from(&self, span: &Span, depth: usize, spans: &[&Span], lines: &mut Vec<String>) {
        let mut notes = vec![span.kind().to_owned()];
        notes.extend(
            ["rpc.response.status_code", "db.system.name"]
                .iter()
                .filter_map(|key| span.tag(key).map(str::to_owned)),
        );
        if span.is_error() {
            notes.push("error".to_owned());
        }
        lines.push(format!(
            "{:indent$}{}: {}  [{}]",
            "",
            span.service,
            span.name,
            notes.join(", "),
            indent = depth * 2
        ));
        for child in spans
            .iter()
            .filter(|s| s.parent.as_deref() == Some(span.id.as_str()))
        {
            self.outline_from(child, depth + 1, spans, lines);
        }
    }
}

async fn log_in(shop: &Shop) -> String {
    let (status, session) = shop
        .call(
            "users",
            "/shop.users.v1.UserService/LogIn",
            &json!({"email": "demo@connect-shop.dev", "password": "demo-password-1"}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    session["session"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// A call made inside trace `trace_id` (the test is the caller's span).
async fn call_in_trace(
    shop: &Shop,
    service: &str,
    path: &str,
    token: &str,
    trace_id: &str,
    body: &Value,
) -> (u16, Value) {
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    shop_kit::testing::call_json_with(
        &format!("{}{path}", shop.url(service)),
        Some(token),
        &[("traceparent", &traceparent)],
        body,
    )
    .await
}

/// The whole shop, tracing every call into the test's Jaeger over
/// OTLP/gRPC, and a signed-in customer's token.
async fn traced_shop(args: &[&str]) -> (Shop, String) {
    let mut all = vec!["--otlp-endpoint", "http://127.0.0.1:4317"];
    all.extend_from_slice(args);
    shop_tracing_to(&all).await
}

/// The whole shop, tracing every call as `export` says, and a signed-in
/// customer's token.
async fn shop_tracing_to(export: &[&str]) -> (Shop, String) {
    let mut all = vec!["--trace-trust", "all"];
    all.extend_from_slice(export);
    let shop = Shop::whole(&all).await;
    let token = log_in(&shop).await;
    (shop, token)
}

/// Opens the web BFF's home inside trace `trace_id`; the trace once its
/// fan-out is in (the screen, three calls out, three served).
async fn open_home(shop: &Shop, token: &str, trace_id: &str) -> Trace {
    let (status, _) = call_in_trace(
        shop,
        "gateway",
        "/shop.bff.v1.WebBffService/GetHome",
        token,
        trace_id,
        &json!({"featuredCount": 4}),
    )
    .await;
    assert_eq!(status, 200);
    Trace::wait_for(trace_id, |t| t.0.len() >= 7).await
}

/// Places an order paid with `card`, inside trace `trace_id`.
async fn place_order(shop: &Shop, token: &str, trace_id: &str, key: &str, card: &str) {
    let (status, placed) = call_in_trace(
        shop,
        "orders",
        "/shop.orders.v1.OrderService/CreateOrder",
        token,
        trace_id,
        &json!({"idempotencyKey": key, "paymentToken": card,
                "items": [{"productId": "prod_mug", "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
}

#[tokio::test]
#[ignore = "needs Jaeger: just trace-test"]
async fn one_order_is_one_trace_across_the_shop() {
    let _jaeger = Jaeger::start().await;
    let (shop, token) = traced_shop(&[]).await;

    // A customer's visit, one trace: the web BFF's home, then an order
    // with a declined card (the saga charges, refunds nothing, since
    // nothing was taken, and releases the stock; the history hears of it).
    let visit = "6bf92f3577b34da6a3ce929d0e0e4736";
    open_home(&shop, &token, visit).await;
    place_order(&shop, &token, visit, "traced-1", "tok_declined").await;
    let trace = Trace::wait_for(visit, |t| {
        !t.named("saga release_stock").is_empty() && !t.named("process order-history").is_empty()
    })
    .await;
    println!(
        "the visit's trace as Jaeger returns it:\n{}",
        trace.outline()
    );
    assert_eq!(
        trace.services(),
        ["catalog", "gateway", "orders", "payments", "users"],
        "{}",
        trace.outline()
    );

    // The home screen's fan-out, each call a child of the screen's.
    let screen = trace.one("gateway", "shop.bff.v1.WebBffService/GetHome", "server");
    assert_eq!(
        screen.parent.as_deref(),
        Some("00f067aa0ba902b7"),
        "the caller's span"
    );
    for (service, rpc) in [
        ("catalog", "shop.catalog.v1.CatalogService/ListProducts"),
        ("users", "shop.users.v1.UserService/GetMe"),
        ("orders", "shop.orders.v1.OrderService/ListOrders"),
    ] {
        let client = trace.one("gateway", rpc, "client");
        assert_eq!(trace.parent_of(client).map(|p| &p.id), Some(&screen.id));
        let server = trace.one(service, rpc, "server");
        assert_eq!(server.tag("rpc.system.name"), Some("grpc"));
        assert_eq!(server.tag("rpc.response.status_code"), Some("OK"));
    }
    assert_eq!(screen.tag("rpc.system.name"), Some("connectrpc"));
    assert_eq!(screen.tag("rpc.response.status_code"), Some("ok"));

    // The order: client and server spans paired, the saga's steps under
    // CreateOrder.
    trace.assert_paired();
    let create = trace.one(
        "orders",
        "shop.orders.v1.OrderService/CreateOrder",
        "server",
    );
    for step in ["saga reserve_stock", "saga charge", "saga release_stock"] {
        let step = trace.named(step);
        assert!(!step.is_empty(), "{}", trace.outline());
        assert_eq!(
            trace.parent_of(step[0]).map(|p| &p.id),
            Some(&create.id),
            "{}",
            step[0].name
        );
    }
    let charge = trace.one(
        "orders",
        "shop.payments.v1.OrderPaymentService/ChargeOrder",
        "client",
    );
    assert_eq!(
        trace.parent_of(charge).map(|p| p.name.as_str()),
        Some("saga charge")
    );
    assert_eq!(
        charge.tag("rpc.response.status_code"),
        Some("FAILED_PRECONDITION")
    );
    assert_eq!(charge.tag("error.type"), Some("FAILED_PRECONDITION"));
    assert!(
        charge.is_error(),
        "a client span: every code but ok is an error"
    );
    let charged = trace.one(
        "payments",
        "shop.payments.v1.OrderPaymentService/ChargeOrder",
        "server",
    );
    assert_eq!(
        charged.tag("rpc.response.status_code"),
        Some("FAILED_PRECONDITION")
    );
    assert!(
        !charged.is_error(),
        "a server span: the caller's failure is no error of the server's"
    );
    let reserve = trace.one(
        "catalog",
        "shop.catalog.v1.StockService/ReserveStock",
        "server",
    );
    let statements: Vec<&Span> = trace
        .0
        .iter()
        .filter(|s| {
            s.tags.contains_key("db.system.name")
                && trace.parent_of(s).map(|p| &p.id) == Some(&reserve.id)
        })
        .collect();
    assert!(
        !statements.is_empty(),
        "SQL under ReserveStock:\n{}",
        trace.outline()
    );
    assert_eq!(statements[0].tag("db.system.name"), Some("sqlite"));
    let history = trace.named("process order-history");
    assert_eq!(history[0].service, "orders");
    assert_eq!(history[0].kind(), "consumer");
}

#[tokio::test]
#[ignore = "needs Jaeger: just trace-test"]
async fn a_saga_resumed_after_kill_9_stays_in_the_orders_trace() {
    let _jaeger = Jaeger::start().await;
    // The processor is unavailable: the charge is retried until the
    // order's deadline, long enough to kill the shop in the middle.
    let (mut shop, token) = traced_shop(&["--order-deadline-secs", "8"]).await;
    let order = "8bf92f3577b34da6a3ce929d0e0e4736";
    place_order(&shop, &token, order, "traced-2", "tok_unavailable").await;
    // The first charge attempt exported (just trace-test sets a short
    // batch delay), then kill -9 and the same command on the same data.
    Trace::wait_for(order, |t| !t.named("saga charge").is_empty()).await;
    let killed_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default();
    shop.restart().await;
    let trace = Trace::wait_for(order, |t| !t.named("saga release_stock").is_empty()).await;
    let resumed = trace
        .0
        .iter()
        .filter(|s| s.name.starts_with("saga ") && s.start_us > killed_us)
        .count();
    assert!(
        resumed > 0,
        "steps driven by the new process:
{}",
        trace.outline()
    );
    let create = trace.one(
        "orders",
        "shop.orders.v1.OrderService/CreateOrder",
        "server",
    );
    for step in trace.0.iter().filter(|s| s.name.starts_with("saga ")) {
        assert_eq!(
            trace.parent_of(step).map(|p| &p.id),
            Some(&create.id),
            "{} (before or after the restart) is CreateOrder's:\n{}",
            step.name,
            trace.outline()
        );
    }
}

#[tokio::test]
#[ignore = "needs Jaeger: just trace-test"]
async fn spans_sent_over_otlp_http_make_the_same_trace() {
    let _jaeger = Jaeger::start().await;
    let (shop, token) = shop_tracing_to(&[
        "--otlp-endpoint",
        "http://127.0.0.1:4318",
        "--otlp-protocol",
        "http/protobuf",
    ])
    .await;
    let trace = open_home(&shop, &token, "cbf92f3577b34da6a3ce929d0e0e4736").await;
    assert_eq!(
        trace.services(),
        ["catalog", "gateway", "orders", "users"],
        "each service under its own name"
    );
    let screen = trace.one("gateway", "shop.bff.v1.WebBffService/GetHome", "server");
    assert_eq!(screen.tag("rpc.response.status_code"), Some("ok"));
    trace.assert_paired();
}

#[tokio::test]
#[ignore = "needs Jaeger: just trace-test"]
async fn a_trace_its_caller_does_not_keep_leaves_no_span_anywhere() {
    let _jaeger = Jaeger::start().await;
    let (shop, token) = traced_shop(&[]).await;
    // The same screen twice: once in a trace the caller does not keep
    // (sampled flag 00), once in one it keeps.
    let dropped = "abf92f3577b34da6a3ce929d0e0e4736";
    let kept = "bbf92f3577b34da6a3ce929d0e0e4736";
    for (trace_id, flags) in [(dropped, "00"), (kept, "01")] {
        let (status, _) = shop_kit::testing::call_json_with(
            &format!("{}/shop.bff.v1.WebBffService/GetHome", shop.url("gateway")),
            Some(&token),
            &[(
                "traceparent",
                &format!("00-{trace_id}-00f067aa0ba902b7-{flags}"),
            )],
            &json!({"featuredCount": 4}),
        )
        .await;
        assert_eq!(status, 200);
    }
    // Once the kept trace is in, the other would be too.
    Trace::wait_for(kept, |t| t.0.len() >= 7).await;
    let answer = reqwest::get(format!("{QUERY}/api/traces/{dropped}"))
        .await
        .expect("query");
    assert_eq!(
        answer.status(),
        404,
        "no service kept a span of the dropped trace"
    );
}

#[tokio::test]
#[ignore = "needs Jaeger: just trace-test"]
async fn by_default_an_outside_trace_is_linked_and_the_services_trust_each_other() {
    let _jaeger = Jaeger::start().await;
    // The default trust (`services`): a customer's call with a traceparent
    // of its own starts a new trace, linked to the one it sent.
    let shop = Shop::whole(&["--otlp-endpoint", "http://127.0.0.1:4317"]).await;
    let token = log_in(&shop).await;
    let outside = "dbf92f3577b34da6a3ce929d0e0e4736";
    place_order(&shop, &token, outside, "traced-3", "tok_visa").await;

    let linked =
        Trace::linked_to("orders", "shop.orders.v1.OrderService/CreateOrder", outside).await;
    let trace = Trace::wait_for(&linked, |t| !t.named("saga commit_stock").is_empty()).await;
    let create = trace.one(
        "orders",
        "shop.orders.v1.OrderService/CreateOrder",
        "server",
    );
    assert!(
        trace.parent_of(create).is_none(),
        "a root, only linked:\n{}",
        trace.outline()
    );
    // The saga's calls carry a service token: the catalog and payments
    // continue the order's trace.
    for (service, rpc) in [
        ("catalog", "shop.catalog.v1.StockService/ReserveStock"),
        (
            "payments",
            "shop.payments.v1.OrderPaymentService/ChargeOrder",
        ),
        ("catalog", "shop.catalog.v1.StockService/CommitStock"),
    ] {
        let client = trace.one("orders", rpc, "client");
        let server = trace.one(service, rpc, "server");
        assert_eq!(
            trace.parent_of(server).map(|p| &p.id),
            Some(&client.id),
            "{rpc}:\n{}",
            trace.outline()
        );
    }
    let answer = reqwest::get(format!("{QUERY}/api/traces/{outside}"))
        .await
        .expect("query");
    assert_eq!(answer.status(), 404, "no span joined the outside trace");
}
