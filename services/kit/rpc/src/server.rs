//! The one assembly every service is served by: Connect, gRPC and gRPC-Web
//! on one port, plus health, reflection, metrics and the shared layers.
//!
//! ```text
//!  request-id -> classify once (protocol, registered method or REST route:
//!  a `Call` every later step reads) -> CORS -> observe (metrics, log line)
//!  -> one message for unary methods -> dispatch:
//!    ├─ a REST route (google.api.http) -> its RPC's Connect JSON request
//!    │   -> the Connect stack below; the answer back as JSON or events
//!    ├─ a method this server registered, by protocol:
//!    │   ├─ gRPC, gRPC-Web -> JSON<->proto (+json codecs) -> gRPC-Web translation
//!    │   │                    -> heartbeats -> grpc-timeout -> size status -> tonic routes
//!    │   └─ Connect        -> heartbeats -> encoding check, response metadata, error
//!    │                        corrections (one layer) -> connectrpc-axum (limits,
//!    │                        gzip, connect-timeout-ms) -> Connect routes (POST + GET)
//!    └─ anything else: /healthz /readyz /metrics; health and reflection
//!       (tonic's own, bridged for Connect); unknown paths -> by content type
//!       to the same two stacks, which answer in their protocol
//! ```

use std::{convert::Infallible, sync::Arc};

use axum::{Extension, Router, body::Body, response::IntoResponse, routing::get};
use connectrpc_axum::{CompressionConfig, MakeServiceBuilder, tonic::ContentTypeSwitch};
use http::{Request, header};
use prost_reflect::DescriptorPool;
use tonic::server::NamedService;
use tower::{Layer, Service, ServiceBuilder, util::MapRequestLayer};
use tower_http::request_id::PropagateRequestIdLayer;

use super::{
    admission::AdmissionLayer,
    classify::{self, Methods, MethodsError},
    config::HttpConfig,
    connect_bridge::ConnectBridge,
    connect_edge::ConnectEdgeLayer,
    cors,
    deadline::GrpcDeadlineLayer,
    dispatch::Dispatch,
    grpc_json::{self, GrpcJsonLayer},
    grpc_limits::GrpcLimitStatusLayer,
    health::{self, HEALTH_SERVICE, Readiness},
    heartbeat::HeartbeatLayer,
    observe::ObserveLayer,
    policy,
    rate_class::{RateClass, RateClasses},
    request_id,
    response_metadata::ResponseMetadataLayer,
    single_message::SingleMessageLayer,
};
use shop_kit_auth::TokenVerifier;
use shop_kit_observe::metrics::Metrics;
use shop_kit_rest::{RestRoutes, RouteError};
use shop_kit_shutdown::Shutdown;

use crate::grpc_defaults;

