//! Our stack: the echo service behind `shop_kit::RpcServer`, exactly as a
//! shop service is served (its generated routes: checked requests, Connect
//! POST + GET, gRPC, gRPC-Web; every layer of the kit on).

use std::pin::Pin;

use axum::Router;
use connectrpc_axum::prelude::*;
use futures::Stream;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown, Valid, observe::metrics::Metrics, rpc::ServerError,
};

use crate::{echo, pb};

type Ticks = Pin<Box<dyn Stream<Item = Result<pb::TicksResponse, ConnectError>> + Send>>;

/// The kit's settings for the echo server: a shop service's defaults, a
/// short shutdown grace.
pub fn http() -> HttpConfig {
    HttpConfig {
        shutdown_grace_secs: 1,
        ..HttpConfig::default()
    }
}

pub async fn router(shutdown: &Shutdown) -> Result<Router, ServerError> {
    let http = http();
    let (connect, grpc) = pb::EchoServiceRoutes::new()
        .echo(echo)
        .ticks(ticks)
        .build(());
    RpcServer::new(http.clone(), Readiness::always())
        .metrics(Metrics::install())
        .service(connect, shop_kit::grpc_defaults!(grpc, http))
        .descriptors(pb::DESCRIPTORS)
        .into_router(shutdown)
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
