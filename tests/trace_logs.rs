//! Log lines name their trace: with traces on and every RPC logged, a
//! call's "rpc finished" line carries the trace it ran in and its own span
//! id. The line is written after the handler (the kit makes the call's trace
//! current for that line only, as most calls' line is filtered out), so
//! this checks the ids reach it. Traces go to an OTLP endpoint nobody
//! listens on: spans are made for real, their export fails unnoticed.

mod launched;

use launched::Shop;
use serde_json::json;

const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The "rpc finished" line of the call that ran with `request_id`.
fn line_of<'a>(log: &'a str, request_id: &str) -> &'a str {
    log.lines()
        .find(|line| line.contains("rpc finished") && line.contains(request_id))
        .unwrap_or_else(|| panic!("no line for {request_id} in:\n{log}"))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
}

#[tokio::test]
async fn a_calls_line_names_its_trace_and_its_own_span() {
    let users = Shop::serve_logged(
        "users",
        &[
            "--log-rpcs",
            "--trace-trust",
            "all",
            "--otlp-endpoint",
            "http://127.0.0.1:9",
        ],
        &[],
    )
    .await;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let path = format!(
        "{}/shop.users.v1.UserService/GetPublicKeys",
        users.url("users")
    );
    for (request_id, traceparent) in [
        (
            "line-in-callers-trace",
            Some(format!("00-{trace_id}-{CALLER_SPAN}-01")),
        ),
        ("line-in-new-trace", None),
    ] {
        let mut headers = vec![("x-request-id", request_id)];
        if let Some(traceparent) = &traceparent {
            headers.push(("traceparent", traceparent));
        }
        let (status, body) =
            shop_kit::testing::call_json_with(&path, None, &headers, &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let log = users.stop_for_log();

    let continued = line_of(&log, "line-in-callers-trace");
    assert_eq!(field(continued, "trace_id"), Some(trace_id), "{continued}");
    let span = field(continued, "span_id").expect("a span id");
    assert_eq!(span.len(), 16, "{continued}");
    assert_ne!(span, CALLER_SPAN, "the server's own span: {continued}");

    let new = line_of(&log, "line-in-new-trace");
    let new_trace = field(new, "trace_id").expect("a trace id");
    assert_eq!(new_trace.len(), 32, "{new}");
    assert_ne!(new_trace, trace_id, "{new}");
}
