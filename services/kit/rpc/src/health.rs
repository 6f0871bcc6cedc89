//! Liveness and readiness: `GET /healthz` (the process answers), `GET
//! /readyz` (its dependencies answer, checked live; 503 once it drains),
//! and the standard `grpc.health.v1.Health` service kept in step with
//! readiness. Draining (SIGTERM) turns it NOT_SERVING at once, which every
//! `Watch` hears, so the shop's balancers stop sending calls before the
//! listener closes; at shutdown the `Watch` streams end, so they do not
//! hold the connection open.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use futures::{Stream, future::BoxFuture};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::Health,
};

use shop_kit_shutdown::Shutdown;

/// The name `grpc.health.v1` serves under.
pub(super) const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// How often the gRPC health status is refreshed from the readiness check
/// while it serves...
const GRPC_HEALTH_REFRESH: Duration = Duration::from_secs(5);
/// ...and while it does not: a service starting up (its peers not serving
/// yet) is taken into rotation moments after it is ready, not seconds.
const GRPC_HEALTH_REFRESH_NOT_SERVING: Duration = Duration::from_millis(100);
/// How long a readiness check may take before it counts as failed: an
/// answer within a probe's timeout (the Kubernetes manifests give 3 s),
/// rather than a probe that times out with nothing said.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Check = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// What "ready" means for one service.
#[derive(Clone)]
pub struct Readiness(Arc<Check>);

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readiness")
    }
}

impl Readiness {
    /// Ready whenever the process runs.
    pub fn always() -> Self {
        Self(Arc::new(|| Box::pin(async { Ok(()) })))
    }

    /// Ready while `check` says so (within a bound), e.g. while the
    /// service's database answers a ping (`db::ready_check`).
    pub fn when<F, Checked>(check: F) -> Self
    where
        F: Fn() -> Checked + Send + Sync + 'static,
        Checked: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(check())))
    }

    /// Also not ready until `started` has held once: a condition of
    /// start-up, such as each peer the service calls having an endpoint
    /// that serves (`client::each_serving`), so that its first calls find
    /// somewhere to go. Once it has held it is not asked again: a peer's
    /// later outage is for the client's breakers to answer, and must not
    /// take every caller of it out of rotation too.
    pub fn after<F>(self, started: F) -> Self
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        let held = Arc::new(AtomicBool::new(false));
        Self(Arc::new(move || {
            if !held.load(Ordering::Acquire) {
                if let Err(waiting) = started() {
                    return Box::pin(async move { Err(waiting) });
                }
                held.store(true, Ordering::Release);
            }
            (self.0)()
        }))
    }

    pub async fn check(&self) -> Result<(), String> {
        tokio::time::timeout(READY_CHECK_TIMEOUT, (self.0)())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {READY_CHECK_TIMEOUT:?}")))
    }
}

/// Readiness as a draining service answers it: not ready once draining.
#[derive(Clone)]
struct Ready {
    readiness: Readiness,
    shutdown: Shutdown,
}

impl Ready {
    async fn check(&self) -> Result<(), String> {
        if self.shutdown.is_draining() {
            return Err("draining".to_owned());
        }
        self.readiness.check().await
    }
}

/// The `/healthz` and `/readyz` routes.
pub fn routes(readiness: Readiness, shutdown: Shutdown) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Ready {
            readiness,
            shutdown,
        })
}

