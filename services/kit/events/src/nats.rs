//! NATS JetStream as the events broker: one stream, `SHOP_EVENTS`, holding
//! every `shop.events.>` subject on disk, within bounds: the oldest events
//! go once the stream holds [`STREAM_MAX_BYTES`] or they are older than
//! [`STREAM_MAX_AGE`] (the outbox, not the stream, is the truth; a consumer
//! away longer than that starts from what is left).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
    message::PublishMessage,
    stream,
};
use futures::StreamExt;

use super::{
    Event, EventsError, NatsServer,
    nats_server::Credentials,
    subscription::{Delivery, Handler, Subscription},
};
use shop_kit_shutdown::Shutdown;

const STREAM: &str = "SHOP_EVENTS";
/// The stream's size on disk, at most: the server's own JetStream limit
/// (`max_file_store`) must leave room for it.
pub const STREAM_MAX_BYTES: i64 = 1024 * 1024 * 1024;
/// How long an event stays in the stream, at most.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// One event's size, at most (an event is a few hundred bytes of JSON).
const STREAM_MAX_MESSAGE_BYTES: i32 = 64 * 1024;
/// A publish not acknowledged by then counts as failed (and is retried).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// A consumer that lost the server tries again after this.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// A handler that fails gets the event again after this.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

fn nats_error(error: impl std::fmt::Display) -> EventsError {
    EventsError::Nats(error.to_string())
}

/// Messages a durable consumer handles at once, at most.
const CONSUME_BATCH: usize = 256;

#[derive(Clone, Debug)]
pub struct Nats {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// Whether the stream is known to exist (asked once, not per publish).
    stream_ready: Arc<AtomicBool>,
}

impl Nats {
    /// Connects as `client` (the service's name, in the server's
    /// connection list).
    pub async fn connect(server: &NatsServer, client: &str) -> Result<Self, EventsError> {
        let mut options = match server.credentials() {
            Some(Credentials::Token(token)) => async_nats::ConnectOptions::with_token(token),
            Some(Credentials::UserAndPassword(user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user, password)
            }
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(ca) = server.ca() {
            options = options.add_root_certificates(ca.clone());
        }
        let client = options
            .require_tls(server.tls())
            .name(client)
            .retry_on_initial_connect()
            // Back quickly once the server is: events wait meanwhile.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64.saturating_mul(attempts as u64).min(1_000))
            })
            .connect(server.url())
            .await
            .map_err(|e| EventsError::Nats(format!("{}: {e}", server.redacted())))?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self {
            client,
            jetstream,
            stream_ready: Arc::default(),
        })
    }

    /// The stream, created or brought to today's limits (a stream made by
    /// an older release, without them, gets them).
    async fn stream(&self) -> Result<stream::Stream, EventsError> {
        self.jetstream
            .create_or_update_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![format!("{}>", super::SUBJECT_PREFIX)],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::Old,
                max_bytes: STREAM_MAX_BYTES,
                max_age: STREAM_MAX_AGE,
                max_message_size: STREAM_MAX_MESSAGE_BYTES,
                ..Default::default()
            })
            .await
            .map_err(nats_error)?;
        self.jetstream.get_stream(STREAM).await.map_err(nats_error)
    }

    /// Publishes `events` in order and waits for JetStream to have stored
    /// every one (the publishes go out together, then the acks are read).
    pub async fn publish_all(&self, events: &[Event]) -> Result<(), EventsError> {
        if !self.stream_ready.load(Ordering::Relaxed) {
            self.stream().await?;
            self.stream_ready.store(true, Ordering::Relaxed);
        }
        let publish = async {
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let payload = serde_json::to_vec(event)?;
                acks.push(
                    self.jetstream
                        .send_publish(
                            event.subject(),
                            PublishMessage::build()
                                .payload(payload.into())
                                .message_id(&event.id),
                        )
                        .await
                        .map_err(nats_error)?,
                );
            }
            for ack in acks {
                ack.await.map_err(nats_error)?;
            }
            Ok::<(), EventsError>(())
        };
        let published = tokio::time::timeout(PUBLISH_TIMEOUT, publish)
            .await
            .map_err(|_| EventsError::Nats("publish not acknowledged in time".into()))?;
        if published.is_err() {
            // The server may have lost the stream (restarted empty).
            self.stream_ready.store(false, Ordering::Relaxed);
        }
        published
    }

    /// A durable pull consumer: each event is acked after `handler` has
    /// handled it, and redelivered if it failed or the process died first.
    pub async fn consume_durable(
        &self,
        durable: &str,
        filter: &str,
        handler: &Handler,
        shutdown: &Shutdown,
    ) -> Result<(), EventsError> {
        let consumer = self
            .stream()
            .await?
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_owned()),
                    filter_subject: filter.to_owned(),
                    ack_policy: AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats_error)?;
        // Short heartbeats and pulls: a server that went away and came back
        // is noticed in seconds, and the consumer starts again.
        let messages = consumer
            .stream()
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(nats_error)?;
        // Every message already here is handled at once.
        let mut batches = messages.ready_chunks(CONSUME_BATCH);
        loop {
            let batch = tokio::select! {
                () = shutdown.requested() => return Ok(()),
                next = batches.next() => match next {
                    Some(batch) => batch,
                    None => return Err(EventsError::Nats("consumer ended".into())),
                },
            };
            let mut messages = Vec::with_capacity(batch.len());
            let mut events = Vec::with_capacity(batch.len());
            for message in batch {
                let message = message.map_err(nats_error)?;
                match serde_json::from_slice::<Event>(&message.payload) {
                    Ok(event) => {
                        events.push(event);
                        messages.push(message);
                    }
                    Err(error) => {
                        // Never handleable: drop it rather than loop forever.
                        tracing::error!(subject = %message.subject, %error, "malformed event dropped");
                        message.ack_with(AckKind::Term).await.map_err(nats_error)?;
                    }
                }
            }
            if events.is_empty() {
                continue;
            }
            let handled = handler(events).await;
            if let Err(reason) = &handled {
                tracing::warn!(consumer = durable, %reason, "event handling failed, redelivering");
            }
            for message in messages {
                match &handled {
                    Ok(()) => message.ack().await.map_err(nats_error)?,
                    Err(_) => message
                        .ack_with(AckKind::Nak(Some(REDELIVERY_DELAY)))
                        .await
                        .map_err(nats_error)?,
                }
            }
        }
    }

    /// A core NATS subscription: events published from now on, to this
    /// process.
    pub async fn consume_live(
        &self,
        filter: &str,
        handler: &Handler,
        shutdown: &Shutdown,
    ) -> Result<(), EventsError> {
        let mut messages = self
            .client
            .subscribe(filter.to_owned())
            .await
            .map_err(nats_error)?;
        loop {
            let message = tokio::select! {
                () = shutdown.requested() => return Ok(()),
                next = messages.next() => match next {
                    Some(message) => message,
                    None => return Err(EventsError::Nats("subscription ended".into())),
                },
            };
            if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                let _ = handler(vec![event]).await;
            }
        }
    }
}

impl Nats {
    /// Delivers `subscription`'s events from NATS until `shutdown`,
    /// reconnecting after failures.
    pub(super) async fn consume(
        self,
        service: String,
        subscription: Subscription,
        shutdown: Shutdown,
    ) {
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
                () = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
        }
    }
}
