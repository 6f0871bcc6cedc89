//! Where the verifying keys come from: the users service's JWK set, from
//! any of its replicas.

use std::time::Duration;

use tokio::time::Instant;

use super::{AuthError, JWKS_PATH, TokenRules, TokenVerifier};
use shop_kit_client::{Peer, PeerPolicy, PeerTarget};

impl TokenVerifier {
    /// Fetches the JWK set from the users service at `users` (JWKS_PATH on
    /// any of its endpoints), retrying while it starts, for up to
    /// `patience`; for tokens `rules` describe.
    pub async fn fetch(
        users: &PeerTarget,
        patience: Duration,
        rules: &TokenRules,
    ) -> Result<Self, AuthError> {
        let failed = |reason: String| AuthError::Fetch {
            url: format!("{users}{JWKS_PATH}"),
            reason,
        };
        let deadline = Instant::now() + patience;
        let keys = Peer::connect(
            "users-keys",
            users,
            PeerPolicy {
                resolve_patience: patience,
                ..PeerPolicy::default()
            },
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        loop {
            let answer = keys.get(JWKS_PATH).await;
            match answer {
                Ok(body) => {
                    return Self::from_jwks(&String::from_utf8_lossy(&body), rules);
                }
                Err(status) if Instant::now() >= deadline => {
                    return Err(failed(status.message().to_owned()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// How long a service waits for the users service's public keys at start.
const JWKS_PATIENCE: Duration = Duration::from_secs(30);

/// Where a service gets the keys that verify access tokens.
#[derive(Clone, Debug)]
pub enum TokenKeys {
    /// The users service (one address or many: every replica serves the
    /// same keys), waited for while it starts; for tokens `rules` describe.
    FromUsers {
        users: PeerTarget,
        rules: TokenRules,
    },
    /// Keys already at hand (e.g. a test's own signing key).
    Given(TokenVerifier),
}

impl TokenKeys {
    /// The users service at one address (tests).
    pub fn users_at(addr: std::net::SocketAddr, rules: TokenRules) -> Self {
        Self::FromUsers {
            users: PeerTarget::addr(addr),
            rules,
        }
    }

    pub async fn verifier(&self) -> Result<TokenVerifier, AuthError> {
        match self {
            Self::FromUsers { users, rules } => {
                TokenVerifier::fetch(users, JWKS_PATIENCE, rules).await
            }
            Self::Given(verifier) => Ok(verifier.clone()),
        }
    }
}
