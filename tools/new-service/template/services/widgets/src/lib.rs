//! The widgets service, served as `shop.widgets.v1.WidgetService`: each
//! customer's widgets, each about a product of the catalog (which it asks:
//! [`catalog`]), created once per request id, listed a page at a time and
//! watched live. Its own database (migrations in [`migration`]), its
//! `widget.created` events through the outbox ([`events`]).

pub mod api;
pub mod catalog;
pub mod domain;
pub mod error;
pub mod events;
pub mod feed;
pub mod flags;
pub mod migration;
pub mod store;

use shop_kit::{
    RpcServer, Shutdown,
    app::{Basics, Context, Service, StartFailure},
    events::{Broker, Ledger},
};

pub use error::WidgetsError;

use crate::{
    catalog::Catalog,
    domain::{NewWidget, Page, Widget},
    feed::WidgetFeed,
    store::Store,
};

/// The customers' widgets.
#[derive(Clone, Debug)]
pub struct Widgets {
    store: Store,
    feed: WidgetFeed,
    catalog: Catalog,
    shutdown: Shutdown,
}

impl Widgets {
    /// Opens the database (migrations applied), with events going through
    /// `broker` until `shutdown`, asking `catalog` of products.
    pub async fn open(
        database_url: &str,
        broker: Broker,
        catalog: Catalog,
        shutdown: &Shutdown,
    ) -> Result<Self, WidgetsError> {
        let db = shop_kit::db::connect(events::SERVICE, database_url).await?;
        shop_migrations::up::<migration::Migrator>(&db, events::SERVICE)
            .await
            .map_err(shop_kit::db::StorageError::migrate)?;
        let feed = WidgetFeed::new();
        let ledger = Ledger::start(
            db,
            events::SERVICE,
            broker,
            vec![feed.subscription()],
            shutdown,
        );
        Ok(Self {
            store: Store { ledger },
            feed,
            catalog,
            shutdown: shutdown.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records `new` for its customer, once per request id: a repeat
    /// returns the widget the first made. Its product must be one the
    /// catalog has.
    pub async fn create(&self, new: NewWidget) -> Result<Widget, WidgetsError> {
        self.catalog.check_product(&new.product_id).await?;
        self.store.create(new, domain::now_ms()).await
    }

    /// The customer's own widget; anyone else's does not exist for them.
    pub async fn own(&self, customer_id: &str, widget_id: &str) -> Result<Widget, WidgetsError> {
        self.store
            .by_id(widget_id)
            .await?
            .filter(|widget| widget.customer_id == customer_id)
            .ok_or_else(|| WidgetsError::NotFound {
                id: widget_id.to_owned(),
            })
    }

    /// A page of the customer's widgets, newest first, and whether more
    /// follow.
    pub async fn page(
        &self,
        customer_id: &str,
        page: &Page,
    ) -> Result<(Vec<Widget>, bool), WidgetsError> {
        self.store.page(customer_id, page).await
    }

    /// The widgets created from now on, on any replica.
    pub fn feed(&self) -> &WidgetFeed {
        &self.feed
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub widgets: Widgets,
}

/// Widgets as it is started (by the launcher, `shop serve widgets` and
/// the tests alike, through [`shop_kit::app::Launch`]): what every service
/// with a database of its own is started with ([`flags`] says how the
/// launcher makes it).
#[derive(Clone, Debug)]
pub struct Config(pub Basics);

impl Service for Config {
    const NAME: &'static str = events::SERVICE;
    type Handle = Widgets;

    async fn open(&self, context: &Context) -> Result<Widgets, StartFailure> {
        let broker = Broker::new(self.0.nats.as_ref(), Self::NAME).await?;
        let catalog = Catalog::new(self.0.peers.connect("catalog").await?);
        Widgets::open(
            self.0.database_url.expose(),
            broker,
            catalog,
            &context.shutdown,
        )
        .await
        .map_err(|e| StartFailure::database(&self.0.database_url, e))
    }

    async fn seed(&self, _: &Widgets) -> Result<String, StartFailure> {
        Ok("no demo data".to_owned())
    }

    /// WidgetService on every protocol (GetWidget and ListWidgets also on
    /// GET), and its REST routes; ready while its database answers and the
    /// catalog has an endpoint that serves.
    async fn server(&self, widgets: Widgets, context: &Context) -> Result<RpcServer, StartFailure> {
        let server = context
            .server(widgets.store().ledger.db(), &self.0.token_keys)
            .await?;
        let catalog = widgets.catalog.peer();
        Ok(server
            .ready_after(move || shop_kit::client::each_serving(std::slice::from_ref(&catalog)))
            .serve(api::widget_service(AppState { widgets })))
    }
}