async fn readyz(State(ready): State<Ready>) -> (StatusCode, String) {
    match ready.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// The gRPC health service, its status already set from a first readiness
/// check (so no early caller sees it unknown), and the task that keeps it in
/// step with readiness until draining, then NOT_SERVING.
pub async fn grpc_health(
    services: Vec<String>,
    readiness: Readiness,
    shutdown: Shutdown,
) -> GrpcHealth {
    let ready = Ready {
        readiness,
        shutdown: shutdown.clone(),
    };
    let (status, _) = watch::channel(status_of(&ready).await);
    let status = Arc::new(status);
    let keeper = status.clone();
    shutdown.clone().spawn(async move {
        loop {
            let every = match *keeper.borrow() {
                ServingStatus::Serving => GRPC_HEALTH_REFRESH,
                _ => GRPC_HEALTH_REFRESH_NOT_SERVING,
            };
            tokio::select! {
                () = ready.shutdown.draining() => break,
                () = tokio::time::sleep(every) => {}
            }
            let now = status_of(&ready).await;
            keeper.send_if_modified(|known| std::mem::replace(known, now) != now);
        }
        keeper.send_replace(ServingStatus::NotServing);
    });
    GrpcHealth {
        services: Arc::new(services),
        status,
        shutdown,
    }
}

async fn status_of(ready: &Ready) -> ServingStatus {
    match ready.check().await {
        Ok(()) => ServingStatus::Serving,
        Err(_) => ServingStatus::NotServing,
    }
}

/// `grpc.health.v1.Health`: one status for the server and each of its
/// services (they live and drain together).
#[derive(Clone)]
pub struct GrpcHealth {
    services: Arc<Vec<String>>,
    status: Arc<watch::Sender<ServingStatus>>,
    shutdown: Shutdown,
}

impl GrpcHealth {
    fn knows(&self, service: &str) -> bool {
        service.is_empty() || self.services.iter().any(|s| s == service)
    }

    fn response(status: ServingStatus) -> HealthCheckResponse {
        HealthCheckResponse {
            status: status.into(),
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for GrpcHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        if !self.knows(service) {
            return Err(Status::not_found(format!("unknown service {service:?}")));
        }
        Ok(Response::new(Self::response(*self.status.borrow())))
    }

    type WatchStream = WatchStream;

    /// The status now, then each change, until the server shuts down.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        if !self.knows(&request.get_ref().service) {
            let unknown = Self::response(ServingStatus::ServiceUnknown);
            let stream: WatchStream = Box::pin(futures::stream::once(async move { Ok(unknown) }));
            return Ok(Response::new(stream));
        }
        let mut changes = self.status.subscribe();
        let shutdown = self.shutdown.clone();
        let stream: WatchStream = Box::pin(async_stream::stream! {
            let first = *changes.borrow_and_update();
            yield Ok(Self::response(first));
            loop {
                tokio::select! {
                    () = shutdown.requested() => break,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let now = *changes.borrow_and_update();
                        yield Ok(Self::response(now));
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_turns_watchers_not_serving_and_shutdown_ends_their_streams() {
        use futures::StreamExt;
        let shutdown = Shutdown::new();
        let health = grpc_health(
            vec!["shop.test.v1.Test".to_owned()],
            Readiness::always(),
            shutdown.clone(),
        )
        .await;
        let checked = health
            .check(Request::new(HealthCheckRequest {
                service: "shop.test.v1.Test".to_owned(),
            }))
            .await
            .expect("known");
        assert_eq!(checked.get_ref().status(), ServingStatus::Serving);
        let unknown = health
            .check(Request::new(HealthCheckRequest {
                service: "nope".to_owned(),
            }))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code(), tonic::Code::NotFound);

        let mut watched = health
            .watch(Request::new(HealthCheckRequest::default()))
            .await
            .expect("watch")
            .into_inner();
        let first = watched.next().await.expect("first").expect("ok");
        assert_eq!(first.status(), ServingStatus::Serving);
        let stopping = shutdown.clone();
        let drain = tokio::spawn(async move {
            stopping
                .drain_then_trigger(Duration::from_millis(300))
                .await;
        });
        let next = tokio::time::timeout(Duration::from_millis(200), watched.next())
            .await
            .expect("told at once")
            .expect("a message")
            .expect("ok");
        assert_eq!(next.status(), ServingStatus::NotServing);
        let ended = tokio::time::timeout(Duration::from_secs(2), watched.next())
            .await
            .expect("ends at shutdown");
        assert!(ended.is_none());
        drain.await.expect("join");
    }

    #[tokio::test]
    async fn a_start_up_condition_holds_readiness_back_once_then_is_not_asked() {
        use futures::StreamExt;
        let peer_serves = Arc::new(AtomicBool::new(false));
        let serves = peer_serves.clone();
        let readiness = Readiness::always().after(move || {
            if serves.load(Ordering::Acquire) {
                Ok(())
            } else {
                Err("no catalog endpoint serves yet".to_owned())
            }
        });
        assert_eq!(
            readiness.check().await,
            Err("no catalog endpoint serves yet".to_owned())
        );
        let shutdown = Shutdown::new();
        let health = grpc_health(Vec::new(), readiness.clone(), shutdown.clone()).await;
        let mut watched = health
            .watch(Request::new(HealthCheckRequest::default()))
            .await
            .expect("watch")
            .into_inner();
        let first = watched.next().await.expect("first").expect("ok");
        assert_eq!(first.status(), ServingStatus::NotServing);

        // Its watchers hear it serve moments after the condition holds.
        peer_serves.store(true, Ordering::Release);
        let next = tokio::time::timeout(Duration::from_secs(1), watched.next())
            .await
            .expect("told within moments")
            .expect("a message")
            .expect("ok");
        assert_eq!(next.status(), ServingStatus::Serving);

        // A later outage of the peer is not this service's readiness.
        peer_serves.store(false, Ordering::Release);
        assert_eq!(readiness.check().await, Ok(()));
        shutdown.trigger();
    }
}
