//! A second way to the catalog, for the client under test to see as
//! another replica: a proxy on its own port that forwards every call (the
//! health watch included) and counts the catalog calls it forwards, slowed
//! or failing as the run asks. Its way on is the kit's client stack, with
//! no policy of its own (only a call that never left is sent again).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State};
use shop_kit::client::{Peer, PeerPolicy};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The calls counted: the catalog's public reads.
const COUNTED: &str = "/shop.catalog.v1.CatalogService/";

/// What is wrong with the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every `nth` catalog call answered `by` later: a tail of slow
    /// calls, which the balancer cannot see coming (an endpoint slow on
    /// every call it learns to avoid, and then shows nothing).
    SlowEvery {
        nth: u64,
        by: Duration,
    },
    /// Every other catalog call answered `unavailable`, not forwarded.
    FailHalf,
}

pub struct Endpoint {
    pub addr: SocketAddr,
    calls: Arc<AtomicU64>,
    stop: CancellationToken,
}

struct Forward {
    peer: Peer,
    fault: Fault,
    calls: Arc<AtomicU64>,
}

impl Endpoint {
    /// A proxy to the catalog at `catalog` with `fault`.
    pub async fn start(catalog: SocketAddr, fault: Fault) -> anyhow::Result<Self> {
        let peer = Peer::at(
            "catalog-behind-proxy",
            catalog,
            PeerPolicy {
                // The health watch is a stream that lasts.
                timeout: Duration::from_secs(3600),
                max_in_flight: 100_000,
                ..PeerPolicy::default()
            },
        );
        let calls = Arc::new(AtomicU64::new(0));
        let forward = Arc::new(Forward {
            peer,
            fault,
            calls: calls.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let router = Router::new().fallback(forward_call).with_state(forward);
        let stopping = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopping.cancelled_owned())
                .await;
        });
        Ok(Self { addr, calls, stop })
    }

    /// Catalog calls that reached it.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward_call(
    State(forward): State<Arc<Forward>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    if request.uri().path().starts_with(COUNTED) {
        let n = forward.calls.fetch_add(1, Ordering::Relaxed);
        match forward.fault {
            Fault::None => {}
            Fault::SlowEvery { nth, by } if n.is_multiple_of(nth.max(1)) => {
                tokio::time::sleep(by).await;
            }
            Fault::SlowEvery { .. } => {}
            Fault::FailHalf if !n.is_multiple_of(2) => {
                return failed(tonic::Status::unavailable(
                    "this replica fails every other call",
                ));
            }
            Fault::FailHalf => {}
        }
    }
    let (head, body) = request.into_parts();
    let request = http::Request::from_parts(head, tonic::body::Body::new(body));
    match forward.peer.clone().oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(error) => failed(tonic::Status::unavailable(error.to_string())),
    }
}

/// `status` as a trailers-only answer.
fn failed(status: tonic::Status) -> axum::response::Response {
    status.into_http::<axum::body::Body>()
}
