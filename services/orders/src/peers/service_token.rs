//! Orders' own access token, from the users service in exchange for the
//! shop's service secret, kept until shortly before it expires.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use shop_kit::client::{Downstream, Retry};
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
    users: Downstream,
    secret: SecretString,
    current: Mutex<Option<(String, Instant)>>,
}

impl ServiceToken {
    pub fn new(users: Downstream, secret: SecretString) -> Self {
        Self {
            users,
            secret,
            current: Mutex::new(None),
        }
    }

    /// A valid token, fetching a new one when needed (by `deadline`, if
    /// given); the error says why none could be had.
    pub async fn bearer(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<String, tonic::Status> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let issued = self
            .users
            .call(Retry::Safe, deadline, |channel, budget| {
                let mut request = tonic::Request::new(IssueServiceTokenRequest {
                    service_name: SERVICE_NAME.to_owned(),
                    service_secret: self.secret.expose_secret().to_owned(),
                });
                request.set_timeout(budget);
                let mut users = ServiceTokenServiceClient::new(channel);
                async move { users.issue_service_token(request).await }
            })
            .await?
            .into_inner();
        // No lifetime (or a negative one) renews at the next call.
        let lifetime = issued.expires_in.as_ref().map_or(Duration::ZERO, |d| {
            Duration::from_secs(u64::try_from(d.seconds).unwrap_or(0))
        });
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        *current = Some((issued.access_token.clone(), renew_at));
        Ok(issued.access_token)
    }
}
