//! Where the services send their traces in the production set-up: an OTLP/HTTP
//! receiver on loopback that counts what it is sent and keeps nothing, so
//! the export costs the services what it would in production.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{Router, extract::State, http::header, routing::post};
use bytes::Bytes;

/// The receiver, running until dropped.
pub struct Sink {
    pub endpoint: String,
    received: Arc<Received>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Received {
    batches: AtomicU64,
    bytes: AtomicU64,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let received: Arc<Received> = Arc::default();
        let router = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            endpoint,
            received,
            task,
        })
    }

    /// (batches, bytes) received so far.
    pub fn received(&self) -> (u64, u64) {
        (
            self.received.batches.load(Ordering::Relaxed),
            self.received.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An empty ExportTraceServiceResponse: everything accepted.
async fn receive(
    State(received): State<Arc<Received>>,
    body: Bytes,
) -> ([(header::HeaderName, &'static str); 1], Bytes) {
    received.batches.fetch_add(1, Ordering::Relaxed);
    received
        .bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Bytes::new(),
    )
}
