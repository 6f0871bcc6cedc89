//! Orders' own access token, from the users service in exchange for the
//! shop's service secret, kept until shortly before it expires. Renewing
//! it is not retried (the contract does not mark IssueServiceToken safe to
//! repeat); a renewal that fails keeps the token while it is still valid,
//! and the next call tries again.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use shop_kit::client::{CallExt, Credentials, Peer};
use shop_proto::shop::users::v1::{
    IssueServiceTokenRequest, service_token_service_client::ServiceTokenServiceClient,
};
use tokio::sync::Mutex;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
const SERVICE_NAME: &str = "orders";

#[derive(Debug)]
pub struct ServiceToken {
    /// The users service, whose ServiceTokenService issues the token.
    users: Peer,
    secret: SecretString,
    current: Mutex<Option<Held>>,
}

/// The token held, when to renew it, and when it expires.
#[derive(Debug)]
struct Held {
    token: Arc<str>,
    renew_at: Instant,
    expires_at: Instant,
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
        if let Some(held) = current.as_ref()
            && Instant::now() < held.renew_at
        {
            return Ok(held.token.clone());
        }
        let request = tonic::Request::new(IssueServiceTokenRequest {
            service_name: SERVICE_NAME.to_owned(),
            service_secret: self.secret.expose_secret().to_owned(),
        })
        .within(Some(deadline));
        let issued = match ServiceTokenServiceClient::new(self.users.clone())
            .issue_service_token(request)
            .await
        {
            Ok(issued) => issued.into_inner(),
            Err(status) => {
                return match current.as_ref() {
                    Some(held) if Instant::now() < held.expires_at => {
                        tracing::warn!(code = ?status.code(), message = status.message(),
                            "service token not renewed; the one held is still valid");
                        Ok(held.token.clone())
                    }
                    _ => Err(status),
                };
            }
        };
        // No lifetime (or a negative one) renews at the next call.
        let lifetime = issued.expires_in.as_ref().map_or(Duration::ZERO, |d| {
            Duration::from_secs(u64::try_from(d.seconds).unwrap_or(0))
        });
        let now = Instant::now();
        let token: Arc<str> = issued.access_token.into();
        *current = Some(Held {
            token: token.clone(),
            renew_at: now + lifetime.saturating_sub(RENEW_BEFORE),
            expires_at: now + lifetime,
        });
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
        let held = current.as_ref()?;
        (Instant::now() < held.renew_at).then(|| held.token.clone())
    }
}
