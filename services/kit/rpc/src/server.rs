//! The one assembly every service is served by: Connect, gRPC and gRPC-Web
//! on one port, plus health, reflection, metrics and the shared layers.
//! Every request passes the same steps (docs/kit.md, "One pipeline per
//! call"), up to the dispatch as one service (`pipeline`):
//!
//! ```text
//!  service scope -> request id -> classify once (protocol, the method or
//!  REST route, its deadline: a `Call` every later step reads) -> request
//!  id back -> CORS -> observe (metrics, log line, span) -> the service's
//!  wraps -> one message for unary methods -> admission (no such method;
//!  who may call, how often, whether there is room) -> the call's context
//!  (deadline, caller's token; a stream's body too) -> dispatch:
//!    ├─ a REST route (google.api.http) -> its RPC's Connect JSON request
//!    │   -> the Connect stack below; the answer back as JSON or events
//!    ├─ a method this server serves, by protocol:
//!    │   ├─ gRPC, gRPC-Web -> JSON<->proto (+json codecs) -> gRPC-Web translation
//!    │   │                    -> heartbeats -> grpc-timeout -> size status -> tonic routes
//!    │   └─ Connect        -> the Connect edge (encoding check, response metadata,
//!    │                        error corrections, heartbeats) -> connectrpc-axum (limits,
//!    │                        gzip, connect-timeout-ms) -> Connect routes (POST + GET)
//!    │   then the generated handler: the shared secret (`shop_secret`), the
//!    │   request's rules, the handler
//!    └─ anything else: /healthz /readyz /metrics; health and reflection
//!       (tonic's own, bridged for Connect); plain routes (`http_route`);
//!       unknown paths -> by content type to the same two stacks, which
//!       answer in their protocol
//! ```

use std::sync::Arc;

use axum::{
    Router,
    routing::{MethodRouter, get},
};
use connectrpc_axum::{CompressionConfig, MakeServiceBuilder, tonic::ContentTypeSwitch};
use http::header;
use prost_reflect::DescriptorPool;
use tower::ServiceBuilder;

use super::{
    admission::Admission,
    app::App,
    classify::{self, Methods, MethodsError},
    config::HttpConfig,
    connect_bridge::ConnectBridge,
    connect_edge::ConnectEdge,
    cors,
    dispatch::Dispatch,
    grpc_edge::GrpcEdge,
    grpc_json::{self, GrpcJsonLayer},
    health::{self, HEALTH_SERVICE, Readiness},
    pipeline::{Calls, Pipeline},
    protocol::RpcName,
    rate_class::{RateClass, RateClasses},
    service::{GrpcServers, RpcService},
};
use shop_kit_auth::{SharedSecret, TokenVerifier};
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
    #[error(
        "{service} is served but its contract does not describe it: its RpcService must come \
         with the descriptors of the file that declares it"
    )]
    NotInContract { service: String },
    #[error(
        "the plain HTTP route {path} cannot be served: {why}; an RPC is declared in the \
         contract and served from its generated routes"
    )]
    HandRoute { path: String, why: &'static str },
}

/// Collects a process's RPC services (each with its contract, see
/// [`RpcService`]), then assembles them into one router with the kit's
/// layers.
pub struct RpcServer {
    http: HttpConfig,
    readiness: Readiness,
    services: Vec<RpcService>,
    verifier: Option<TokenVerifier>,
    secret: Option<SharedSecret>,
    /// Plain HTTP routes, by path (see [`Self::http_route`]).
    hand_routes: Vec<(&'static str, MethodRouter)>,
    /// The process's metrics, served at `/metrics` (unless a port of their
    /// own serves them).
    metrics: Option<Metrics>,
    wraps: Vec<Box<dyn FnOnce(Router) -> Router + Send>>,
    /// The service whose spans its requests start (see [`Self::scope`]).
    scope: Option<&'static str>,
    rate_classes: RateClasses,
    /// Whether the contract is the kit's kind (see [`Self::foreign_contract`]).
    foreign: bool,
}

impl RpcServer {
    pub fn new(http: HttpConfig, readiness: Readiness) -> Self {
        Self {
            http,
            readiness,
            services: Vec::new(),
            verifier: None,
            secret: None,
            hand_routes: Vec::new(),
            metrics: None,
            wraps: Vec::new(),
            scope: None,
            rate_classes: RateClasses::default(),
            foreign: false,
        }
    }

