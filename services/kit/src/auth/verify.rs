//! Checking an access token: the algorithm is fixed (EdDSA), never taken
//! from the token; signature, exp, nbf, issuer and audience all checked.

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};

use super::{AUDIENCE, AuthError, Claims, ISSUER};

/// Clock skew tolerated on exp and nbf.
const LEEWAY_SECS: u64 = 5;

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
