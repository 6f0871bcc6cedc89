//! connect-rust-peer: a benchmark peer for `just bench`, bench.v1.EchoService
//! on connect-rust (the connectrpc crate, with its own code generator):
//! Connect, gRPC and gRPC-Web over cleartext HTTP/1.1 and HTTP/2, with the
//! same semantics as the other servers.

use connectrpc::{ConnectRpcService, RequestContext, Response, ServiceRequest, ServiceResult};

mod proto {
    connectrpc::include_generated!();
}

use proto::bench::v1::*;

/// The most messages Ticks streams.
const MAX_TICKS: i32 = 1000;

struct Echo;

// Concrete return types, as connect-rust's own examples write them.
#[allow(refining_impl_trait)]
impl EchoService for Echo {
    async fn echo(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, EchoRequest>,
    ) -> ServiceResult<EchoResponse> {
        Response::ok(EchoResponse {
            message: request.message.to_owned(),
            number: request.number,
            tags: request.tags.iter().map(|tag| (*tag).to_owned()).collect(),
            ..Default::default()
        })
    }

    async fn ticks(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, TicksRequest>,
    ) -> ServiceResult<connectrpc::ServiceStream<TicksResponse>> {
        let count = request.count;
        if !(0..=MAX_TICKS).contains(&count) {
            return Err(connectrpc::ConnectError::invalid_argument(
                "count must be between 0 and 1000",
            ));
        }
        let message = request.message.to_owned();
        let ticks = futures::stream::iter((0..count).map(move |index| {
            Ok(TicksResponse {
                index,
                message: message.clone(),
                ..Default::default()
            })
        }));
        Response::stream_ok(ticks)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port = std::env::args()
        .skip_while(|arg| arg != "--port")
        .nth(1)
        .unwrap_or_else(|| "9096".to_owned());
    let service = ConnectRpcService::new(EchoServiceServer::new(Echo));
    let bound = connectrpc::server::Server::bind(format!("127.0.0.1:{port}")).await?;
    eprintln!("connect-rust peer listening on {}", bound.local_addr()?);
    tokio::select! {
        served = bound.serve_with_service(service) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
