//! Test helpers: a fresh database per test, and one request over every
//! protocol ([`refusals`]). SQLite in a temporary folder by default; with `SHOP_TEST_DATABASE_URL=postgres://user:pw@host/db` (a
//! role that may create databases), a new PostgreSQL database per test, so
//! the same tests run on both engines (`just test-postgres`).

pub mod refusals;

use sea_orm::{ConnectionTrait, Database};

/// Where to find the PostgreSQL server the tests may use.
pub const TEST_DATABASE_URL: &str = "SHOP_TEST_DATABASE_URL";

/// A database for one test; a SQLite folder is removed when dropped.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new, empty database for `service`'s tests.
    pub async fn new(service: &str) -> Self {
        match std::env::var(TEST_DATABASE_URL) {
            Ok(server) if !server.is_empty() => Self::postgres(&server, service).await,
            _ => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = shop_kit_db::sqlite_url(dir.path(), service);
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
        }
    }

    async fn postgres(server: &str, service: &str) -> Self {
        let name = format!("test_{service}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(server)
            .await
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL}={server}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let (base, query) = server
            .split_once('?')
            .map_or((server, None), |(b, q)| (b, Some(q)));
        let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
        let url = match query {
            Some(query) => format!("{prefix}/{name}?{query}"),
            None => format!("{prefix}/{name}"),
        };
        Self { url, _dir: None }
    }

    /// Whether this test runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// Calls a Connect unary method with JSON over HTTP/1.1, with a bearer
/// token if given; returns the HTTP status and the JSON body.
pub async fn call_json(
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    call_json_with(url, token, &[], body).await
}

/// As [`call_json`], with extra request headers.
pub async fn call_json_with(
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The `google.rpc.ErrorInfo` detail of a Connect JSON error body, as
/// `(reason, domain)`: what a client branches on.
pub fn error_info(error: &serde_json::Value) -> Option<(String, String)> {
    use base64::Engine as _;
    use prost::Message as _;
    let detail = error["details"]
        .as_array()?
        .iter()
        .find(|detail| detail["type"] == "google.rpc.ErrorInfo")?;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(detail["value"].as_str()?.trim_end_matches('='))
        .ok()?;
    let info = shop_kit_rpc::connect_errors::ErrorInfo::decode(bytes.as_slice()).ok()?;
    Some((info.reason, info.domain))
}

/// The `google.rpc.ErrorInfo` detail of a gRPC status (carried in
/// `grpc-status-details-bin`), as `(reason, domain)`.
pub fn grpc_error_info(status: &tonic::Status) -> Option<(String, String)> {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info()?;
    Some((info.reason, info.domain))
}

/// Every event `service` has recorded in its outbox, oldest first.
pub async fn outbox_events(
    db: &sea_orm::DatabaseConnection,
    service: &str,
) -> Vec<shop_kit_events::Event> {
    shop_kit_events::Outbox::new(service)
        .recorded(db, service)
        .await
        .expect("read the outbox")
        .into_iter()
        .map(|(event, _)| event)
        .collect()
}

/// The subscriber of a test process (install it first thing, before any
/// other): warnings to the test's captured output, and traces on, sent to
/// an OTLP endpoint nobody listens on. Spans are made and their context
/// propagated for real (into events, sagas, calls); their export fails and
/// is counted. Idempotent; where another subscriber got there first,
/// traces stay off.
pub fn traces_on() {
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };

    use shop_kit_observe::traces::{self, TraceConfig, TraceGuard};
    static TRACES: std::sync::OnceLock<Option<TraceGuard>> = std::sync::OnceLock::new();
    TRACES.get_or_init(|| {
        let config = TraceConfig {
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            ..TraceConfig::default()
        };
        let (tracer, guard) =
            traces::install(&config, &shop_kit_observe::metrics::Metrics::install())
                .ok()
                .flatten()?;
        tracing_subscriber::registry()
            .with(
                fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::new("warn")),
            )
            .with(shop_kit_observe::telemetry::span_layer(tracer))
            .try_init()
            .is_ok()
            .then_some(guard)
    });
}
