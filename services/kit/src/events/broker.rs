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

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use super::{
    Event, EventsError, Outbox,
    nats::Nats,
    subscription::{Delivery, Subscription},
};
use crate::shutdown::Shutdown;

/// How often the relay looks at the outbox when nobody wakes it: the delay
/// before a retry after the broker or a handler failed.
const RELAY_POLL: Duration = Duration::from_millis(500);
/// Events relayed per database read.
const RELAY_BATCH: u64 = 100;

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
                shutdown.spawn(worker.run(Transport::InProcess(subscriptions)));
            }
            Broker::Nats(nats) => {
                for subscription in subscriptions {
                    shutdown.spawn(nats.clone().consume(
                        service.to_owned(),
                        subscription,
                        shutdown.clone(),
                    ));
                }
                shutdown.spawn(worker.run(Transport::Nats(nats)));
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

    /// Relays until the outbox is empty, something fails or shutdown is
    /// asked for (after the batch under way); in order, so a failed event
    /// holds back the ones after it.
    async fn relay_pending(&self, transport: &Transport) -> Result<(), EventsError> {
        while !self.shutdown.is_triggered() {
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
        Ok(())
    }
}
