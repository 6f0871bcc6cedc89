//! What the catalog publishes: stock changes, in process, to every
//! WatchStock stream.

use tokio::sync::broadcast;

/// Changes buffered per subscriber before a slow one is told it lagged.
const FEED_CAPACITY: usize = 1024;

/// A product's stock after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockChanged {
    pub product_id: String,
    pub stock_on_hand: i32,
}

/// The in-process feed of stock changes.
#[derive(Clone, Debug)]
pub struct StockFeed(broadcast::Sender<StockChanged>);

impl StockFeed {
    pub fn new() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }

    pub fn publish(&self, change: StockChanged) {
        // No subscriber is fine: nobody is watching.
        let _ = self.0.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StockChanged> {
        self.0.subscribe()
    }
}

impl Default for StockFeed {
    fn default() -> Self {
        Self::new()
    }
}
