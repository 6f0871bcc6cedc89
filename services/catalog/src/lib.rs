//! The catalog service: products, prices and stock, served as
//! `shop.catalog.v1.CatalogService` over Connect, gRPC and gRPC-Web.
//!
//! `api -> domain -> store`: handlers translate proto, the domain holds the
//! rules, the store is the only code that touches the database.

pub mod api;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use std::net::SocketAddr;

use axum::Router;
use sea_orm::DatabaseConnection;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown,
    auth::TokenVerifier,
    connect_get,
    events::{Broker, EventsError, Relay},
    grpc_defaults,
    server::ServerError,
};
use shop_kit::{server::Running, trace_context::TraceParent};
use shop_migrations::MigratorTrait;
use shop_proto::shop::catalog::v1::{
    self as pb, catalog_service_connect::CatalogServiceTonicCompatibleBuilder,
};

pub use error::CatalogError;

use crate::{
    domain::{NewProduct, Product, ReservationStatus},
    events::StockFeed,
    store::Store,
};

/// The catalog: its store, the relay of its stock events and the feed of
/// stock changes they become for WatchStock.
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    stock_feed: StockFeed,
    relay: Relay,
}

impl Catalog {
    /// Connects to the catalog's database, applies its migrations and
    /// relays its events in process.
    pub async fn open(database_url: &str) -> Result<Self, CatalogError> {
        Self::open_with(database_url, Broker::InProcess, &Shutdown::new()).await
    }

    /// As `open`, with events going through `broker` until `shutdown`.
    pub async fn open_with(
        database_url: &str,
        broker: Broker,
        shutdown: &Shutdown,
    ) -> Result<Self, CatalogError> {
        let db = shop_kit::database::connect(database_url).await?;
        Self::migrate(db, broker, shutdown).await
    }

