//! Carrying events from the outbox to their consumers. A service hands the
//! relay the events of each transaction once it has committed; the relay
//! delivers them at once to the broker (or this process's live
//! subscribers), then, in batches a moment later, to this process's
//! durable subscribers, and marks a batch published (one statement) once
//! every one has it:
//!
//! - in process (the default, `cargo run`): the relay calls this process's
//!   subscribers itself, and an event stays unpublished until every durable
//!   subscriber has handled it;
//! - NATS JetStream (`NATS_URL`): the relay publishes to the stream (with the
//!   event id as `Nats-Msg-Id`, so the server drops duplicates) and each
//!   durable subscription is a durable pull consumer that acks after
//!   handling; live subscriptions are core NATS subscriptions.
//!
//! The outbox stays the truth: events the relay never got (a crash after the
//! commit, a full hand-over queue) or could not deliver (the broker down, a
//! durable handler failing) are read back from it in commit order once they
//! are a couple of seconds old (younger ones are still on their way through
//! the relay of the process that committed them, maybe another replica),
//! each batch claimed first (one `UPDATE ... RETURNING`, skipping rows
//! another replica holds), so replicas sharing an outbox relay each event
//! once. While events wait there, new ones are left to the outbox too. An
//! event may then overtake an older one of another aggregate, never its own
//! aggregate's newer news unnoticed: consumers keep the newest version.
//! Delivery is at least once: handlers must be idempotent. Published
//! events leave the outbox once `KEEP_PUBLISHED_FOR` old (a sweep every
//! 30 s, see `retention`).

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    StatementBuilder,
};
use tokio::sync::mpsc;

use super::{
    Event, EventsError, NatsServer, Outbox, millis,
    nats::Nats,
    subscription::{Delivery, Subscription},
};
use shop_kit_shutdown::Shutdown;

/// How often the relay reads the outbox for events it was not handed (and,
/// after a failure, how soon it tries again).
const RELAY_POLL: Duration = Duration::from_secs(1);
/// An unpublished event this old was lost on its way to the relay (or its
/// delivery failed): the poll takes it from the outbox. Younger ones are
/// being relayed by the process that committed them, which may be another
/// replica.
const HANDED_OVER_WITHIN: Duration = Duration::from_secs(2);
/// How long a poll's claim on the events it relays lasts: longer than a
/// publish may take. A relay that dies leaves them to another after it.
const CLAIM_FOR: Duration = Duration::from_secs(15);
/// Events delivered and marked published at once, at most.
const RELAY_BATCH: usize = 256;
/// Events handed over are delivered at once to whoever waits for news
/// (live subscribers, the broker); the durable subscribers in this process
/// get them, and the outbox marks them published, in one batch this much
/// later at most: a read model lags by that, and costs a few statements
/// per batch rather than per event.
const FINISH_AFTER: Duration = Duration::from_millis(100);
/// Committed events waiting for the relay; beyond this they wait in the
/// outbox for the poll instead.
const HAND_OVER_QUEUE: usize = 8192;

/// Where events go.
#[derive(Clone, Debug)]
pub enum Broker {
    InProcess,
    Nats(Box<Nats>),
}

impl Broker {
    /// NATS JetStream on `nats` if given, else in process; `service`
    /// names the connection. Connecting does not wait for the server:
    /// events wait in the outbox meanwhile.
    pub async fn new(nats: Option<&NatsServer>, service: &str) -> Result<Self, EventsError> {
        Ok(match nats {
            None => Self::InProcess,
            Some(server) => Self::Nats(Box::new(Nats::connect(server, service).await?)),
        })
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::InProcess => "in process",
            Self::Nats(_) => "NATS JetStream",
        }
    }
}

/// A running relay: hand it the events of each committed transaction
/// ([`Relay::commit`] does both).
#[derive(Clone, Debug)]
pub struct Relay {
    outbox: Outbox,
    committed: Arc<mpsc::Sender<Event>>,
}

impl Relay {
    /// Starts relaying `service`'s outbox and delivering to `subscriptions`
    /// until `shutdown`; events left in the outbox by an earlier run go
    /// first.
    pub fn start(
        db: DatabaseConnection,
        service: &str,
        broker: Broker,
        subscriptions: Vec<Subscription>,
        shutdown: &Shutdown,
    ) -> Self {
        let (committed, handed_over) = mpsc::channel(HAND_OVER_QUEUE);
        let outbox = Outbox::new(service);
        let worker = Worker {
            db: db.clone(),
            service: service.to_owned(),
            outbox: outbox.clone(),
            shutdown: shutdown.clone(),
        };
        let transport = match broker {
            Broker::InProcess => Transport::InProcess(subscriptions),
            Broker::Nats(nats) => {
                for subscription in subscriptions {
                    shutdown.spawn(nats.clone().consume(
                        service.to_owned(),
                        subscription,
                        shutdown.clone(),
                    ));
                }
                Transport::Nats(nats)
            }
        };
        shutdown.spawn(worker.run(transport, handed_over));
        shutdown.spawn(super::retention::sweep_published(
            db,
            service.to_owned(),
            outbox.clone(),
            shutdown.clone(),
        ));
        Self {
            outbox,
            committed: Arc::new(committed),
        }
    }

