//! What the catalog publishes: `stock.changed`, a product's stock after each
//! change (a reservation, a release, an adjustment), written to the outbox
//! with the change. The catalog also consumes it, live, to feed WatchStock.

use serde::{Deserialize, Serialize};
use shop_kit::events::{Delivery, Event, Subscription};
use tokio::sync::broadcast;

/// The catalog's name on events and in its event tables.
pub const SERVICE: &str = "catalog";
pub const STOCK_CHANGED: &str = "stock.changed";

/// Changes buffered per subscriber before a slow one is told it lagged.
const FEED_CAPACITY: usize = 1024;

/// A product's stock after a change, and the version the change gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockChanged {
    pub product_id: String,
    pub stock_on_hand: i32,
    pub version: i64,
}

impl StockChanged {
    pub fn event(&self) -> Event {
        Event::new(
            SERVICE,
            STOCK_CHANGED,
            &self.product_id,
            self.version,
            serde_json::json!(self),
        )
    }
}

/// The stock changes of this process's WatchStock streams.
#[derive(Clone, Debug)]
pub struct StockFeed(broadcast::Sender<StockChanged>);

impl StockFeed {
    pub fn new() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StockChanged> {
        self.0.subscribe()
    }

    /// Feeds the stock.changed events to the watchers, live.
    pub fn subscription(&self) -> Subscription {
        let feed = self.0.clone();
        Subscription::new("stock-feed", "stock.", Delivery::Live, move |event| {
            let feed = feed.clone();
            async move {
                let change: StockChanged =
                    serde_json::from_value(event.data).map_err(|e| e.to_string())?;
                // No subscriber is fine: nobody is watching.
                let _ = feed.send(change);
                Ok(())
            }
        })
    }
}

impl Default for StockFeed {
    fn default() -> Self {
        Self::new()
    }
}
