//! Events between services: what an event is, the transactional outbox that
//! records it with the state change (and lets it go once published), and
//! the relay and broker that carry it (in process, or NATS JetStream).
//! Delivery is at least once: a consumer makes an event delivered twice
//! change nothing (say, by the aggregate's version). Which events exist and
//! what they mean is each service's business (its `events.rs`), not the
//! kit's.

mod broker;
mod ledger;
mod nats;
mod nats_server;
mod outbox;
mod retention;
mod subscription;

use serde::{Deserialize, Serialize};

pub use broker::{Broker, Relay};
pub use ledger::Ledger;
pub use nats_server::NatsServer;
pub use outbox::Outbox;
pub use retention::KEEP_PUBLISHED_FOR;
pub use subscription::{Delivery, Handler, Subscription};

/// `duration` in milliseconds, as the outbox's timestamps count them.
fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Everything that can fail while recording, relaying or consuming events.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("events database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("handler {consumer}: {reason}")]
    Handler { consumer: String, reason: String },
}

/// One fact that happened to one aggregate (an order, a product's stock, a
/// payment), as published: JSON, the same on every transport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique per event: consumers deduplicate by it.
    pub id: String,
    /// What happened, `<aggregate>.<fact>`, e.g. `order.confirmed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The service that published it.
    pub source: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// The order, product or payment it happened to.
    pub aggregate_id: String,
    /// The aggregate's version after it: consumers ignore older news.
    pub version: i64,
    /// The W3C trace context of the work that caused it (empty when traces
    /// are off): its consumers' spans link to it.
    pub traceparent: String,
    /// The fact itself, as the publishing service defines it.
    pub data: serde_json::Value,
}

impl Event {
    /// A new event, stamped with a fresh id, the current time and the
    /// current span's trace context.
    pub fn new(
        source: &str,
        event_type: &str,
        aggregate_id: &str,
        version: i64,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.to_owned(),
            source: source.to_owned(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            aggregate_id: aggregate_id.to_owned(),
            version,
            traceparent: shop_kit_observe::traces::current_traceparent(),
            data,
        }
    }

    /// When it happened, in milliseconds since the Unix epoch (as the
    /// outbox stores it).
    pub fn occurred_at_ms(&self) -> i64 {
        outbox::occurred_at_ms(&self.time)
    }

    /// The NATS subject it travels on: `shop.events.<type>`.
    pub fn subject(&self) -> String {
        format!("{SUBJECT_PREFIX}{}", self.event_type)
    }
}

/// Every event's subject starts with this.
pub const SUBJECT_PREFIX: &str = "shop.events.";
