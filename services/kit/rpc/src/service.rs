//! One RPC service of a contract, ready to serve: its handlers as Connect
//! routes and a gRPC server, and the descriptors its rules, call policy,
//! REST routes and whether only the shop's services may call it are read
//! from. The route builders shop-kit-build generates make one
//! (`<Service>Routes::build`); [`crate::RpcServer::serve`] takes it, the only
//! way a service is served, so a service can never be served without the
//! contract that says what it allows.

use std::{collections::HashMap, convert::Infallible};

use axum::{
    Router,
    response::{IntoResponse, Response},
};
use http::Request;
use tonic::server::NamedService;
use tower::{Service, ServiceExt as _, util::BoxCloneSyncService};

/// A generated tonic server (`*ServiceServer`), as an [`RpcService`]
/// carries it.
pub trait GrpcServer:
    Service<
        Request<tonic::body::Body>,
        Error = Infallible,
        Response: IntoResponse,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<G> GrpcServer for G where
    G: Service<
            Request<tonic::body::Body>,
            Error = Infallible,
            Response: IntoResponse,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// A service's gRPC server (tonic's), as the edge calls it.
pub(crate) type Server = BoxCloneSyncService<Request<tonic::body::Body>, Response, Infallible>;

/// The gRPC servers of a server's services, by service name
/// (`package.Service`).
#[derive(Clone, Default)]
pub(crate) struct GrpcServers(HashMap<&'static str, Server, foldhash::fast::RandomState>);

impl GrpcServers {
    /// The server of the service named `name` (`package.Service`).
    pub(crate) fn get(&self, name: &str) -> Option<&Server> {
        self.0.get(name)
    }

    /// Serves `server`'s service.
    pub(crate) fn add<G: GrpcServer>(&mut self, server: G) -> &mut Self {
        let server = server.map_response(IntoResponse::into_response);
        self.0.insert(G::NAME, BoxCloneSyncService::new(server));
        self
    }
}

impl std::fmt::Debug for GrpcServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What adds a service's gRPC server to a server's, with that server's
/// largest request message.
pub(crate) type AddGrpc = Box<dyn FnOnce(&mut GrpcServers, usize) + Send>;

/// A service of the contract with its handlers (see the module).
pub struct RpcService {
    name: &'static str,
    descriptors: &'static [u8],
    connect: Router,
    /// Adds its gRPC server to a server's, with that server's largest
    /// request message.
    grpc: AddGrpc,
}

impl std::fmt::Debug for RpcService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RpcService {
    /// The same service described by other descriptors (a test serving one
    /// handler under contracts compiled with other options).
    #[cfg(feature = "testing")]
    pub fn described_by(mut self, descriptors: &'static [u8]) -> Self {
        self.descriptors = descriptors;
        self
    }

    /// Its full name, `package.Service`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn descriptors(&self) -> &'static [u8] {
        self.descriptors
    }

    /// Its Connect routes, and what adds its gRPC server to a server's.
    pub(crate) fn into_parts(self) -> (Router, AddGrpc) {
        (self.connect, self.grpc)
    }
}

/// For the route builders shop-kit-build generates, and nothing else.
#[doc(hidden)]
pub mod __generated {
    use super::{GrpcServer, GrpcServers, Router, RpcService};

    /// The service `G` (its gRPC server, tonic's), with its Connect routes
    /// `connect`, described by the encoded `FileDescriptorSet`
    /// `descriptors`; `limit` gives the gRPC server the kit's compression
    /// and a server's largest request message (a generated server's own
    /// methods, which no trait carries). The generated handlers are the
    /// ones that check every request against the contract's rules, which a
    /// hand-made server would skip: not an API (hidden, free to change);
    /// `testing::handmade` is the hatch for a contract not written for the
    /// kit.
    pub fn service<G: GrpcServer>(
        descriptors: &'static [u8],
        connect: Router,
        grpc: G,
        limit: fn(G, usize) -> G,
    ) -> RpcService {
        RpcService {
            name: G::NAME,
            descriptors,
            connect,
            grpc: Box::new(move |servers: &mut GrpcServers, max_request_bytes| {
                servers.add(limit(grpc, max_request_bytes));
            }),
        }
    }
}

/// Hatches for tests, behind the `testing` feature.
#[cfg(feature = "testing")]
pub mod testing {
    use super::{GrpcServer, Router, RpcService};

    /// A service of a contract not written for the kit (a conformance
    /// suite's), with hand-made handlers: its Connect routes `connect` and
    /// its tonic server `grpc`, which nothing checks against rules.
    pub fn handmade<G: GrpcServer>(
        descriptors: &'static [u8],
        connect: Router,
        grpc: G,
        limit: fn(G, usize) -> G,
    ) -> RpcService {
        super::__generated::service(descriptors, connect, grpc, limit)
    }
}
