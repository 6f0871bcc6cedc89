//! The live feed behind WatchOrder (and CancelOrder's short wait): the
//! order events this process receives, handed to whoever watches that very
//! order. A watcher sees the newest version of its order (older news is
//! dropped, never replayed), and an event nobody watches costs a map
//! lookup: it is not even decoded. Watching is per order, so an event wakes
//! its watchers only, however many others watch other orders.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use shop_kit::events::{Delivery, Subscription};
use tokio::sync::watch;

use crate::{
    domain::Order,
    events::{ORDER_EVENTS, order_of},
};

type Latest = watch::Sender<Option<Arc<Order>>>;

/// Order changes for this process's watchers, from the order events.
#[derive(Clone, Debug, Default)]
pub struct OrderFeed {
    watched: Arc<Mutex<HashMap<String, Latest>>>,
}

impl OrderFeed {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Latest>> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts watching `order_id`: every change from now on (watch before
    /// reading the order, so no change falls in between).
    pub fn watch(&self, order_id: &str) -> OrderWatch {
        let changes = self
            .lock()
            .entry(order_id.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        OrderWatch {
            feed: self.clone(),
            order_id: order_id.to_owned(),
            changes,
        }
    }

    /// Tells the order's watchers, if any, of `order` (unless they know a
    /// newer version).
    fn publish(&self, order: Order) {
        if let Some(latest) = self.lock().get(&order.id) {
            latest.send_if_modified(|known| {
                let newer = known
                    .as_ref()
                    .is_none_or(|known| known.version < order.version);
                if newer {
                    *known = Some(Arc::new(order));
                }
                newer
            });
        }
    }

    fn is_watched(&self, order_id: &str) -> bool {
        self.lock().contains_key(order_id)
    }

    /// The live subscription feeding it.
    pub fn subscription(&self) -> Subscription {
        let feed = self.clone();
        Subscription::new("order-feed", ORDER_EVENTS, Delivery::Live, move |event| {
            let feed = feed.clone();
            async move {
                if feed.is_watched(&event.aggregate_id) {
                    feed.publish(order_of(&event)?);
                }
                Ok(())
            }
        })
    }
}

/// One watcher of one order; it stops watching when dropped.
#[derive(Debug)]
pub struct OrderWatch {
    feed: OrderFeed,
    order_id: String,
    changes: watch::Receiver<Option<Arc<Order>>>,
}

impl OrderWatch {
    /// The order once a version newer than `version` is known; `None` if
    /// the feed is gone.
    pub async fn newer_than(&mut self, version: i64) -> Option<Arc<Order>> {
        loop {
            if let Some(order) = self.changes.borrow_and_update().as_ref()
                && order.version > version
            {
                return Some(order.clone());
            }
            self.changes.changed().await.ok()?;
        }
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        let mut watched = self.feed.lock();
        // This watcher's receiver is still alive here: it was the last.
        if watched
            .get(&self.order_id)
            .is_some_and(|latest| latest.receiver_count() <= 1)
        {
            watched.remove(&self.order_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;

    #[tokio::test]
    async fn a_watcher_sees_newer_versions_of_its_order_only() {
        let feed = OrderFeed::new();
        let mut watch = feed.watch("o1");
        feed.publish(Order::sample("o2", 2, OrderStatus::Confirmed));
        feed.publish(Order::sample("o1", 2, OrderStatus::Confirmed));
        feed.publish(Order::sample("o1", 1, OrderStatus::Pending));
        let seen = watch.newer_than(1).await.expect("a change");
        assert_eq!((seen.id.as_str(), seen.version), ("o1", 2));
        assert!(!feed.is_watched("o2"), "nobody watches o2");
    }

    #[tokio::test]
    async fn the_last_watcher_gone_the_order_is_forgotten() {
        let feed = OrderFeed::new();
        let first = feed.watch("o1");
        let second = feed.watch("o1");
        drop(first);
        assert!(feed.is_watched("o1"));
        drop(second);
        assert!(!feed.is_watched("o1"));
    }
}
