//! Minting the shop's tokens: short-lived Ed25519-signed access JWTs (the
//! kit verifies them everywhere) and opaque single-use refresh tokens, kept
//! only as hashes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::DecodePrivateKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use shop_kit::auth::{Claims, TokenVerifier};
use shop_proto::identity::{self, AUDIENCE, ISSUER};

use crate::error::UsersError;

/// How long an access token is valid.
pub const ACCESS_TOKEN_SECS: u64 = 15 * 60;
/// How long a refresh token is valid.
pub const REFRESH_TOKEN_SECS: i64 = 30 * 24 * 60 * 60;

/// Signs access tokens and publishes the key that verifies them.
#[derive(Clone)]
pub struct TokenIssuer {
    kid: String,
    encoding: EncodingKey,
    public_key: PublicKey,
    jwks_json: String,
}

/// The key that verifies this issuer's tokens, as a JWK (RFC 8037).
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    /// The JWK's "use".
    pub usage: &'static str,
    pub kid: String,
    /// The Ed25519 public key, base64url without padding.
    pub x: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .finish()
    }
}

/// A signing key given as PKCS#8, PEM ("-----BEGIN PRIVATE KEY-----") or
/// DER, as PKCS#8 DER; refused unless it is an Ed25519 key.
pub fn pkcs8_der(given: &[u8]) -> Result<Vec<u8>, UsersError> {
    let key = match std::str::from_utf8(given) {
        Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => {
            SigningKey::from_pkcs8_pem(pem.trim())
        }
        _ => SigningKey::from_pkcs8_der(given),
    }
    .map_err(|e| UsersError::SigningKey(format!("not an Ed25519 PKCS#8 key: {e}")))?;
    key.to_pkcs8_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|e| UsersError::SigningKey(e.to_string()))
}

/// A stable key id for a key given from outside: the first 16 hex digits
/// of the SHA-256 of its public key, so every replica names it alike.
pub fn key_id(der: &[u8]) -> Result<String, UsersError> {
    let key = SigningKey::from_pkcs8_der(der).map_err(|e| UsersError::SigningKey(e.to_string()))?;
    let digest = Sha256::digest(key.verifying_key().as_bytes());
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

impl TokenIssuer {
    /// A new random key: its id and PKCS#8 DER.
    pub fn generate_key() -> Result<(String, Vec<u8>), UsersError> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = key
            .to_pkcs8_der()
            .map_err(|e| UsersError::SigningKey(e.to_string()))?;
        Ok((uuid::Uuid::new_v4().to_string(), der.as_bytes().to_vec()))
    }

    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, UsersError> {
        let key =
            SigningKey::from_pkcs8_der(der).map_err(|e| UsersError::SigningKey(e.to_string()))?;
        let public_key = PublicKey {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            usage: "sig",
            kid: kid.clone(),
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        };
        let jwks_json = serde_json::json!({"keys": [{
            "kty": public_key.kty, "crv": public_key.crv, "alg": public_key.alg,
            "use": public_key.usage, "kid": public_key.kid, "x": public_key.x,
        }]})
        .to_string();
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_der(der),
            public_key,
            jwks_json,
        })
    }

    /// The key that verifies the tokens.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The public keys, as a JWK set.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// A verifier for the tokens this issuer signs.
    pub fn verifier(&self) -> Result<TokenVerifier, UsersError> {
        TokenVerifier::from_jwks(&self.jwks_json, &identity::token_rules())
            .map_err(|e| UsersError::SigningKey(e.to_string()))
    }

    /// An access token for `user_id`, valid from `now` (unix seconds).
    pub fn access_token(&self, user_id: &str, now: u64) -> Result<String, UsersError> {
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + ACCESS_TOKEN_SECS,
            nbf: now,
            iat: now,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| UsersError::SigningKey(e.to_string()))
    }
}

/// A new refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = secret_hash(&token);
    (token, hash)
}

/// SHA-256, hex. Refresh tokens are kept only as this: a database leak
/// does not leak sessions.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};

    use super::*;

    #[test]
    fn a_given_key_is_read_as_pem_or_der_and_named_by_its_public_key() {
        let (_, der) = TokenIssuer::generate_key().expect("key");
        let key = SigningKey::from_pkcs8_der(&der).expect("der");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
        assert_eq!(pkcs8_der(&der).expect("from DER"), der);
        assert_eq!(pkcs8_der(pem.as_bytes()).expect("from PEM"), der);
        let kid = key_id(&der).expect("kid");
        assert_eq!(kid.len(), 16);
        assert_eq!(key_id(&der).expect("kid"), kid, "the same key, the same id");
        let (_, other) = TokenIssuer::generate_key().expect("key");
        assert_ne!(key_id(&other).expect("kid"), kid);
        for garbage in [
            &b""[..],
            b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
            b"\x30\x03\x02\x01\x00",
        ] {
            assert!(matches!(pkcs8_der(garbage), Err(UsersError::SigningKey(_))));
        }
    }
}
