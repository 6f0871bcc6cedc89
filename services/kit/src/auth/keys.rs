//! Where the verifying keys come from: the users service's JWK set.

use std::time::Duration;

use super::{AuthError, JWKS_PATH, TokenVerifier};

impl TokenVerifier {
    /// Fetches the JWK set from the users service (`base_url` + JWKS_PATH),
    /// retrying while it starts, for up to `patience`.
    pub async fn fetch(base_url: &str, patience: Duration) -> Result<Self, AuthError> {
        let url = format!("{}{JWKS_PATH}", base_url.trim_end_matches('/'));
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match fetch_text(&url).await {
                Ok(body) => return Self::from_jwks(&body),
                Err(reason) if tokio::time::Instant::now() >= deadline => {
                    return Err(AuthError::Fetch { url, reason });
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
    /// The users service at this base URL (its JWK set), waited for while
    /// it starts.
    FromUsers(String),
    /// Keys already at hand (e.g. a test's own signing key).
    Given(TokenVerifier),
}

impl TokenKeys {
    pub async fn verifier(&self) -> Result<TokenVerifier, AuthError> {
        match self {
            Self::FromUsers(url) => TokenVerifier::fetch(url, JWKS_PATIENCE).await,
            Self::Given(verifier) => Ok(verifier.clone()),
        }
    }
}

async fn fetch_text(url: &str) -> Result<String, String> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    String::from_utf8(body.to_bytes().to_vec()).map_err(|e| e.to_string())
}
