//! NATS JetStream as the events broker: one stream, `SHOP_EVENTS`, holding
//! every `shop.events.>` subject on disk.

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
    message::PublishMessage,
    stream,
};
use futures::StreamExt;

use super::{
    Event, EventsError,
    subscription::{Delivery, Handler, Subscription},
};
use crate::shutdown::Shutdown;

const STREAM: &str = "SHOP_EVENTS";
/// A publish not acknowledged by then counts as failed (and is retried).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// A consumer that lost the server tries again after this.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// A handler that fails gets the event again after this.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

fn nats_error(error: impl std::fmt::Display) -> EventsError {
    EventsError::Nats(error.to_string())
}

#[derive(Clone, Debug)]
pub struct Nats {
    client: async_nats::Client,
    jetstream: jetstream::Context,
}

impl Nats {
    pub async fn connect(url: &str) -> Result<Self, EventsError> {
        let client = async_nats::ConnectOptions::new()
            .name("connect-shop")
            .retry_on_initial_connect()
            // Back quickly once the server is: events wait meanwhile.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64.saturating_mul(attempts as u64).min(1_000))
            })
            .connect(url)
            .await
            .map_err(nats_error)?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self { client, jetstream })
    }

    async fn stream(&self) -> Result<stream::Stream, EventsError> {
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![format!("{}>", super::SUBJECT_PREFIX)],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(nats_error)
    }

    /// Publishes `event` and waits for JetStream to have stored it.
    pub async fn publish(&self, event: &Event) -> Result<(), EventsError> {
        self.stream().await?;
        let payload = serde_json::to_vec(event)?;
        let publish = async {
            self.jetstream
                .send_publish(
                    event.subject(),
                    PublishMessage::build()
                        .payload(payload.into())
                        .message_id(&event.id),
                )
                .await
                .map_err(nats_error)?
                .await
                .map_err(nats_error)
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, publish)
            .await
            .map_err(|_| EventsError::Nats("publish not acknowledged in time".into()))??;
        Ok(())
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
        let mut messages = consumer
            .stream()
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(nats_error)?;
        loop {
            let message = tokio::select! {
                () = shutdown.requested() => return Ok(()),
                next = messages.next() => match next {
                    Some(message) => message.map_err(nats_error)?,
                    None => return Err(EventsError::Nats("consumer ended".into())),
                },
            };
            let event: Event = match serde_json::from_slice(&message.payload) {
                Ok(event) => event,
                Err(error) => {
                    // Never handleable: drop it rather than loop forever.
                    tracing::error!(subject = %message.subject, %error, "malformed event dropped");
                    message.ack_with(AckKind::Term).await.map_err(nats_error)?;
                    continue;
                }
            };
            match handler(event).await {
                Ok(()) => message.ack().await.map_err(nats_error)?,
                Err(reason) => {
                    tracing::warn!(consumer = durable, %reason, "event handling failed, redelivering");
                    message
                        .ack_with(AckKind::Nak(Some(REDELIVERY_DELAY)))
                        .await
                        .map_err(nats_error)?;
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
                let _ = handler(event).await;
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
