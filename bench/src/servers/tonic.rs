//! A plain tonic server (gRPC only): what a Rust user would pick for gRPC
//! without Connect.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use crate::{
    echo,
    pb::{self, echo_service_server::EchoServiceServer},
};

type Ticks = Pin<Box<dyn Stream<Item = Result<pb::TicksResponse, Status>> + Send>>;

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl pb::echo_service_server::EchoService for Echo {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(echo::echo(request.into_inner())))
    }

    type TicksStream = Ticks;

    async fn ticks(
        &self,
        request: Request<pb::TicksRequest>,
    ) -> Result<Response<Self::TicksStream>, Status> {
        let ticks = echo::ticks(request.into_inner())
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            ticks.map(Ok),
        ))))
    }
}

/// Serves until the process is stopped; over TLS (tonic's own, rustls on
/// ring) with `tls` (certificate, key PEM files).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> anyhow::Result<()> {
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        let identity =
            tonic::transport::Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
        builder =
            builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    builder
        .tcp_nodelay(true)
        .add_service(EchoServiceServer::new(Echo))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
