//! The live feed behind WatchWidgets: the `widget.created` events this
//! process receives (from every replica: a live subscription), handed to
//! whoever watches. A watcher too slow to keep up misses the oldest news
//! rather than holding memory: the channel is bounded.

use shop_kit::events::{Delivery, Subscription};
use tokio::sync::broadcast;

use crate::{
    domain::Widget,
    events::{WIDGET_EVENTS, widget_of},
};

/// How many widgets a slow watcher may fall behind by.
const BACKLOG: usize = 256;

#[derive(Clone, Debug)]
pub struct WidgetFeed {
    created: broadcast::Sender<Widget>,
}

impl Default for WidgetFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl WidgetFeed {
    pub fn new() -> Self {
        Self {
            created: broadcast::channel(BACKLOG).0,
        }
    }

    /// Every widget created from now on.
    pub fn watch(&self) -> broadcast::Receiver<Widget> {
        self.created.subscribe()
    }

    /// The subscription that feeds it: widget events, at most once, to
    /// this process.
    pub fn subscription(&self) -> Subscription {
        let feed = self.clone();
        Subscription::new("widget-feed", WIDGET_EVENTS, Delivery::Live, move |event| {
            let feed = feed.clone();
            async move {
                // Nobody watching is no error.
                if feed.created.receiver_count() > 0 {
                    let _ = feed.created.send(widget_of(&event)?);
                }
                Ok(())
            }
        })
    }
}