    /// The transactional outbox at work: records `events` in `txn` (the
    /// transaction making the change they report), commits it, and hands
    /// them over to be delivered.
    pub async fn commit(&self, txn: DatabaseTransaction, events: Vec<Event>) -> Result<(), DbErr> {
        self.outbox.append_all(&txn, &events).await?;
        txn.commit().await?;
        self.committed(events);
        Ok(())
    }

    /// The outbox this relay carries from.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Makes `change` (a statement with a `RETURNING` clause) on `db` and,
    /// only if it returned a row, records `events` with it, atomically;
    /// hands them over once committed, and answers the rows. On PostgreSQL that is one statement ([`Outbox::with_change`]):
    /// one round trip, no `BEGIN`, no `COMMIT`; on SQLite, a transaction.
    /// A change that returns no row (a condition not met) records nothing.
    pub async fn record<S: StatementBuilder>(
        &self,
        db: &DatabaseConnection,
        change: &S,
        events: Vec<Event>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let backend = db.get_database_backend();
        let change = backend.build(change);
        let rows = if backend == DbBackend::Postgres {
            db.query_all_raw(self.outbox.with_change(change, &events)?)
                .await?
        } else {
            let txn = shop_kit_db::begin(db).await?;
            let rows = txn.query_all_raw(change).await?;
            if rows.is_empty() {
                txn.rollback().await?;
                return Ok(rows);
            }
            self.outbox.append_all(&txn, &events).await?;
            txn.commit().await?;
            rows
        };
        if !rows.is_empty() {
            self.committed(events);
        }
        Ok(rows)
    }

    /// Hands over events just committed (to the outbox, with the change
    /// they report). Never waits: if the relay is far behind, they wait
    /// in the outbox for its next poll.
    pub fn committed(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            if self.committed.try_send(event).is_err() {
                // Full or stopped: the outbox has it.
                return;
            }
        }
    }
}

enum Transport {
    InProcess(Vec<Subscription>),
    Nats(Box<Nats>),
}

/// Which subscribers a delivery reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Those waiting for news now: live subscribers, or the broker.
    Now,
    /// The durable subscribers in this process (read models): handed
    /// whole batches, a moment later.
    Durable,
}

