//! Checking an access token: the algorithm is fixed (EdDSA), never taken
//! from the token; signature, exp, nbf, issuer and audience all checked.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::{AuthError, Claims, TokenRules};

/// Clock skew tolerated on exp and nbf.
const LEEWAY_SECS: u64 = 5;
/// Tokens remembered as verified, at most; the least used go first.
const CACHED_TOKENS: u64 = 10_000;
/// How long a verified token is remembered at most (its expiry comes
/// first for the shop's 15-minute access tokens).
const CACHED_AT_MOST: Duration = Duration::from_secs(15 * 60);

/// Verifies access tokens with the users service's public keys, by `kid`.
///
/// A token's signature is checked once (Ed25519 costs tens of
/// microseconds, and a customer sends the same token with every call);
/// its claims are then remembered, by the SHA-256 of the token, until it
/// expires. The memory belongs to this verifier and so to its keys: a
/// verifier built from other keys (a rotation) starts with none.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Arc<Validation>,
    verified: Cache<[u8; 32], Arc<Claims>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// From a JWK set (`{"keys":[...]}`; only Ed25519 keys with a kid are
    /// used), for tokens `rules` describe.
    pub fn from_jwks(jwks_json: &str, rules: &TokenRules) -> Result<Self, AuthError> {
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
        validation.set_issuer(&[&rules.issuer]);
        validation.set_audience(&[&rules.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            keys: Arc::new(keys),
            validation: Arc::new(validation),
            verified: Cache::builder()
                .max_capacity(CACHED_TOKENS)
                .time_to_live(CACHED_AT_MOST)
                .build(),
        })
    }

    /// The claims of a valid token; the reason otherwise (for logs, not for
    /// callers: they only learn the token was not accepted).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            if still_valid(&claims, unix_now()) {
                return Ok(Claims::clone(&claims));
            }
            self.verified.invalidate(&digest);
        }
        let claims = self.verify_signed(token)?;
        self.verified.insert(digest, Arc::new(claims.clone()));
        Ok(claims)
    }

    /// The full check: signature, algorithm and every claim.
    fn verify_signed(&self, token: &str) -> Result<Claims, String> {
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

/// Whether remembered claims still hold now (as the full check would say).
fn still_valid(claims: &Claims, now: u64) -> bool {
    now <= claims.exp.saturating_add(LEEWAY_SECS) && claims.nbf <= now.saturating_add(LEEWAY_SECS)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
