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
pub mod flags;
pub mod store;

/// Its schema, as `shop migrate catalog` and its start apply it.
pub use shop_migrations::catalog as migration;

use sea_orm::DatabaseConnection;
use shop_kit::{
    RpcServer, Shutdown,
    app::{Context, Service, StartFailure},
    auth::TokenKeys,
    db::DatabaseUrl,
    events::{Broker, Ledger},
};

pub use error::CatalogError;

use crate::{
    domain::{NewProduct, Product, ReservationStatus},
    events::StockFeed,
    store::Store,
};

/// The catalog: its store (which hands its stock events to the relay) and
/// the feed of stock changes they become for WatchStock.
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    stock_feed: StockFeed,
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
        let db = shop_kit::db::connect("catalog", database_url).await?;
        Self::migrate(db, broker, shutdown).await
    }

    /// Applies the migrations on an existing connection.
    pub async fn migrate(
        db: DatabaseConnection,
        broker: Broker,
        shutdown: &Shutdown,
    ) -> Result<Self, CatalogError> {
        shop_migrations::up::<shop_migrations::catalog::Migrator>(&db, "catalog")
            .await
            .map_err(shop_kit::db::StorageError::migrate)?;
        let stock_feed = StockFeed::new();
        let ledger = Ledger::start(
            db,
            events::SERVICE,
            broker,
            vec![stock_feed.subscription()],
            shutdown,
        );
        Ok(Self {
            store: Store { ledger },
            stock_feed,
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
        self.store.adjust_stock(product_id, delta).await
    }

    /// Sets stock aside for `reservation_id`: every line or none.
    pub async fn reserve_stock(
        &self,
        reservation_id: &str,
        lines: &[(String, i32)],
    ) -> Result<ReservationStatus, CatalogError> {
        let id = domain::reservation_id(reservation_id)?;
        let lines = domain::stock_items(lines)?;
        let status = self.store.reserve(id, &lines, now_secs()).await?;
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
        let status = self.store.settle(id, to, now_secs()).await?;
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

/// The catalog as it is started (by the launcher, `shop serve catalog` and
/// the tests alike, through [`shop_kit::app::Launch`]).
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    /// Seed the demo products into an empty catalog.
    pub demo_data: bool,
    /// Stock every demo product starts with, instead of its own (a few
    /// dozen): lets a load test place many orders.
    pub demo_stock: Option<i32>,
    /// NATS for events; in process when `None`.
    pub nats: Option<shop_kit::events::NatsServer>,
    /// The keys that verify access tokens (the users service's).
    pub token_keys: TokenKeys,
}

impl Service for Config {
    const NAME: &'static str = "catalog";
    type Handle = Catalog;

    async fn open(&self, context: &Context) -> Result<Catalog, StartFailure> {
        let broker = Broker::new(self.nats.as_ref(), Self::NAME).await?;
        Catalog::open_with(self.database_url.expose(), broker, &context.shutdown)
            .await
            .map_err(|e| StartFailure::database(&self.database_url, e))
    }

    async fn seed(&self, catalog: &Catalog) -> Result<String, StartFailure> {
        if !self.demo_data {
            return Ok("nothing".to_owned());
        }
        let seeded = demo::seed(catalog, self.demo_stock)
            .await
            .map_err(|e| StartFailure::database(&self.database_url, e))?;
        Ok(format!("{seeded} demo products"))
    }

    /// CatalogService on all three protocols (its idempotent methods also
    /// answer Connect GET), and the internal StockService beside it.
    async fn server(&self, catalog: Catalog, context: &Context) -> Result<RpcServer, StartFailure> {
        let server = context
            .server(catalog.store().ledger.db(), &self.token_keys)
            .await?;
        let state = AppState {
            catalog,
            shutdown: context.shutdown.clone(),
        };
        Ok(server
            .serve(api::catalog_service(state.clone()))
            .serve(api::stock_service(state)))
    }
}
