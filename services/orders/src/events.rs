//! What the orders service publishes: each order as it changes, in
//! process, to every WatchOrder stream.

use tokio::sync::broadcast;

use crate::domain::Order;

const FEED_CAPACITY: usize = 1024;

#[derive(Clone, Debug)]
pub struct OrderFeed(broadcast::Sender<Order>);

impl OrderFeed {
    pub fn new() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }

    pub fn publish(&self, order: Order) {
        let _ = self.0.send(order);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Order> {
        self.0.subscribe()
    }
}

impl Default for OrderFeed {
    fn default() -> Self {
        Self::new()
    }
}
