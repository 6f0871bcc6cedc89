//! connectrpc-axum alone: the echo service's generated Connect routes served
//! by plain axum, none of the kit's layers (no classification, limits,
//! deadlines, metrics, logs, CORS). What the chosen library costs by
//! itself, measured beside bare axum (`just bench-instructions library`):
//! the ceiling any layer on top of it can reach. (It uses the library's own
//! builder, which the generated code keeps to this crate: its handlers see
//! unchecked requests.)

use axum::Router;
use connectrpc_axum::{MakeServiceBuilder, prelude::*};

use crate::{
    echo,
    pb::{self, echo_service_connect::EchoServiceTonicCompatibleBuilder},
};

/// Connect (JSON and proto, POST) only: serving gRPC beside it on one port
/// is the kit's dispatch, which this peer leaves out.
pub fn router() -> Router {
    let (connect, _grpc) = EchoServiceTonicCompatibleBuilder::new()
        .echo(echo_handler)
        .ticks(|ConnectRequest(request)| super::kit::ticks(shop_kit::Valid(request)))
        .build();
    // The library's own assembly, with its defaults.
    MakeServiceBuilder::new().add_router(connect).build()
}

async fn echo_handler(
    ConnectRequest(request): ConnectRequest<pb::EchoRequest>,
) -> Result<ConnectResponse<pb::EchoResponse>, ConnectError> {
    Ok(ConnectResponse::new(echo::echo(request)))
}
