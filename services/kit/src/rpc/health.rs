//! Liveness and readiness: `GET /healthz` (the process answers), `GET
//! /readyz` (its dependencies answer, checked live), and the standard
//! `grpc.health.v1.Health` service kept in step with readiness.

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use futures::future::BoxFuture;
use tonic_health::{ServingStatus, pb::health_server::HealthServer, server::HealthReporter};

use crate::shutdown::Shutdown;

/// How often the gRPC health status is refreshed from the readiness check.
const GRPC_HEALTH_REFRESH: Duration = Duration::from_secs(5);

type Check = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// What "ready" means for one service.
#[derive(Clone)]
pub struct Readiness(Arc<Check>);

impl Readiness {
    /// Ready whenever the process runs.
    pub fn always() -> Self {
        Self(Arc::new(|| Box::pin(async { Ok(()) })))
    }

    /// Ready while the service's database answers a ping.
    #[cfg(feature = "db")]
    pub fn database(db: sea_orm::DatabaseConnection) -> Self {
        Self(Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await.map_err(|e| format!("database: {e}")) })
        }))
    }

    pub async fn check(&self) -> Result<(), String> {
        (self.0)().await
    }
}

/// The `/healthz` and `/readyz` routes.
pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, String) {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

/// The gRPC health reporter, with every service's status already set from
/// a first readiness check (so no early caller sees NOT_FOUND), and the task
/// that keeps it in step with readiness until shutdown, then reports
/// NOT_SERVING so balancers drain the instance.
pub async fn grpc_health(
    services: Vec<String>,
    readiness: Readiness,
    shutdown: Shutdown,
) -> HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, server) = tonic_health::server::health_reporter();
    let names: Vec<String> = std::iter::once(String::new()).chain(services).collect();
    report(&reporter, &names, &readiness).await;
    shutdown.clone().spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.requested() => break,
                () = tokio::time::sleep(GRPC_HEALTH_REFRESH) => {}
            }
            report(&reporter, &names, &readiness).await;
        }
        for name in &names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    });
    server
}

async fn report(reporter: &HealthReporter, names: &[String], readiness: &Readiness) {
    let status = match readiness.check().await {
        Ok(()) => ServingStatus::Serving,
        Err(_) => ServingStatus::NotServing,
    };
    for name in names {
        reporter.set_service_status(name, status).await;
    }
}
