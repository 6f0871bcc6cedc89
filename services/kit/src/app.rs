//! The one way a service starts, whether the launcher runs the whole shop,
//! `shop serve` runs one service, or a test runs one on loopback:
//!
//! ```text
//! bind, answering as a service starting (alive, not ready)
//!   -> open (database, migrations, background work) -> seed, when asked
//!   -> assemble its RPC server -> serve on the same port until shutdown
//!   -> let in-flight calls and background work finish (bounded grace)
//! ```
//!
//! The port answers while the service opens: migrations that wait for
//! another replica's lock (or the migration Job's) for minutes keep the
//! process alive to its probes, unready, instead of killed mid-wait.
//!
//! A service says what it is by implementing [`Service`]; [`Launch`] runs it.

use std::{error::Error as StdError, net::SocketAddr};

use axum::Router;

use shop_kit_auth::AuthError;
use shop_kit_observe::{metrics::Metrics, traces::in_service};
use shop_kit_rpc::{HttpConfig, Readiness, RpcServer, ServerError};
use shop_kit_shutdown::Shutdown;

/// Any error a service's own start-up steps can fail with.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What the launcher and the tests need to know of a service.
pub trait Service: Send + Sync + Sized + 'static {
    /// Its name in logs, errors and the banner, e.g. `catalog`.
    const NAME: &'static str;
    /// The running service's domain handle, given back to whoever launched
    /// it (tests reach into it; the launcher ignores it).
    type Handle: Clone + Send + Sync + 'static;

    /// Connects to its database, applies its migrations, and starts its
    /// background work with [`Shutdown::spawn`] on `context.shutdown`.
    fn open(
        &self,
        context: &Context,
    ) -> impl Future<Output = Result<Self::Handle, StartFailure>> + Send;

    /// Seeds demo data if it was asked to; says what the service offers
    /// (for the banner).
    fn seed(
        &self,
        handle: &Self::Handle,
    ) -> impl Future<Output = Result<String, StartFailure>> + Send;

    /// Its RPC services, routes and layers, ready to be assembled.
    fn server(
        &self,
        handle: Self::Handle,
        context: &Context,
    ) -> impl Future<Output = Result<RpcServer, StartFailure>> + Send;
}

/// What every service is started with.
#[derive(Clone, Debug)]
pub struct Context {
    pub http: HttpConfig,
    pub shutdown: Shutdown,
}

/// What a service with a database of its own, events, the users' keys
/// and the peers its contract declares is started with, and nothing else:
/// a service's `Config` when it needs no more (a service `just
/// new-service` makes), so the launcher can start any such service alike.
#[cfg(feature = "events")]
#[derive(Clone, Debug)]
pub struct Basics {
    pub database_url: shop_kit_db::DatabaseUrl,
    /// NATS for events; in process when `None`.
    pub nats: Option<shop_kit_events::NatsServer>,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: shop_kit_auth::TokenKeys,
    /// The services it calls, as its contract declares them
    /// (`kit.policy.v1.deployment`), where the launcher found them.
    pub peers: shop_kit_client::Peers,
}

#[cfg(feature = "db")]
impl Context {
    /// The server every service with a database of its own starts from:
    /// ready while `db` answers, every call's access token verified with
    /// `token_keys`. The service adds what it serves
    /// ([`RpcServer::serve`]).
    pub async fn server(
        &self,
        db: &sea_orm::DatabaseConnection,
        token_keys: &shop_kit_auth::TokenKeys,
    ) -> Result<RpcServer, StartFailure> {
        let verifier = token_keys.verifier().await?;
        let readiness = Readiness::when(shop_kit_db::ready_check(db.clone()));
        Ok(RpcServer::new(self.http.clone(), readiness).verify_tokens(verifier))
    }
}

/// Why a service did not start.
#[derive(Debug, thiserror::Error)]
#[error("{service} {failure}")]
pub struct StartError {
    pub service: &'static str,
    pub failure: StartFailure,
}