/// Connect responses smaller than this are sent uncompressed.
const COMPRESS_MIN_BYTES: usize = 1024;
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Errors assembling a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("reflection descriptors are invalid: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("a google.api.http rule cannot be served: {0}")]
    Rest(#[from] RouteError),
    #[error(transparent)]
    Methods(#[from] MethodsError),
}

/// A generated tonic server (`*ServiceServer`), as [`RpcServer`] serves it.
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

/// Collects a service's Connect routes and tonic servers, then assembles
/// them into one router with the kit's layers.
pub struct RpcServer {
    http: HttpConfig,
    readiness: Readiness,
    connect: Router,
    grpc: tonic::service::Routes,
    service_names: Vec<String>,
    /// Services only the shop's own services call: never allowed by CORS.
    internal_services: Vec<String>,
    descriptor_sets: Vec<&'static [u8]>,
    verifier: Option<TokenVerifier>,
    http_routes: Router,
    /// The process's metrics, served at `/metrics` (unless a port of their
    /// own serves them).
    metrics: Option<Metrics>,
    around: Vec<Box<dyn FnOnce(Router) -> Router + Send>>,
    rate_classes: RateClasses,
    /// Whether every server stream must carry a heartbeat (see
    /// [`Self::streams_without_heartbeats`]).
    heartbeats: bool,
}

impl RpcServer {
    pub fn new(http: HttpConfig, readiness: Readiness) -> Self {
        Self {
            http,
            readiness,
            connect: Router::new(),
            grpc: tonic::service::Routes::default(),
            service_names: Vec::new(),
            internal_services: Vec::new(),
            descriptor_sets: Vec::new(),
            verifier: None,
            http_routes: Router::new(),
            metrics: None,
            around: Vec::new(),
            rate_classes: RateClasses::default(),
            heartbeats: true,
        }
    }

    /// Serves server streams whose response has no heartbeat field (see
    /// `crate::heartbeat`), sending them none: only for a contract that is
    /// not yours to change (a conformance suite's, a benchmark's shared
    /// with other stacks). Without this, such a stream is a start-up error.
    pub fn streams_without_heartbeats(mut self) -> Self {
        self.heartbeats = false;
        self
    }

    /// What "ready" means for it (`/readyz`, `grpc.health.v1`).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves `metrics` at `/metrics` beside the RPCs, unless
    /// `--metrics-port` gives them a port of their own.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Plain HTTP routes served beside the RPCs (e.g. a JWK set).
    pub fn http_routes(mut self, routes: Router) -> Self {
        self.http_routes = self.http_routes.merge(routes);
        self
    }

    /// Wraps the assembled router (e.g. in the gateway's rate limits), out
    /// of all the kit's layers; wrappers apply in the order given.
    pub fn around(mut self, wrap: impl FnOnce(Router) -> Router + Send + 'static) -> Self {
        self.around.push(Box::new(wrap));
        self
    }

    /// The limiter the methods whose contract names the rate class `class`
    /// (`kit.policy.v1` `rate_class`) count against, before any handler
    /// code runs (see [`crate::rate_class`]).
    pub fn rate_class(mut self, class: &str, limiter: Arc<dyn RateClass>) -> Self {
        self.rate_classes.insert(class.to_owned(), limiter);
        self
    }

    /// Makes the `Caller` extractor available to handlers, verifying tokens
    /// with `verifier`.
    pub fn verify_tokens(mut self, verifier: TokenVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Registers one RPC service: its Connect router (POST, and GET where
    /// the contract allows it) and its tonic server, as the generated
    /// `*Routes::build` gives them.
    pub fn service<G: GrpcServer>(mut self, connect: Router, grpc: G) -> Self {
        self.connect = self.connect.merge(connect);
        self.grpc = self.grpc.add_service(grpc);
        self.service_names.push(G::NAME.to_owned());
        self
    }

    /// Registers an internal RPC service, as [`Self::service`]: one only
    /// the shop's own services call (their handlers check the caller), so
    /// a browser's request for it is refused outright, preflight or not.
    pub fn internal_service<G: GrpcServer>(mut self, connect: Router, grpc: G) -> Self {
        self.internal_services.push(G::NAME.to_owned());
        self.service(connect, grpc)
    }

    /// Adds an encoded `FileDescriptorSet` that reflection serves.
    pub fn descriptors(mut self, file_descriptor_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(file_descriptor_set);
        self
    }

    /// Assembles the router. Checks readiness once for `grpc.health.v1`,
    /// and spawns the task that keeps it in step until `shutdown`.
    pub async fn into_router(self, shutdown: &Shutdown) -> Result<Router, ServerError> {
        let health_server = tonic_health::pb::health_server::HealthServer::new(
            health::grpc_health(
                self.service_names.clone(),
                self.readiness.clone(),
                shutdown.clone(),
            )
            .await,
        );

        let mut descriptor_sets = self.descriptor_sets.clone();
        descriptor_sets.push(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let descriptors = grpc_json::descriptor_pool(&descriptor_sets);
        let rest = self.rest_routes_in(&descriptors)?;
        let reflection_v1 = self.reflection_builder().build_v1()?;
        let reflection_v1alpha = self.reflection_builder().build_v1alpha()?;
        let grpc_routes = self
            .grpc
            .add_service(grpc_defaults!(health_server, self.http))
            .add_service(grpc_defaults!(reflection_v1, self.http))
            .add_service(grpc_defaults!(reflection_v1alpha, self.http))
            .prepare();
        // The server's own methods go straight to their stack; health and
        // reflection (tonic's only) through the routes that bridge them.
        let methods = Methods::new(
            &descriptors,
            self.service_names
                .iter()
                .map(|name| (name.as_str(), true))
                .chain([(HEALTH_SERVICE, false)]),
            [
                (REFLECTION_V1, "ServerReflectionInfo"),
                (REFLECTION_V1ALPHA, "ServerReflectionInfo"),
            ],
            rest,
            &self.rate_classes,
            self.heartbeats,
        )?;
        let admission = AdmissionLayer::new(
            self.service_names
                .first()
                .map_or("unnamed", |name| classify::leak(name.clone())),
            self.http.admission(),
            methods.len(),
        );
        // gRPC of proto, as tonic takes it; the other codecs and gRPC-Web
        // are translated to it first.
        let heartbeat_every = self.http.stream_heartbeat();
        let grpc_proto = ServiceBuilder::new()
            .layer(HeartbeatLayer::grpc(heartbeat_every))
            .layer(GrpcDeadlineLayer)
            .layer(GrpcLimitStatusLayer)
            .layer(ResponseMetadataLayer)
            .layer(connectrpc_axum::tonic::FromRequestPartsLayer::new())
            .service(grpc_routes);
        let grpc = ServiceBuilder::new()
            .layer(GrpcJsonLayer::new(self.http.max_request_bytes))
            .layer(tonic_web::GrpcWebLayer::new())
            .service(grpc_proto.clone());

        // The kit's Connect work wraps the library's router once, in one
        // layer (per-route layers cost a boxed route and a future each, on
        // every call), and `with_state` turns every handler into a ready
        // route now rather than on every request.
        let connect = HeartbeatLayer::connect(heartbeat_every).layer(
            ConnectEdgeLayer::new(self.http.max_request_bytes).layer(
                MakeServiceBuilder::new()
                    .receive_max_bytes(self.http.max_request_bytes)
                    // Like connect-go: compressing tiny messages costs more than it saves.
                    .compression(CompressionConfig::new(COMPRESS_MIN_BYTES))
                    .add_router(self.connect)
                    .build()
                    .with_state(()),
            ),
        );

        // tonic's own services speak no Connect: bridge them.
        let mut bridged = Router::new();
        for name in [HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA] {
            bridged = bridged.route_service(
                &format!("/{name}/{{*method}}"),
                ConnectBridge::new(grpc.clone(), self.http.max_request_bytes),
            );
        }

        let mut routes = Router::new()
            .merge(health::routes(self.readiness, shutdown.clone()))
            .merge(bridged)
            .merge(self.http_routes);
        // Unless a port of their own serves them (see `metrics_routes`).
        if let Some(metrics) = self.metrics.filter(|_| self.http.metrics_port.is_none()) {
            routes = routes.merge(metrics_routes(metrics));
        }
        let routes = routes
            .fallback_service(ContentTypeSwitch::new(grpc.clone(), connect.clone()))
            .with_state(());
        // The kit's layers, outermost first, around everything once.
        let served = ServiceBuilder::new()
            .option_layer(self.verifier.map(Extension))
            .layer(MapRequestLayer::new(request_id::drop_unsafe))
            // Once, for every step after: the protocol and the method, and
            // how long the call may take as its contract says (who may
            // call is checked with the request, see `valid`).
            .layer(MapRequestLayer::new(move |mut request: Request<Body>| {
                let call = methods.classify(&mut request);
                policy::give_deadline(&mut request, call);
                request
            }))
            // The client's id comes back on the response (a failed call
            // without one gets one made up, see observe).
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(cors::layer(
                &self.http.cors_origins,
                &self.internal_services,
            ))
            .layer(ObserveLayer)
            .layer(SingleMessageLayer::new(self.http.max_request_bytes))
            // After the request is read whole: a slow sender holds no place.
            .layer(admission)
            .service(Dispatch::new(
                grpc_proto,
                grpc,
                connect,
                routes,
                self.http.max_request_bytes,
            ));
        let router = Router::new().fallback_service(served);
        Ok(self
            .around
            .into_iter()
            .fold(router, |router, wrap| wrap(router)))
    }

    /// The REST routes this server will serve: those its public services
    /// declare (internal ones are called by the shop's services only, over
    /// RPC). For routes of its own around the server (pages) to step aside.
    pub fn rest_routes(&self) -> Result<RestRoutes, ServerError> {
        self.rest_routes_in(&grpc_json::descriptor_pool(&self.descriptor_sets))
    }

    fn rest_routes_in(&self, descriptors: &DescriptorPool) -> Result<RestRoutes, ServerError> {
        let public = self
            .service_names
            .iter()
            .filter(|name| !self.internal_services.contains(name))
            .map(String::as_str);
        Ok(RestRoutes::from_pool(descriptors, public)?)
    }

    fn reflection_builder(&self) -> tonic_reflection::server::Builder<'static> {
        // Both reflection versions are listed by both servers, so both
        // carry both descriptors (clients resolve every listed service).
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            // The error details (google.rpc.ErrorInfo, RetryInfo, ...), so
            // grpcurl and buf curl can decode what a refusal carries.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
        for set in &self.descriptor_sets {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        let names = self.service_names.iter().map(String::as_str).chain([
            HEALTH_SERVICE,
            REFLECTION_V1,
            REFLECTION_V1ALPHA,
        ]);
        for name in names {
            builder = builder.with_service_name(name);
        }
        builder
    }
}

/// `/metrics` alone, for a listener of its own (`--metrics-port`): plain
/// HTTP a scraper reaches without the services' certificates.
pub fn metrics_routes(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        }),
    )
}
