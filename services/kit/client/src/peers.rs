//! The services a service calls, as its contract declares them
//! (`kit.policy.v1.deployment`) and the launcher found them: each one's
//! [`PeerTarget`], and the policy every call to them follows (the callee's
//! methods' deadlines, retries and hedging, from the contract). A service
//! connects to the ones it calls at start ([`Peers::connect`]) and wraps
//! each in its typed client (`CatalogServiceClient::new(peer)`).

use std::collections::BTreeMap;

use super::{Peer, PeerError, PeerPolicy, PeerTarget};

/// A service's declared peers, where they are (see the module).
#[derive(Clone, Debug, Default)]
pub struct Peers {
    targets: BTreeMap<String, PeerTarget>,
    policy: PeerPolicy,
}

/// Why a declared peer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The service asked for a peer its contract does not declare: the
    /// launcher gives only those (and the network lets it reach only those).
    #[error(
        "{0} is no peer of this service: declare it in the contract \
         (option (kit.policy.v1.deployment) = {{ ... calls: [\"{0}\"] }})"
    )]
    Undeclared(String),
    #[error("{name}: {source}")]
    Unreachable {
        name: String,
        #[source]
        source: PeerError,
    },
}

impl Peers {
    /// No peers yet, each to be called with `policy`.
    pub fn new(policy: PeerPolicy) -> Self {
        Self {
            targets: BTreeMap::new(),
            policy,
        }
    }

    /// With the peer `name` at `target`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, target: PeerTarget) -> Self {
        self.targets.insert(name.into(), target);
        self
    }

    /// Where the peer `name` is, for a service that connects its own
    /// stack to it (a service token on it, say).
    pub fn target(&self, name: &str) -> Result<&PeerTarget, PeersError> {
        self.targets
            .get(name)
            .ok_or_else(|| PeersError::Undeclared(name.to_owned()))
    }

    /// The policy every call to a peer follows.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// The peer `name`, its addresses resolved and watched (within the
    /// policy's patience), for a typed client to call through.
    pub async fn connect(&self, name: &str) -> Result<Peer, PeersError> {
        let target = self.target(name)?;
        Peer::connect(name, target, self.policy.clone())
            .await
            .map_err(|source| PeersError::Unreachable {
                name: name.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_the_contract_does_not_declare_is_refused_with_what_to_write() {
        let peers = Peers::default().with(
            "catalog",
            PeerTarget::url("http://127.0.0.1:9").expect("a target"),
        );
        let refused = peers.connect("orders").await.expect_err("undeclared");
        assert!(
            refused.to_string().contains("calls: [\"orders\"]"),
            "{refused}"
        );
    }
}
