//! Orders' own access token, from the users service in exchange for the
//! shop's service secret, kept until shortly before it expires. Renewing
//! it is not retried (the contract does not mark IssueServiceToken safe to
//! repeat); a renewal that fails keeps the token while it is still valid,
//! and a call a second later tries again (not every call: with the users
//! service down, each would wait on it and log it).

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use shop_kit::client::{CallContext, Credentials, Peer, Renewable};
use shop_proto::shop::users::v1::{
    IssueServiceTokenRequest, service_token_service_client::ServiceTokenServiceClient,
};
use tokio::sync::Mutex;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// After a renewal fails, the token held is used this long before the
/// next try (if it is valid that long).
const RENEW_AGAIN_AFTER: Duration = Duration::from_secs(1);
const SERVICE_NAME: &str = "orders";

#[derive(Debug)]
pub struct ServiceToken {
    /// The users service, whose ServiceTokenService issues the token.
    users: Peer,
    secret: SecretString,
    current: Mutex<Option<Renewable<Arc<str>>>>,
}

impl ServiceToken {
    pub fn new(users: Peer, secret: SecretString) -> Self {
        Self {
            users,
            secret,
            current: Mutex::new(None),
        }
    }

    /// A valid token, fetching a new one when needed (by `deadline`); the
    /// error says why none could be had.
    pub async fn token(&self, deadline: tokio::time::Instant) -> Result<Arc<str>, tonic::Status> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref().and_then(Renewable::fresh) {
            return Ok(token.clone());
        }
        let request = IssueServiceTokenRequest {
            service_name: SERVICE_NAME.to_owned(),
            service_secret: self.secret.expose_secret().to_owned(),
        };
        let issued = match CallContext::until(deadline)
            .scope(ServiceTokenServiceClient::new(self.users.clone()).issue_service_token(request))
            .await
        {
            Ok(issued) => issued.into_inner(),
            Err(status) => {
                let held = current
                    .as_mut()
                    .and_then(|held| held.renewal_failed(RENEW_AGAIN_AFTER));
                let Some(token) = held else {
                    return Err(status);
                };
                tracing::warn!(code = ?status.code(), message = status.message(),
                    "service token not renewed; the one held is still valid, \
                     renewing it is tried again in a second");
                return Ok(token.clone());
            }
        };
        let expires_in = issued.expires_in.map_or(0, |d| d.seconds);
        let token: Arc<str> = issued.access_token.into();
        *current = Some(Renewable::issued(token.clone(), expires_in, RENEW_BEFORE));
        Ok(token)
    }
}

/// Orders' calls carry it (the client stack's credentials layer).
impl Credentials for ServiceToken {
    fn bearer(
        &self,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'_, Result<Arc<str>, tonic::Status>> {
        Box::pin(self.token(deadline))
    }

    fn current(&self) -> Option<Arc<str>> {
        // Being renewed (locked): the caller waits for the new one.
        let current = self.current.try_lock().ok()?;
        current.as_ref()?.fresh().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_kit::client::PeerPolicy;
    use std::time::Instant;

    /// A users service that cannot be reached: nothing listens there.
    fn unreachable_users() -> Peer {
        let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        Peer::at("users", nowhere, PeerPolicy::default())
    }

    /// Holding a token valid for `valid_for` and due for renewal now.
    fn holding(token: &ServiceToken, valid_for: Duration) {
        *token.current.try_lock().expect("unlocked") =
            Some(Renewable::valid_for("held".into(), valid_for, valid_for));
    }

    fn held(token: &ServiceToken) -> (Instant, Instant) {
        let current = token.current.try_lock().expect("unlocked");
        let held = current.as_ref().expect("held");
        (held.renew_at(), held.expires_at())
    }

    fn renew_at(token: &ServiceToken) -> Instant {
        held(token).0
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_the_valid_token_and_is_not_tried_again_for_a_second() {
        let token = ServiceToken::new(unreachable_users(), "secret".to_owned().into());
        holding(&token, Duration::from_secs(30));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);

        let asked = Instant::now();
        assert_eq!(&*token.token(deadline).await.expect("held"), "held");
        let next_try = renew_at(&token);
        assert!(next_try >= asked + RENEW_AGAIN_AFTER, "tried again at once");
        assert!(next_try <= Instant::now() + RENEW_AGAIN_AFTER);
        // Until then, the token held is used as it is, without a try.
        assert_eq!(token.current().as_deref(), Some("held"));
        assert_eq!(&*token.token(deadline).await.expect("held"), "held");
        assert_eq!(renew_at(&token), next_try, "tried again within the second");
    }

    #[tokio::test]
    async fn a_failed_renewal_is_tried_again_no_later_than_the_token_expires() {
        let token = ServiceToken::new(unreachable_users(), "secret".to_owned().into());
        holding(&token, Duration::from_millis(300));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let (_, expires_at) = held(&token);

        assert_eq!(&*token.token(deadline).await.expect("held"), "held");
        assert_eq!(renew_at(&token), expires_at);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let expired = token
            .token(deadline)
            .await
            .expect_err("expired, not renewed");
        assert_eq!(expired.code(), tonic::Code::Unavailable, "{expired:?}");
    }
}
