//! Log lines name their trace: with traces on and every RPC logged, a
//! call's "rpc finished" line carries the trace it ran in and its own span
//! id. The line is written after the handler (the kit makes the call's trace
//! current for that line only, as most calls' line is filtered out), so
//! this checks the ids reach it. Traces go to an OTLP endpoint nobody
//! listens on: spans are made for real, their export fails unnoticed.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;

const CALLER_SPAN: &str = "00f067aa0ba902b7";

struct Users {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Users {
    async fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(["serve", "users", "--log-rpcs", "--trace-trust", "all"])
            .args(["--otlp-endpoint", "http://127.0.0.1:9"])
            .args(["--users-port", &port.to_string()])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shop");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                return Self {
                    child,
                    url,
                    _data: data,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("users did not answer on {url}");
    }

    /// Stops the service (SIGTERM, so its log is flushed) and returns what
    /// it logged.
    fn log(self) -> String {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(stopped.success());
        let output = self.child.wait_with_output().expect("wait");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

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
    let users = Users::start().await;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let path = format!("{}/shop.users.v1.UserService/GetPublicKeys", users.url);
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
    let log = users.log();

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
