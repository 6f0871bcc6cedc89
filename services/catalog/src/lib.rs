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

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use sea_orm::DatabaseConnection;
use shop_kit::server::Running;
use shop_kit::{
    HttpConfig, Readiness, RpcServer, Shutdown, auth::TokenVerifier, connect_get, grpc_defaults,
    server::ServerError,
};
use shop_migrations::MigratorTrait;
use shop_proto::shop::catalog::v1::{
    self as pb, catalog_service_connect::CatalogServiceTonicCompatibleBuilder,
};
use tokio::sync::Mutex;

pub use error::CatalogError;

use crate::{
    domain::{NewProduct, Product, ReservationStatus},
    events::{StockChanged, StockFeed},
    store::Store,
};

/// The catalog: its store and the feed of stock changes.
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    stock_feed: StockFeed,
    /// Serialises stock writes with their publication, so watchers see
    /// changes in the order they were committed.
    stock_writes: Arc<Mutex<()>>,
}

impl Catalog {
    /// Connects to the catalog's database and applies its migrations.
    pub async fn open(database_url: &str) -> Result<Self, CatalogError> {
        let db = shop_kit::database::connect(database_url).await?;
        Self::migrate(db).await
    }

    /// Applies the migrations on an existing connection.
    pub async fn migrate(db: DatabaseConnection) -> Result<Self, CatalogError> {
        shop_migrations::catalog::Migrator::up(&db, None).await?;
        Ok(Self {
            store: Store::new(db),
            stock_feed: StockFeed::new(),
            stock_writes: Arc::new(Mutex::new(())),
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

    /// Changes a product's stock by `delta` and tells every watcher.
    pub async fn adjust_stock(&self, product_id: &str, delta: i32) -> Result<i32, CatalogError> {
        let _ordered = self.stock_writes.lock().await;
        let stock_on_hand = self.store.adjust_stock(product_id, delta).await?;
        self.publish(vec![(product_id.to_owned(), stock_on_hand)]);
        Ok(stock_on_hand)
    }

    /// Sets stock aside for `reservation_id`: every line or none.
    pub async fn reserve_stock(
        &self,
        reservation_id: &str,
        lines: &[(String, i32)],
    ) -> Result<ReservationStatus, CatalogError> {
        let id = domain::reservation_id(reservation_id)?;
        let lines = domain::stock_items(lines)?;
        let _ordered = self.stock_writes.lock().await;
        let (status, levels) = self.store.reserve(id, &lines, now_secs()).await?;
        self.publish(levels);
        Ok(status)
    }

    /// Puts a reservation's stock back (or confirms it was).
    pub async fn release_stock(
        &self,
        reservation_id: &str,
    ) -> Result<ReservationStatus, CatalogError> {
        self.settle(reservation_id, ReservationStatus::Released)
            .await
    }

    /// Turns a reservation into a sale (or confirms it was).
    pub async fn commit_stock(
        &self,
        reservation_id: &str,
    ) -> Result<ReservationStatus, CatalogError> {
        self.settle(reservation_id, ReservationStatus::Committed)
            .await
    }

    async fn settle(
        &self,
        reservation_id: &str,
        to: ReservationStatus,
    ) -> Result<ReservationStatus, CatalogError> {
        let id = domain::reservation_id(reservation_id)?;
        let _ordered = self.stock_writes.lock().await;
        let (status, levels) = self.store.settle(id, to, now_secs()).await?;
        self.publish(levels);
        Ok(status)
    }

    fn publish(&self, levels: Vec<(String, i32)>) {
        for (product_id, stock_on_hand) in levels {
            self.stock_feed.publish(StockChanged {
                product_id,
                stock_on_hand,
            });
        }
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
    pub database_url: String,
    /// Seed the demo products into an empty catalog.
    pub demo_data: bool,
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
        url: shop_kit::database::redact(&config.database_url),
        source,
    };
    let catalog = Catalog::open(&config.database_url)
        .await
        .map_err(database_error)?;
    let seeded_products = if config.demo_data {
        demo::seed(&catalog).await.map_err(database_error)?
    } else {
        0
    };
    let verifier = TokenVerifier::fetch(&config.users_url, JWKS_PATIENCE).await?;
    let app = router(catalog, verifier, &config.http, &shutdown).await?;
    let running = shop_kit::server::start(config.addr, app, shutdown, config.http.shutdown_grace())
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    Ok((running, seeded_products))
}