    /// Applies the migrations on an existing connection.
    pub async fn migrate(
        db: DatabaseConnection,
        broker: Broker,
        shutdown: &Shutdown,
    ) -> Result<Self, CatalogError> {
        shop_migrations::catalog::Migrator::up(&db, None).await?;
        let stock_feed = StockFeed::new();
        let relay = Relay::start(
            db.clone(),
            events::SERVICE,
            broker,
            vec![stock_feed.subscription()],
            shutdown,
        );
        Ok(Self {
            store: Store::new(db),
            stock_feed,
            relay,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stock_feed(&self) -> &StockFeed {
        &self.stock_feed
    }

    pub async fn add_product(&self, product: NewProduct) -> Result<Product, CatalogError> {
        self.store.insert(product).await
    }

    /// Changes a product's stock by `delta`; watchers hear of it.
    pub async fn adjust_stock(&self, product_id: &str, delta: i32) -> Result<i32, CatalogError> {
        let trace = TraceParent::root();
        let stock_on_hand = self
            .store
            .adjust_stock(product_id, delta, trace.as_str())
            .await?;
        self.relay.wake();
        Ok(stock_on_hand)
    }

    /// Sets stock aside for `reservation_id`: every line or none.
    pub async fn reserve_stock(
        &self,
        reservation_id: &str,
        lines: &[(String, i32)],
        trace: &TraceParent,
    ) -> Result<ReservationStatus, CatalogError> {
        let id = domain::reservation_id(reservation_id)?;
        let lines = domain::stock_items(lines)?;
        let status = self
            .store
            .reserve(id, &lines, now_secs(), trace.as_str())
            .await?;
        self.relay.wake();
        Ok(status)
    }

    /// Puts a reservation's stock back (or confirms it was).
    pub async fn release_stock(
        &self,
        reservation_id: &str,
        trace: &TraceParent,
    ) -> Result<ReservationStatus, CatalogError> {
        self.settle(reservation_id, ReservationStatus::Released, trace)
            .await
    }

    /// Turns a reservation into a sale (or confirms it was).
    pub async fn commit_stock(
        &self,
        reservation_id: &str,
        trace: &TraceParent,
    ) -> Result<ReservationStatus, CatalogError> {
        self.settle(reservation_id, ReservationStatus::Committed, trace)
            .await
    }

    async fn settle(
        &self,
        reservation_id: &str,
        to: ReservationStatus,
        trace: &TraceParent,
    ) -> Result<ReservationStatus, CatalogError> {
        let id = domain::reservation_id(reservation_id)?;
        let status = self
            .store
            .settle(id, to, now_secs(), trace.as_str())
            .await?;
        self.relay.wake();
        Ok(status)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub catalog: Catalog,
    pub shutdown: Shutdown,
}

const LIST_PRODUCTS: &str = "/shop.catalog.v1.CatalogService/ListProducts";
const GET_PRODUCT: &str = "/shop.catalog.v1.CatalogService/GetProduct";

/// The catalog on all three protocols, with the kit's layers.
pub async fn router(
    catalog: Catalog,
    verifier: TokenVerifier,
    http: &HttpConfig,
    shutdown: &Shutdown,
) -> Result<Router, ServerError> {
    let readiness = Readiness::database(catalog.store().connection().clone());
    let state = AppState {
        catalog,
        shutdown: shutdown.clone(),
    };
    let (connect, grpc) = CatalogServiceTonicCompatibleBuilder::new()
        .list_products(api::list_products)
        .get_product(api::get_product)
        .watch_stock(api::watch_stock)
        .reserve_stock(api::reserve_stock)
        .release_stock(api::release_stock)
        .commit_stock(api::commit_stock)
        .with_state(state.clone())
        .build();
    // The idempotent methods also answer Connect GET.
    let gets = Router::new()
        .merge(connect_get::<
            pb::ListProductsRequest,
            pb::ListProductsResponse,
            _,
            _,
            _,
        >(LIST_PRODUCTS, api::list_products))
        .merge(connect_get::<
            pb::GetProductRequest,
            pb::GetProductResponse,
            _,
            _,
            _,
        >(GET_PRODUCT, api::get_product))
        .with_state(state);
    RpcServer::new(http.clone(), readiness)
        .service(connect.merge(gets), grpc_defaults!(grpc, http))
        .descriptors(shop_proto::FILE_DESCRIPTOR_SET)
        .verify_tokens(verifier)
        .into_router(shutdown)
        .await
}

/// How long to wait for the users service's public keys at start.
const JWKS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// How to run the catalog.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: shop_kit::database::DatabaseUrl,
    /// Seed the demo products into an empty catalog.
    pub demo_data: bool,
    /// Stock every demo product starts with, instead of its own (a few
    /// dozen): lets a load test place many orders.
    pub demo_stock: Option<i32>,
    /// NATS for events; in process when `None`.
    pub nats_url: Option<String>,
    /// The users service, whose public keys verify access tokens.
    pub users_url: String,
    pub http: HttpConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("catalog database {url}: {source}")]
    Database { url: String, source: CatalogError },
    #[error("catalog cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("catalog events: {0}")]
    Events(#[from] EventsError),
    #[error("catalog cannot verify tokens: {0}")]
    Auth(#[from] shop_kit::auth::AuthError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Opens the database (migrations applied, demo data if asked), binds and
/// starts serving in the background until `shutdown`.
/// Returns the running service and how many demo products it seeded.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<(Running, usize), StartError> {
    let database_error = |source| StartError::Database {
        url: config.database_url.to_string(),
        source,
    };
    let broker = Broker::new(config.nats_url.as_deref()).await?;
    let catalog = Catalog::open_with(config.database_url.expose(), broker, &shutdown)
        .await
        .map_err(database_error)?;
    let seeded_products = if config.demo_data {
        demo::seed(&catalog, config.demo_stock)
            .await
            .map_err(database_error)?
    } else {
        0
    };
    let verifier = TokenVerifier::fetch(&config.users_url, JWKS_PATIENCE).await?;
    let app = router(catalog, verifier, &config.http, &shutdown).await?;
    let running = shop_kit::server::start(config.addr, app, shutdown, &config.http)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    Ok((running, seeded_products))
}
