//! Carrying events from the outbox to their consumers. The relay reads a
//! service's outbox in commit order and hands each event to the broker,
//! marking it published only once the broker has it:
//!
//! - in process (the default, `cargo run`): the relay calls this process's
//!   subscribers itself, and an event stays unpublished until every durable
//!   subscriber has handled it;
//! - NATS JetStream (`NATS_URL`): the relay publishes to the stream (with the
//!   event id as `Nats-Msg-Id`, so the server drops duplicates) and each
//!   durable subscription is a durable pull consumer that acks after
//!   handling; live subscriptions are core NATS subscriptions.
//!
//! Either way delivery is at least once: handlers must be idempotent (see
//! [`super::Inbox`]).

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use super::{Event, EventsError, Outbox, nats::Nats};
use crate::Shutdown;

/// How often the relay looks at the outbox when nobody wakes it: the delay
/// before a retry after the broker or a handler failed.
const RELAY_POLL: Duration = Duration::from_millis(500);
/// Events relayed per database read.
const RELAY_BATCH: u64 = 100;

/// Handles one event; an `Err` means "not handled, deliver it again".
pub type Handler = Arc<dyn Fn(Event) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

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
    name: String,
    /// Event types starting with this, e.g. `order.`.
    types: String,
    delivery: Delivery,
    handler: Handler,
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
    /// `types` is a prefix of the event types it wants, ending in `.`.
    pub fn new<F, Fut>(name: &str, types: &str, delivery: Delivery, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.to_owned(),
            types: types.to_owned(),
            delivery,
            handler: Arc::new(move |event| Box::pin(handler(event))),
        }
    }

    fn wants(&self, event: &Event) -> bool {
        event.event_type.starts_with(&self.types)
    }

    /// The NATS subject filter for its types: `shop.events.order.>`.
    fn subject_filter(&self) -> String {
        format!("{}{}>", super::SUBJECT_PREFIX, self.types)
    }
}

/// Where events go.
#[derive(Clone, Debug)]
pub enum Broker {
    InProcess,
    Nats(Box<Nats>),
}

impl Broker {
    /// NATS JetStream at `nats_url` if given, else in process. Connecting
    /// does not wait for the server: events wait in the outbox meanwhile.
    pub async fn new(nats_url: Option<&str>) -> Result<Self, EventsError> {
        Ok(match nats_url {
            None => Self::InProcess,
            Some(url) => Self::Nats(Box::new(Nats::connect(url).await?)),
        })
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::InProcess => "in process",
            Self::Nats(_) => "NATS JetStream",
        }
    }
}

/// A running relay: wake it after committing events so they go at once.
#[derive(Clone, Debug, Default)]
pub struct Relay {
    wake: Arc<Notify>,
}

impl Relay {
    /// Starts relaying `service`'s outbox and delivering to `subscriptions`
    /// until `shutdown`.
    pub fn start(
        db: DatabaseConnection,
        service: &str,
        broker: Broker,
        subscriptions: Vec<Subscription>,
        shutdown: &Shutdown,
    ) -> Self {
        let relay = Self::default();
        let worker = Worker {
            db,
            service: service.to_owned(),
            outbox: Outbox::new(service),
            wake: relay.wake.clone(),
            shutdown: shutdown.clone(),
        };
        match broker {
            Broker::InProcess => {
                tokio::spawn(worker.run(Transport::InProcess(subscriptions)));
            }
            Broker::Nats(nats) => {
                for subscription in subscriptions {
                    tokio::spawn(nats.clone().consume(
                        service.to_owned(),
                        subscription,
                        shutdown.clone(),
                    ));
                }
                tokio::spawn(worker.run(Transport::Nats(nats)));
            }
        }
        relay
    }

    /// Relay now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

enum Transport {
    InProcess(Vec<Subscription>),
    Nats(Box<Nats>),
}

impl Transport {
    async fn deliver(&self, event: &Event) -> Result<(), EventsError> {
        match self {
            Self::Nats(nats) => nats.publish(event).await,
            Self::InProcess(subscriptions) => {
                for subscription in subscriptions.iter().filter(|s| s.wants(event)) {
                    let handled = (subscription.handler)(event.clone()).await;
                    match (handled, subscription.delivery) {
                        (Ok(()), _) => {}
                        (Err(reason), Delivery::Live) => {
                            tracing::debug!(consumer = %subscription.name, %reason, "live delivery failed");
                        }
                        (Err(reason), Delivery::Durable) => {
                            return Err(EventsError::Handler {
                                consumer: subscription.name.clone(),
                                reason,
                            });
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

struct Worker {
    db: DatabaseConnection,
    service: String,
    outbox: Outbox,
    wake: Arc<Notify>,
    shutdown: Shutdown,
}

impl Worker {
    async fn run(self, transport: Transport) {
        let mut failing = false;
        loop {
            match self.relay_pending(&transport).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(service = %self.service, "events flow again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(service = %self.service, %error, "events wait in the outbox");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = self.shutdown.requested() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(RELAY_POLL) => {}
            }
        }
    }

    /// Relays until the outbox is empty or something fails; in order, so a
    /// failed event holds back the ones after it.
    async fn relay_pending(&self, transport: &Transport) -> Result<(), EventsError> {
        loop {
            let batch = self
                .outbox
                .unpublished(&self.db, &self.service, RELAY_BATCH)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for (seq, event) in batch {
                transport.deliver(&event).await?;
                self.outbox
                    .mark_published(&self.db, &[seq], chrono::Utc::now().timestamp_millis())
                    .await?;
                metrics::counter!("shop_events_published_total",
                    "service" => self.service.clone(), "type" => event.event_type.clone())
                .increment(1);
            }
        }
    }
}

impl Nats {
    /// Delivers `subscription`'s events from NATS until `shutdown`,
    /// reconnecting after failures.
    async fn consume(self, service: String, subscription: Subscription, shutdown: Shutdown) {
        loop {
            let consumed = match subscription.delivery {
                Delivery::Durable => {
                    let durable = format!("{service}-{}", subscription.name);
                    self.consume_durable(
                        &durable,
                        &subscription.subject_filter(),
                        &subscription.handler,
                        &shutdown,
                    )
                    .await
                }
                Delivery::Live => {
                    self.consume_live(
                        &subscription.subject_filter(),
                        &subscription.handler,
                        &shutdown,
                    )
                    .await
                }
            };
            if shutdown.is_triggered() {
                return;
            }
            if let Err(error) = consumed {
                tracing::warn!(consumer = %subscription.name, %error, "event consumer restarts");
            }
            tokio::select! {
                () = shutdown.requested() => return,
                () = tokio::time::sleep(RELAY_POLL) => {}
            }
        }
    }
}