impl Transport {
    /// Delivers a batch, in order, to the subscribers `reach` names: all of
    /// it, or an error (then all of it is delivered again later; consumers
    /// are idempotent).
    async fn deliver(&self, events: &[Event], reach: Reach) -> Result<(), EventsError> {
        match (self, reach) {
            (Self::Nats(nats), Reach::Now) => nats.publish_all(events).await,
            // Over NATS, durable subscribers are JetStream consumers.
            (Self::Nats(_), Reach::Durable) => Ok(()),
            (Self::InProcess(subscriptions), reach) => {
                let reached = subscriptions.iter().filter(|subscription| {
                    (subscription.delivery == Delivery::Durable) == (reach == Reach::Durable)
                });
                for subscription in reached {
                    let wanted: Vec<Event> = events
                        .iter()
                        .filter(|event| subscription.wants(event))
                        .cloned()
                        .collect();
                    if wanted.is_empty() {
                        continue;
                    }
                    match ((subscription.handler)(wanted).await, subscription.delivery) {
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

/// `first` and whatever else is waiting, up to a batch.
fn take_handed_over(first: Event, handed_over: &mut mpsc::Receiver<Event>) -> Vec<Event> {
    let mut batch = vec![first];
    while batch.len() < RELAY_BATCH {
        match handed_over.try_recv() {
            Ok(event) => batch.push(event),
            Err(_) => break,
        }
    }
    batch
}

/// Where the relay takes events from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// As they are handed over; the poll only looks for lost ones.
    HandedOver,
    /// From the outbox, in commit order, until it is empty: at start, and
    /// after a delivery failed.
    Outbox,
}

struct Worker {
    db: DatabaseConnection,
    service: String,
    outbox: Outbox,
    shutdown: Shutdown,
}

impl Worker {
    async fn run(self, transport: Transport, mut handed_over: mpsc::Receiver<Event>) {
        let mut source = Source::Outbox;
        let mut failing = false;
        // Delivered now, waiting for the durable subscribers and to be
        // marked published: a batch every FINISH_AFTER at most.
        let mut unfinished: Vec<Event> = Vec::new();
        let finish_timer = tokio::time::sleep(FINISH_AFTER);
        tokio::pin!(finish_timer);
        let mut poll = tokio::time::interval(RELAY_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let delivered = tokio::select! {
                () = self.shutdown.requested() => {
                    if let Err(error) = self.finish(&transport, &mut unfinished).await {
                        tracing::debug!(service = %self.service, %error, "events left to the next start");
                    }
                    return;
                }
                first = handed_over.recv() => {
                    let Some(first) = first else { return };
                    let batch = take_handed_over(first, &mut handed_over);
                    match source {
                        // The outbox holds these too, behind older ones.
                        Source::Outbox => continue,
                        Source::HandedOver => {
                            match self.deliver_now(&transport, batch, &mut unfinished).await {
                                Ok(starts) => {
                                    if starts {
                                        finish_timer.as_mut().reset(tokio::time::Instant::now() + FINISH_AFTER);
                                    }
                                    if unfinished.len() >= RELAY_BATCH {
                                        self.finish(&transport, &mut unfinished).await
                                    } else {
                                        Ok(())
                                    }
                                }
                                Err(error) => Err(error),
                            }
                        }
                    }
                }
                () = &mut finish_timer, if !unfinished.is_empty() => {
                    self.finish(&transport, &mut unfinished).await
                }
                _ = poll.tick() => self.catch_up(&transport).await,
            };
            match delivered {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(service = %self.service, "events flow again");
                    }
                    source = Source::HandedOver;
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(service = %self.service, %error, "events wait in the outbox");
                    }
                    // Whatever was under way is read back from the outbox.
                    unfinished.clear();
                    source = Source::Outbox;
                }
            }
        }
    }

    /// Delivers events just handed over to whoever waits for news, and
    /// keeps them for the durable subscribers' next batch; true if they
    /// start that batch.
    async fn deliver_now(
        &self,
        transport: &Transport,
        batch: Vec<Event>,
        unfinished: &mut Vec<Event>,
    ) -> Result<bool, EventsError> {
        transport.deliver(&batch, Reach::Now).await?;
        let starts = unfinished.is_empty();
        unfinished.extend(batch);
        Ok(starts)
    }

    /// Hands the events delivered meanwhile to the durable subscribers and
    /// marks them published: one batch, one statement.
    async fn finish(
        &self,
        transport: &Transport,
        unfinished: &mut Vec<Event>,
    ) -> Result<(), EventsError> {
        if unfinished.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(unfinished);
        transport.deliver(&batch, Reach::Durable).await?;
        self.mark_published(&batch).await
    }

    /// Relays, batch by batch and in commit order, every event that should
    /// have been relayed by now and was not (lost on its way to a relay, or
    /// its delivery failed), claiming each batch first so that replicas
    /// sharing the outbox never relay the same event; until none is left
    /// (or shutdown is asked for).
    async fn catch_up(&self, transport: &Transport) -> Result<(), EventsError> {
        while !self.shutdown.is_triggered() {
            let now = chrono::Utc::now().timestamp_millis();
            let batch = self
                .outbox
                .claim(
                    &self.db,
                    &self.service,
                    RELAY_BATCH as u64,
                    now.saturating_sub(millis(HANDED_OVER_WITHIN)),
                    now,
                    now.saturating_add(millis(CLAIM_FOR)),
                )
                .await?;
            self.record_lag(&batch, now);
            if batch.is_empty() {
                return Ok(());
            }
            if let Err(error) = self.relay(transport, &batch).await {
                let ids: Vec<&str> = batch.iter().map(|event| event.id.as_str()).collect();
                // Best effort: else the claim lapses.
                let _ = self.outbox.unclaim(&self.db, &ids).await;
                return Err(error);
            }
            if batch.len() < RELAY_BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    /// How long the oldest event the catch-up found has waited to be
    /// relayed (0 when it found none): `shop_outbox_lag_seconds`. A relay
    /// that cannot deliver claims the same events again and again, so the
    /// lag it reports grows until it delivers.
    fn record_lag(&self, batch: &[Event], now_ms: i64) {
        let oldest = batch
            .iter()
            .map(Event::occurred_at_ms)
            .min()
            .unwrap_or(now_ms);
        metrics::gauge!("shop_outbox_lag_seconds", "service" => self.service.clone())
            .set(now_ms.saturating_sub(oldest).max(0) as f64 / 1000.0);
    }

    /// Delivers a batch to every subscriber and marks it published.
    async fn relay(&self, transport: &Transport, batch: &[Event]) -> Result<(), EventsError> {
        transport.deliver(batch, Reach::Now).await?;
        transport.deliver(batch, Reach::Durable).await?;
        self.mark_published(batch).await
    }

    async fn mark_published(&self, batch: &[Event]) -> Result<(), EventsError> {
        let ids: Vec<&str> = batch.iter().map(|event| event.id.as_str()).collect();
        self.outbox
            .mark_published(&self.db, &ids, chrono::Utc::now().timestamp_millis())
            .await?;
        metrics::counter!("shop_events_published_total", "service" => self.service.clone())
            .increment(batch.len() as u64);
        Ok(())
    }
}
