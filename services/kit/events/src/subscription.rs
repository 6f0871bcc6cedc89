//! Who consumes which events, and how they want them delivered.

use std::sync::Arc;

use futures::future::BoxFuture;
use tracing::Instrument;

use super::Event;

/// Handles a batch of events, in the order they were published; an `Err`
/// means "not all handled, deliver them again" (handlers are idempotent).
pub type Handler = Arc<dyn Fn(Vec<Event>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What a subscriber needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every event, at least once, across restarts (read models, reactions).
    Durable,
    /// Events from now on, at most once, to this process only (live
    /// streams to clients, who read the current state first).
    Live,
}

/// A consumer of one kind of event.
#[derive(Clone)]
pub struct Subscription {
    pub(super) name: String,
    /// Event types starting with this, e.g. `order.`.
    types: String,
    pub(super) delivery: Delivery,
    pub(super) handler: Handler,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("types", &self.types)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// `name` identifies the consumer (it names the durable NATS consumer);
    /// `types` is a prefix of the event types it wants, ending in `.`;
    /// `handler` takes one event at a time.
    pub fn new<F, Fut>(name: &str, types: &str, delivery: Delivery, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Self::batched(name, types, delivery, move |events| {
            let handler = handler.clone();
            async move {
                for event in events {
                    handler(event).await?;
                }
                Ok(())
            }
        })
    }

    /// As [`Subscription::new`], with a handler that takes every event
    /// ready at once (a consumer writing to its database does it in one
    /// transaction).
    pub fn batched<F, Fut>(name: &str, types: &str, delivery: Delivery, handler: F) -> Self
    where
        F: Fn(Vec<Event>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let consumer = name.to_owned();
        Self {
            name: name.to_owned(),
            types: types.to_owned(),
            delivery,
            // Every delivery, in process or over NATS, passes here: its
            // span links to the work that wrote each event.
            handler: Arc::new(move |events: Vec<Event>| {
                let span = shop_kit_observe::traces::consumer_span(
                    &consumer,
                    events.iter().map(|event| event.traceparent.as_str()),
                );
                Box::pin(handler(events).instrument(span))
            }),
        }
    }

    pub(super) fn wants(&self, event: &Event) -> bool {
        event.event_type.starts_with(&self.types)
    }

    /// The NATS subject filter for its types: `shop.events.order.>`.
    pub(super) fn subject_filter(&self) -> String {
        format!("{}{}>", super::SUBJECT_PREFIX, self.types)
    }
}
