//! Orders' own access token, from the users service in exchange for the
//! shop's service secret, kept until shortly before it expires.

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
    current: Mutex<Option<(Arc<str>, Instant)>>,
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
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let request = tonic::Request::new(IssueServiceTokenRequest {
            service_name: SERVICE_NAME.to_owned(),
            service_secret: self.secret.expose_secret().to_owned(),
        })
        .within(Some(deadline));
        let issued = ServiceTokenServiceClient::new(self.users.clone())
            .issue_service_token(request)
            .await?
            .into_inner();
        // No lifetime (or a negative one) renews at the next call.
        let lifetime = issued.expires_in.as_ref().map_or(Duration::ZERO, |d| {
            Duration::from_secs(u64::try_from(d.seconds).unwrap_or(0))
        });
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        let token: Arc<str> = issued.access_token.into();
        *current = Some((token.clone(), renew_at));
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
        let (token, renew_at) = current.as_ref()?;
        (Instant::now() < *renew_at).then(|| token.clone())
    }
}