    /// Serves a contract not written for the kit (a conformance suite's, a
    /// benchmark's shared with other stacks): its methods may have no call
    /// policy (no caller is checked, no deadline given) and its server
    /// streams no heartbeat field (none is sent). Without this, either is
    /// a start-up error naming what to add.
    pub fn foreign_contract(mut self) -> Self {
        self.foreign = true;
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

    /// A plain HTTP route served beside the RPCs at `path` (an axum path:
    /// a JWK set, the web app's config). It has no contract, so anyone may
    /// call it: its path must not be one an RPC, a REST route or the kit
    /// (`/healthz`, `/readyz`, `/metrics`) serves, nor have the shape of an
    /// RPC's (`/package.Service/Method`), or the server is not assembled
    /// ([`ServerError::HandRoute`]). It passes the steps every request
    /// passes (request id, CORS, observe).
    pub fn http_route(mut self, path: &'static str, route: MethodRouter) -> Self {
        self.hand_routes.push((path, route));
        self
    }

    /// Serves every request as `service`'s: the spans its requests start
    /// are that service's, as one process may run several
    /// (`shop_kit_observe::traces::serving_as`, around all of the kit's
    /// steps).
    pub fn scope(mut self, service: &'static str) -> Self {
        self.scope = Some(service);
        self
    }

    /// Wraps what the server serves from admission in (e.g. in the
    /// gateway's pages and rate limits), inside the steps every request
    /// passes first: a wrap sees each request with its request id, its
    /// classification (`Call`), CORS and observe around it, and what it
    /// lets through is admitted (who may call, how often, whether there is
    /// room) and dispatched as any call. Wrappers apply in the order given
    /// (the last one outermost).
    pub fn wrap(mut self, wrap: impl FnOnce(Router) -> Router + Send + 'static) -> Self {
        self.wraps.push(Box::new(wrap));
        self
    }

    /// The limiter the methods whose contract names the rate class `class`
    /// (`kit.policy.v1` `rate_class`) count against, before any handler
    /// code runs (see [`crate::rate_class`]).
    pub fn rate_class(mut self, class: &str, limiter: Arc<dyn RateClass>) -> Self {
        self.rate_classes.insert(class.to_owned(), limiter);
        self
    }

    /// Also not ready until `started` has held once
    /// ([`Readiness::after`]).
    pub fn ready_after<F>(mut self, started: F) -> Self
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        self.readiness = self.readiness.after(started);
        self
    }

