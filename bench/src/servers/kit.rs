//! Our stack: the echo service behind `shop_kit::RpcServer`, exactly as a
//! shop service is served (its generated routes: checked requests, Connect
//! POST + GET, gRPC, gRPC-Web; every layer of the kit on).

use std::pin::Pin;

use connectrpc_axum::prelude::*;
use futures::Stream;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown, Valid,
    observe::metrics::Metrics,
    rpc::{App, ServerError},
};

use crate::{echo, pb};

type Ticks = Pin<Box<dyn Stream<Item = Result<pb::TicksResponse, ConnectError>> + Send>>;

/// The kit's settings for the echo server: a shop service's defaults, a
/// short shutdown grace; `SHOP_MAX_CALLS_IN_FLIGHT` as a service reads it
/// (0: admission control off, to count what it costs).
pub fn http() -> HttpConfig {
    let defaults = HttpConfig::default();
    HttpConfig {
        shutdown_grace_secs: 1,
        max_calls_in_flight: std::env::var("SHOP_MAX_CALLS_IN_FLIGHT")
            .ok()
            .and_then(|max| max.parse().ok())
            .unwrap_or(defaults.max_calls_in_flight),
        ..defaults
    }
}

pub async fn router(shutdown: &Shutdown) -> Result<App, ServerError> {
    let http = http();
    let echo = pb::EchoServiceRoutes::new()
        .echo(echo)
        .ticks(ticks)
        .build(());
    RpcServer::new(http, Readiness::always())
        // The echo contract is every stack's: no kit option or field in it.
        .foreign_contract()
        .metrics(Metrics::install())
        .serve(echo)
        .into_app(shutdown)
        .await
}

async fn echo(
    Valid(request): Valid<pb::EchoRequest>,
) -> Result<ConnectResponse<pb::EchoResponse>, ConnectError> {
    Ok(ConnectResponse::new(echo::echo(request)))
}

pub(super) async fn ticks(
    Valid(request): Valid<pb::TicksRequest>,
) -> Result<ConnectResponse<StreamBody<Ticks>>, ConnectError> {
    let ticks = echo::ticks(request)
        .map_err(|error| ConnectError::new(Code::InvalidArgument, error.to_string()))?;
    let stream: Ticks = Box::pin(futures::stream::iter(ticks.map(Ok)));
    Ok(ConnectResponse::new(StreamBody::new(stream)))
}
