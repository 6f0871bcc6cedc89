//! The kit is measured as it ships: 1% of its calls traced (the production
//! overlay's `OTEL_TRACES_SAMPLER_ARG`), their spans exported over
//! OTLP/HTTP to a collector in this process that takes them and forgets
//! them, so the server pays its whole share of tracing and nothing else's.
//! A run that sets `OTEL_TRACES_SAMPLER` itself (`always_off`, or another
//! share with its own collector) is left as it says.

use axum::{Router, http::header::CONTENT_TYPE, routing::post};
use tokio::{net::TcpListener, process::Command, sync::OnceCell};

/// The share of calls the production overlay traces.
pub const SHIPPED_SAMPLING: &str = "0.01";

/// Has `command` (the kit's server) trace as it ships, unless the
/// environment chose its own sampling.
pub async fn as_shipped(command: &mut Command) -> anyhow::Result<()> {
    if std::env::var_os("OTEL_TRACES_SAMPLER").is_some() {
        return Ok(());
    }
    let endpoint = null_collector().await?;
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_TRACES_SAMPLER", "traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", SHIPPED_SAMPLING);
    Ok(())
}

/// The collector's address, started on first use: it answers every export
/// with an empty success, as an OTLP/HTTP collector does.
async fn null_collector() -> anyhow::Result<&'static str> {
    static ENDPOINT: OnceCell<String> = OnceCell::const_new();
    let endpoint = ENDPOINT
        .get_or_try_init(|| async {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let address = listener.local_addr()?;
            let forget = Router::new().route(
                "/v1/traces",
                post(|| async { ([(CONTENT_TYPE, "application/x-protobuf")], "") }),
            );
            tokio::spawn(async move { axum::serve(listener, forget).await });
            anyhow::Ok(format!("http://{address}"))
        })
        .await?;
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn the_collector_takes_an_export_and_answers_success() {
        let endpoint = null_collector().await.expect("started");
        let address = endpoint.trim_start_matches("http://");
        let mut connection = tokio::net::TcpStream::connect(address)
            .await
            .expect("connected");
        let export = b"POST /v1/traces HTTP/1.1\r\nhost: collector\r\n\
            content-type: application/x-protobuf\r\ncontent-length: 2\r\n\
            connection: close\r\n\r\n\x0a\x00";
        connection.write_all(export).await.expect("sent");
        let mut answer = String::new();
        connection
            .read_to_string(&mut answer)
            .await
            .expect("answered");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains("content-type: application/x-protobuf"),
            "{answer}"
        );
    }
}