    /// The shop's shared secret, which the callers of its `shop_secret`
    /// methods may prove themselves with (without it, only a client
    /// certificate does).
    pub fn shared_secret(mut self, secret: SharedSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Makes the `Caller` extractor available to handlers, verifying tokens
    /// with `verifier`.
    pub fn verify_tokens(mut self, verifier: TokenVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Serves `service` (its handlers, as the generated
    /// `<Service>Routes::build` gives them with its contract): Connect
    /// (POST, and GET where the contract allows it), gRPC, gRPC-Web, and
    /// its REST routes. Its call policy, its rules, and whether only the
    /// shop's services may call it (every method's caller rule names
    /// services: no browser may then, and it has no REST route) are read
    /// from its contract when the server is assembled; a service its
    /// contract does not describe is an error then.
    pub fn serve(mut self, service: RpcService) -> Self {
        self.services.push(service);
        self
    }

    /// The RPC services it serves (`shop.catalog.v1.CatalogService`).
    pub fn service_names(&self) -> Vec<String> {
        self.services
            .iter()
            .map(|service| service.name().to_owned())
            .collect()
    }

    /// Every contract its services came with, once each.
    fn descriptor_sets(&self) -> Vec<&'static [u8]> {
        let mut sets: Vec<&'static [u8]> = Vec::new();
        for service in &self.services {
            let set = service.descriptors();
            if !sets.iter().any(|known| std::ptr::eq(*known, set)) {
                sets.push(set);
            }
        }
        sets
    }

    /// [`Self::into_app`] as an axum router (to merge or nest it).
    pub async fn into_router(self, shutdown: &Shutdown) -> Result<Router, ServerError> {
        Ok(Router::new().fallback_service(self.into_app(shutdown).await?))
    }

    /// Assembles what a listener serves. Checks readiness once for
    /// `grpc.health.v1`, and spawns the task that keeps it in step until
    /// `shutdown`.
    pub async fn into_app(mut self, shutdown: &Shutdown) -> Result<App, ServerError> {
        let service_names = self.service_names();
        let health_server = tonic_health::pb::health_server::HealthServer::new(
            health::grpc_health(
                service_names.clone(),
                self.readiness.clone(),
                shutdown.clone(),
            )
            .await,
        );

        let mut descriptor_sets = self.descriptor_sets();
        descriptor_sets.push(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let descriptors = grpc_json::descriptor_pool(&descriptor_sets);
        let internal = internal_services(&descriptors, &service_names, self.foreign)?;
        let rest = rest_routes_in(&descriptors, &service_names, &internal)?;
        check_hand_routes(&self.hand_routes, &rest)?;
        let reflection_v1 = self.reflection_builder(&descriptor_sets).build_v1()?;
        let reflection_v1alpha = self.reflection_builder(&descriptor_sets).build_v1alpha()?;
        let mut connect_routes = Router::new();
        let mut grpc_servers = GrpcServers::default();
        for service in std::mem::take(&mut self.services) {
            let (connect, add_grpc) = service.into_parts();
            connect_routes = connect_routes.merge(connect);
            add_grpc(&mut grpc_servers, self.http.max_request_bytes);
        }
        grpc_servers
            .add(grpc_defaults!(health_server, self.http))
            .add(grpc_defaults!(reflection_v1, self.http))
            .add(grpc_defaults!(reflection_v1alpha, self.http));
        // The server's own methods go straight to their stack; health and
        // reflection (tonic's only) through the routes that bridge them.
        let methods = Methods::new(
            &descriptors,
            service_names
                .iter()
                .map(|name| (name.as_str(), true))
                .chain([(HEALTH_SERVICE, false)]),
            [
                (REFLECTION_V1, "ServerReflectionInfo"),
                (REFLECTION_V1ALPHA, "ServerReflectionInfo"),
            ],
            rest,
            &self.rate_classes,
            self.secret.as_ref(),
            !self.foreign,
        )?;
        let admission = Admission::new(
            service_names
                .first()
                .map_or("unnamed", |name| classify::leak(name.clone())),
            self.http.admission(),
            methods.len(),
        );
        // gRPC of proto, as tonic takes it; the other codecs and gRPC-Web
        // are translated to it first.
        let heartbeat_every = self.http.stream_heartbeat();
        let grpc_proto = GrpcEdge::new(grpc_servers, heartbeat_every);
        let grpc = ServiceBuilder::new()
            .layer(GrpcJsonLayer::new(self.http.max_request_bytes))
            .layer(tonic_web::GrpcWebLayer::new())
            .service(grpc_proto.clone());

        // The kit's Connect work wraps the library's router once, in one
        // layer (per-route layers cost a boxed route and a future each, on
        // every call), and `with_state` turns every handler into a ready
        // route now rather than on every request.
        let connect = ConnectEdge::new(
            MakeServiceBuilder::new()
                .receive_max_bytes(self.http.max_request_bytes)
                // Like connect-go: compressing tiny messages costs more than it saves.
                .compression(CompressionConfig::new(COMPRESS_MIN_BYTES))
                .add_router(connect_routes)
                .build()
                .with_state(()),
            self.http.max_request_bytes,
            heartbeat_every,
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
            .merge(bridged);
        for (path, route) in std::mem::take(&mut self.hand_routes) {
            routes = routes.route(path, route);
        }
        // Unless a port of their own serves them (see `metrics_routes`).
        if let Some(metrics) = self.metrics.filter(|_| self.http.metrics_port.is_none()) {
            routes = routes.merge(metrics_routes(metrics));
        }
        let routes = routes
            .fallback_service(ContentTypeSwitch::new(grpc.clone(), connect.clone()))
            .with_state(());
        // The kit's steps from one message in, then the service's own
        // wraps (pages, rate limits) and the steps every request passes
        // first: one service (see `pipeline`).
        let calls = Calls::new(
            self.http.max_request_bytes,
            admission,
            Dispatch::new(
                grpc_proto,
                grpc,
                connect,
                routes,
                self.http.max_request_bytes,
            ),
        );
        let pipeline = Pipeline::new(
            // The service's scope for traces.
            self.scope,
            self.verifier,
            methods,
            cors::browsers(&self.http.cors_origins, &internal),
            self.wraps,
            calls,
        );
        Ok(App::serving(pipeline))
    }

    /// The REST routes this server will serve: those its public services
    /// declare (internal ones are called by the shop's services only, over
    /// RPC). For routes of its own around the server (pages) to step aside.
    pub fn rest_routes(&self) -> Result<RestRoutes, ServerError> {
        let names = self.service_names();
        let descriptors = grpc_json::descriptor_pool(&self.descriptor_sets());
        let internal = internal_services(&descriptors, &names, self.foreign)?;
        rest_routes_in(&descriptors, &names, &internal)
    }

    fn reflection_builder(
        &self,
        descriptor_sets: &[&'static [u8]],
    ) -> tonic_reflection::server::Builder<'static> {
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
        for set in descriptor_sets {
            if !std::ptr::eq(*set, tonic_health::pb::FILE_DESCRIPTOR_SET) {
                builder = builder.register_encoded_file_descriptor_set(set);
            }
        }
        for service in &self.services {
            builder = builder.with_service_name(service.name());
        }
        for name in [HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA] {
            builder = builder.with_service_name(name);
        }
        builder
    }
}

/// The services of `names` only the shop's own services may call: every
/// method's caller rule is internal (names services, or the shop's shared
/// secret). A service `descriptors` does not describe is an error: its
/// rules could not be enforced.
fn internal_services(
    descriptors: &DescriptorPool,
    names: &[String],
    foreign: bool,
) -> Result<Vec<String>, ServerError> {
    let mut internal = Vec::new();
    for name in names {
        let service =
            descriptors
                .get_service_by_name(name)
                .ok_or_else(|| ServerError::NotInContract {
                    service: name.clone(),
                })?;
        let read = if foreign {
            shop_kit_policy::Policy::of
        } else {
            shop_kit_policy::Policy::required
        };
        if shop_kit_policy::Policy::internal_service(&service, read).map_err(MethodsError::from)? {
            internal.push(name.clone());
        }
    }
    Ok(internal)
}

/// The kit's own plain routes, which no hand route may take.
const KIT_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Refuses a hand route that would take a path an RPC, a REST route or the
/// kit serves, or that looks like an RPC's (callers would take it for one
/// with a contract), or a path given twice.
fn check_hand_routes(
    routes: &[(&'static str, MethodRouter)],
    rest: &RestRoutes,
) -> Result<(), ServerError> {
    let refused = |path: &str, why| {
        Err(ServerError::HandRoute {
            path: path.to_owned(),
            why,
        })
    };
    for (i, (path, _)) in routes.iter().enumerate() {
        if !path.starts_with('/') {
            return refused(path, "a path starts with /");
        }
        if rpc_shaped(path) {
            return refused(
                path,
                "it has the shape of an RPC's path (/package.Service/Method)",
            );
        }
        if KIT_PATHS.contains(path) {
            return refused(path, "the kit serves it");
        }
        if [
            http::Method::GET,
            http::Method::POST,
            http::Method::PUT,
            http::Method::PATCH,
            http::Method::DELETE,
        ]
        .iter()
        .any(|method| rest.find(method, path).is_some())
        {
            return refused(path, "a REST route of the contract serves it");
        }
        if routes[..i].iter().any(|(earlier, _)| earlier == path) {
            return refused(path, "it is given twice");
        }
    }
    Ok(())
}

/// Whether `path` is, or is under, what reads as an RPC service's path: a
/// first segment with a dot inside (`/package.Service/...`).
fn rpc_shaped(path: &str) -> bool {
    RpcName::from_path(path).is_some()
        || path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(first, _)| first.contains('.') && !first.starts_with('.'))
}

/// The REST routes of the public services among `names`.
fn rest_routes_in(
    descriptors: &DescriptorPool,
    names: &[String],
    internal: &[String],
) -> Result<RestRoutes, ServerError> {
    let public = names
        .iter()
        .filter(|name| !internal.contains(name))
        .map(String::as_str);
    Ok(RestRoutes::from_pool(descriptors, public)?)
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
