//! Verifying the shop's access tokens, in every service, on every protocol.
//! Tokens are JWTs signed by the users service with Ed25519; the algorithm
//! is fixed here (EdDSA), never taken from the token, and signature, exp,
//! nbf, issuer and audience are all checked. Browsers call services
//! directly, so every service checks: none trusts a header set by someone
//! else. Minting tokens is the users service's job, not the kit's.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::extract::FromRequestParts;
use connectrpc_axum::prelude::ConnectError;
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};

/// Who issues the shop's tokens, and for whom.
pub const ISSUER: &str = "connect-shop-users";
pub const AUDIENCE: &str = "connect-shop";
/// Where the users service serves its public keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Clock skew tolerated on exp and nbf.
const LEEWAY_SECS: u64 = 5;

/// What an access token says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the JWK set is invalid: {0}")]
    Jwks(String),
    #[error("cannot fetch the JWK set from {url}: {reason}")]
    Fetch { url: String, reason: String },
}

/// Verifies access tokens with the users service's public keys, by `kid`.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// From a JWK set (`{"keys":[...]}`); only Ed25519 keys with a kid are used.
    pub fn from_jwks(jwks_json: &str) -> Result<Self, AuthError> {
        let set: JwkSet =
            serde_json::from_str(jwks_json).map_err(|e| AuthError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, key);
            }
        }
        if keys.is_empty() {
            return Err(AuthError::Jwks(
                "no usable Ed25519 key with a kid".to_owned(),
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            keys: Arc::new(keys),
            validation: Arc::new(validation),
        })
    }

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

    /// The claims of a valid token; the reason otherwise (for logs, not for
    /// callers: they only learn the token was not accepted).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
        let kid = header.kid.ok_or("no kid")?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| format!("unknown kid {kid:?}"))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
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

/// The token of an `Authorization: Bearer <token>` header (the scheme's
/// case does not matter), the one way every part of the shop reads it.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Subjects of the shop's own services start with this; users' ids never do.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";

/// The authenticated caller of an RPC. As an extractor it requires a valid
/// `Authorization: Bearer <access token>`; otherwise the call fails with
/// `unauthenticated`, whatever the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
}

impl Caller {
    /// The service's name if the caller is one of the shop's services.
    pub fn service(&self) -> Option<&str> {
        self.user_id.strip_prefix(SERVICE_SUBJECT_PREFIX)
    }
}

/// A caller that must be one of the shop's own services: a customer's
/// valid token gets `permission_denied`, no valid token `unauthenticated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCaller {
    pub service: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConnectError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.service() {
            Some(service) => Ok(Self {
                service: service.to_owned(),
            }),
            None => Err(ConnectError::new_permission_denied(
                "only the shop's own services may make this call",
            )),
        }
    }
}

/// A caller that must be a signed-in customer, not one of the shop's
/// services: for what only a customer does for themself (placing an order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub user_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConnectError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.service() {
            Some(_) => Err(ConnectError::new_permission_denied(
                "only a signed-in customer may make this call",
            )),
            None => Ok(Self {
                user_id: caller.user_id,
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        let verifier = parts
            .extensions
            .get::<TokenVerifier>()
            .ok_or_else(|| ConnectError::new_internal("this service does not verify tokens"))?;
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            ConnectError::new_unauthenticated("sign in: this call needs an access token")
        })?;
        match verifier.verify(token) {
            Ok(claims) => Ok(Self {
                user_id: claims.sub,
            }),
            Err(reason) => {
                tracing::debug!(%reason, "access token refused");
                Err(ConnectError::new_unauthenticated(
                    "the access token is invalid or expired: sign in again",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    struct Issuer {
        kid: &'static str,
        key: SigningKey,
    }

    impl Issuer {
        fn new(kid: &'static str, seed: u8) -> Self {
            Self {
                kid,
                key: SigningKey::from_bytes(&[seed; 32]),
            }
        }

        fn jwks(&self) -> String {
            let x = URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes());
            format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"{}","x":"{x}"}}]}}"#,
                self.kid
            )
        }

        fn sign(&self, claims: &Claims) -> String {
            let der = self.key.to_pkcs8_der().expect("pkcs8");
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.to_owned());
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
                .expect("sign")
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now() + 300,
            nbf: now() - 1,
            iat: now() - 1,
        }
    }

    #[test]
    fn bearer_tokens_are_read_one_way() {
        let headers = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_static(value),
            );
            headers
        };
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("BEARER abc")), Some("abc"));
        for refused in ["Basic YTpi", "Bearer", "Bearer ", "Bearerabc"] {
            assert_eq!(bearer_token(&headers(refused)), None, "{refused:?}");
        }
        assert_eq!(bearer_token(&http::HeaderMap::new()), None);
    }

    #[test]
    fn accepts_a_valid_token() {
        let issuer = Issuer::new("k1", 7);
        let verifier = TokenVerifier::from_jwks(&issuer.jwks()).expect("jwks");
        assert_eq!(
            verifier.verify(&issuer.sign(&claims())).expect("valid").sub,
            "user-1"
        );
    }

    #[test]
    fn refuses_a_token_signed_by_another_key_with_the_same_kid() {
        let verifier = TokenVerifier::from_jwks(&Issuer::new("k1", 7).jwks()).expect("jwks");
        let impostor = Issuer::new("k1", 8);
        assert!(verifier.verify(&impostor.sign(&claims())).is_err());
    }

    #[test]
    fn refuses_alg_none() {
        let verifier = TokenVerifier::from_jwks(&Issuer::new("k1", 7).jwks()).expect("jwks");
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(verifier.verify(&token).is_err(), "{token}");
        }
    }

    #[test]
    fn refuses_expired_not_yet_valid_and_misaddressed_tokens() {
        let issuer = Issuer::new("k1", 7);
        let verifier = TokenVerifier::from_jwks(&issuer.jwks()).expect("jwks");
        let expired = Claims {
            exp: now() - 60,
            ..claims()
        };
        let early = Claims {
            nbf: now() + 60,
            ..claims()
        };
        let elsewhere = Claims {
            aud: "another-shop".into(),
            ..claims()
        };
        let forged_issuer = Claims {
            iss: "someone-else".into(),
            ..claims()
        };
        for bad in [expired, early, elsewhere, forged_issuer] {
            assert!(verifier.verify(&issuer.sign(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_a_tampered_payload() {
        let issuer = Issuer::new("k1", 7);
        let verifier = TokenVerifier::from_jwks(&issuer.jwks()).expect("jwks");
        let token = issuer.sign(&claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: "admin".into(),
                ..claims()
            })
            .expect("json"),
        );
        parts[1] = &other;
        assert!(verifier.verify(&parts.join(".")).is_err());
    }
}
