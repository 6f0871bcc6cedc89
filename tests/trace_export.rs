//! A collector that is down or hangs costs no call: every call is
//! answered as fast as without it, the spans that could not go are counted
//! in `shop_trace_spans_dropped_total`, the queue they wait in stays at its
//! bound (OTEL_BSP_MAX_QUEUE_SIZE), and the log says so once, not per batch.

mod launched;

use std::time::{Duration, Instant};

use launched::{Shop, free_port};
use serde_json::json;

const DROPPED: &str = "shop_trace_spans_dropped_total";
const WARNING: &str = "the collector does not take spans";

/// `calls` unary calls to users, each answered ok; the slowest one's time.
async fn call_users(users: &Shop, calls: u64) -> Duration {
    let path = format!(
        "{}/shop.users.v1.UserService/GetPublicKeys",
        users.url("users")
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..calls {
        let started = Instant::now();
        let (status, body) = shop_kit::testing::call_json(&path, None, &json!({})).await;
        assert_eq!(status, 200, "{body}");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// The dropped-spans counter once it reaches `at_least` (export is batched).
async fn dropped_spans(users: &Shop, at_least: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..100 {
        let text = reqwest::get(format!("{}/metrics", users.url("users")))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        seen = text
            .lines()
            .find_map(|line| line.strip_prefix(DROPPED)?.trim().parse::<f64>().ok())
            .unwrap_or_default() as u64;
        if seen >= at_least {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{DROPPED} stayed at {seen}, below {at_least}");
}

#[tokio::test]
async fn a_collector_that_is_down_fails_no_call_and_its_spans_are_counted() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let users = Shop::serve_logged(
        "users",
        &["--trace-trust", "none", "--otlp-endpoint", &endpoint],
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    call_users(&users, 50).await;
    // One server span a call, each export refused at once.
    dropped_spans(&users, 50).await;
    // A second round after the first failed export: still counted.
    call_users(&users, 20).await;
    dropped_spans(&users, 70).await;

    let log = users.stop_for_log();
    let warnings = log.lines().filter(|line| line.contains(WARNING)).count();
    assert_eq!(warnings, 1, "said once, not per batch:\n{log}");
}

#[tokio::test]
async fn a_collector_that_never_answers_holds_no_more_than_the_queue() {
    // Takes connections and never answers: each export waits out its
    // timeout while spans keep coming.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let queue = 64;
    let users = Shop::serve_logged(
        "users",
        &["--trace-trust", "none", "--otlp-endpoint", &endpoint],
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", &queue.to_string()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
        ],
    )
    .await;
    let calls = 400;
    let slowest = call_users(&users, calls).await;
    // Not a speed target: a call that waited for the export would wait
    // out its 30 s timeout.
    assert!(
        slowest < Duration::from_secs(10),
        "slowest call {slowest:?}"
    );
    // At most a queue's worth waits and a batch (no larger than the
    // queue) is stuck in its export: every other span was dropped on end.
    dropped_spans(&users, calls - 2 * queue).await;
}