/// The step that failed.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    #[error("database {url}: {source}")]
    Database { url: String, source: BoxError },
    #[error(transparent)]
    Listen(#[from] shop_kit_rpc::ListenError),
    #[error("events: {0}")]
    Events(BoxError),
    #[error("cannot verify tokens: {0}")]
    Auth(#[from] AuthError),
    #[error("configuration: {0}")]
    Config(BoxError),
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A peer its contract declares could not be had.
    #[error(transparent)]
    Peers(#[from] shop_kit_client::PeersError),
}

impl StartFailure {
    /// A failure of the database at `url` (printed with its password hidden).
    pub fn database(url: &impl std::fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::Database {
            url: url.to_string(),
            source: source.into(),
        }
    }

    pub fn config(source: impl Into<BoxError>) -> Self {
        Self::Config(source.into())
    }
}

#[cfg(feature = "events")]
impl From<shop_kit_events::EventsError> for StartFailure {
    fn from(error: shop_kit_events::EventsError) -> Self {
        Self::Events(Box::new(error))
    }
}

/// A service started in the background.
#[derive(Debug)]
pub struct Running<H> {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// What the service offers, as [`Service::seed`] said.
    pub seeded: String,
    /// The RPC services it serves, by their full names.
    pub rpc_services: Vec<String>,
    /// What `/readyz` asks (draining aside).
    pub readiness: Readiness,
    pub handle: H,
    /// Ends once the service has stopped serving and its background work
    /// has finished (or the grace period ran out).
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

type Wrap = Box<dyn FnOnce(Router) -> Router + Send>;

/// Starts a [`Service`]: on loopback with an ephemeral port and the default
/// HTTP settings unless told otherwise.
pub struct Launch<S> {
    service: S,
    addr: SocketAddr,
    http: HttpConfig,
    shutdown: Shutdown,
    metrics: Option<Metrics>,
    wrap: Option<Wrap>,
}

impl<S: Service> Launch<S> {
    pub fn new(service: S) -> Self {
        Self {
            service,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: HttpConfig::default(),
            shutdown: Shutdown::new(),
            metrics: None,
            wrap: None,
        }
    }

    /// The process's metrics, which its `/metrics` serves (by default,
    /// [`Metrics::install`]ed when it starts).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// The signal that stops it (by default, one nobody triggers).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// For tests: wraps what the service serves (`RpcServer::wrap`: inside
    /// the steps every request passes first), e.g. to inject faults at the
    /// service's door.
    pub fn wrap(mut self, wrap: impl FnOnce(Router) -> Router + Send + 'static) -> Self {
        self.wrap = Some(Box::new(wrap));
        self
    }

    pub async fn start(self) -> Result<Running<S::Handle>, StartError> {
        let failed = |failure| StartError {
            service: S::NAME,
            failure,
        };
        let Self {
            service,
            addr,
            http,
            shutdown,
            metrics,
            wrap,
        } = self;
        // Before the service takes its first metric handle.
        let metrics = metrics.unwrap_or_else(Metrics::install);
        // Certificates are read before anything else starts: a bad file
        // fails fast, naming it.
        let tls = http
            .tls
            .load()
            .map_err(|e| failed(shop_kit_rpc::ListenError::from(e).into()))?;
        let starting = shop_kit_rpc::Starting::bind(addr, S::NAME, &http, tls.clone())
            .await
            .map_err(|e| failed(e.into()))?;
        let context = Context {
            http: http.clone(),
            shutdown: shutdown.clone(),
        };
        // Everything the service starts, now and for each request, is its
        // own in traces (one process may run several services).
        let (handle, seeded, mut server) = in_service(S::NAME, async {
            let handle = service.open(&context).await.map_err(failed)?;
            let seeded = service.seed(&handle).await.map_err(failed)?;
            let server = service
                .server(handle.clone(), &context)
                .await
                .map_err(failed)?;
            Ok((handle, seeded, server))
        })
        .await?;
        if let Some(wrap) = wrap {
            server = server.wrap(wrap);
        }
        let readiness = server.readiness();
        let rpc_services = server.service_names();
        server = server.metrics(metrics).scope(S::NAME);
        let app = server
            .into_app(&shutdown)
            .await
            .map_err(|e| failed(e.into()))?;
        let listener = starting
            .into_listener()
            .await
            .map_err(|source| failed(shop_kit_rpc::ListenError::Bind { addr, source }.into()))?;
        let listening = shop_kit_rpc::start_on(listener, app, shutdown.clone(), &http, tls)
            .await
            .map_err(|e| failed(e.into()))?;
        let task = tokio::spawn(async move {
            let served = listening.task.await.map_err(std::io::Error::other)?;
            if !shutdown.work_finished(http.shutdown_grace()).await {
                tracing::warn!(
                    service = S::NAME,
                    grace_secs = http.shutdown_grace_secs,
                    "background work still running after the grace period; stopping it"
                );
            }
            served
        });
        Ok(Running {
            name: S::NAME,
            addr: listening.addr,
            seeded,
            rpc_services,
            readiness,
            handle,
            task,
        })
    }
}
