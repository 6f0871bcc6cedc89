//! The services orders calls, over gRPC, as itself: each peer is the kit's
//! client stack (every replica of it, balanced by load), which tonic's
//! clients take as it is, with orders' service token from the users
//! service on every call; each method's timeout and retries are the
//! contract's (or a deployment's service config's). Their answers are
//! translated at this boundary into saga outcomes (or, for pricing, into
//! orders errors); the peers' own messages never reach a customer
//! unfiltered.

mod catalog;
mod payments;
mod service_token;

use std::sync::Arc;

use shop_kit::client::{Calls, Credentials, Peer, PeerError, PeerFailure, PeerPolicy, PeerTarget};

pub use catalog::Catalog;
pub use payments::Payments;
pub use service_token::ServiceToken;

use crate::domain::saga::Outcome;

/// Where the peers are (each one address or many), and how orders proves
/// it is orders.
#[derive(Clone, Debug)]
pub struct Peers {
    pub users: PeerTarget,
    pub catalog: PeerTarget,
    pub payments: PeerTarget,
    /// SHOP_SERVICE_SECRET, traded for service tokens. Never printed.
    pub service_secret: secrecy::SecretString,
    /// How each method is called (`shop_proto::calls`).
    pub calls: Calls,
}

/// The peers, connected: the catalog and payments as the saga and pricing
/// call them, each presenting orders' service token.
#[derive(Clone, Debug)]
pub struct Connected {
    pub catalog: Catalog,
    pub payments: Payments,
    /// Every peer orders calls (the users service too, for its token):
    /// orders is not ready until each has an endpoint that serves.
    pub needed: Vec<Peer>,
}

impl Peers {
    /// Resolves every peer (waiting a while for names that do not resolve
    /// yet) and starts watching their endpoints; every call, getting its
    /// service token included, is bounded by its method's deadline (a saga
    /// step's: 3 s) or the caller's, the sooner.
    pub async fn connect(&self) -> Result<Connected, PeerError> {
        let (users, catalog, payments) = tokio::try_join!(
            peer("users", &self.users, &self.calls),
            peer("catalog", &self.catalog, &self.calls),
            peer("payments", &self.payments, &self.calls),
        )?;
        let needed = vec![users.clone(), catalog.clone(), payments.clone()];
        let token: Arc<dyn Credentials> =
            Arc::new(ServiceToken::new(users, self.service_secret.clone()));
        Ok(Connected {
            catalog: Catalog::new(catalog.with_credentials(token.clone())),
            payments: Payments::new(payments.with_credentials(token)),
            needed,
        })
    }
}

/// The client stack for one peer (its replicas balanced by load, each
/// method's deadline and retries or hedging as the contract says, a breaker
/// per replica, bulkhead).
async fn peer(name: &str, target: &PeerTarget, calls: &Calls) -> Result<Peer, PeerError> {
    Peer::connect(
        name,
        target,
        PeerPolicy {
            calls: calls.clone(),
            ..PeerPolicy::default()
        },
    )
    .await
}

/// An answer that says nothing for good, on the kit's one ladder
/// (`PeerFailure`): the peer (or the way to it) may do better later.
/// Logged here; the customer hears only which service. A call the client
/// stack did not even send (the peer's breaker open, too many calls in
/// flight) is no attempt; one that could not carry orders' service token,
/// because the users service would not issue one, is the users service's
/// failure.
fn unavailable(peer: &str, status: &tonic::Status) -> Outcome {
    match PeerFailure::of(status) {
        PeerFailure::NoCredentials => {
            tracing::warn!(
                peer,
                message = status.message(),
                "no service token for a peer call"
            );
            Outcome::Unavailable("users service".to_owned())
        }
        // Not sent, whatever the rung (no time left to send it included):
        // a step that had no effect.
        _ if shop_kit::client::was_not_sent(status) => {
            tracing::debug!(peer, message = status.message(), "peer call not sent");
            Outcome::NotSent(format!("{peer} service"))
        }
        _ => {
            tracing::warn!(peer, code = ?status.code(), message = status.message(), "peer call failed");
            Outcome::Unavailable(format!("{peer} service"))
        }
    }
}
