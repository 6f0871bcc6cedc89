//! A service's own database together with the relay its committed events
//! go to: what a store that records events holds, so that no store pairs
//! them by hand.

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, QueryResult, StatementBuilder};
use shop_kit_shutdown::Shutdown;

use super::{Broker, Event, Relay, Subscription};

/// A database whose changes may carry events, and the relay that delivers
/// them once committed (the transactional outbox, see [`Relay`]).
#[derive(Clone, Debug)]
pub struct Ledger {
    db: DatabaseConnection,
    relay: Relay,
}

impl Ledger {
    /// `db`, with `service`'s events relayed through `broker` to
    /// `subscriptions` until `shutdown` (see [`Relay::start`]).
    pub fn start(
        db: DatabaseConnection,
        service: &str,
        broker: Broker,
        subscriptions: Vec<Subscription>,
        shutdown: &Shutdown,
    ) -> Self {
        let relay = Relay::start(db.clone(), service, broker, subscriptions, shutdown);
        Self { db, relay }
    }

    /// The database, for reads and for changes that report no event.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The relay, for stores that write their outbox rows themselves.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Records `events` in `txn`, commits it and hands them over
    /// ([`Relay::commit`]).
    pub async fn commit(&self, txn: DatabaseTransaction, events: Vec<Event>) -> Result<(), DbErr> {
        self.relay.commit(txn, events).await
    }

    /// Makes `change` and, if it returned a row, records `events` with it,
    /// atomically ([`Relay::record`]).
    pub async fn record<S: StatementBuilder>(
        &self,
        change: &S,
        events: Vec<Event>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        self.relay.record(&self.db, change, events).await
    }
}
