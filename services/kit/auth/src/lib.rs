//! Verifying the shop's access tokens, in every service, on every protocol.
//! Tokens are JWTs signed by the users service with Ed25519; the algorithm
//! is fixed here (EdDSA), never taken from the token, and signature, exp,
//! nbf, issuer and audience are all checked. Browsers call services
//! directly, so every service checks: none trusts a header set by someone
//! else. Minting tokens is the users service's job, not the kit's.

mod caller;
mod keys;
mod secret;
mod verify;

use serde::{Deserialize, Serialize};

pub use caller::{
    Caller, CallerRefused, CertifiedService, Customer, SERVICE_SUBJECT_PREFIX, ServiceCaller,
    admit, bearer_token, is_shop_service,
};
pub use keys::TokenKeys;
pub use secret::SharedSecret;
pub use shop_kit_policy::CallerRule;

pub use verify::TokenVerifier;

/// Who issues the access tokens a deployment's services take, and for
/// whom (`iss`, `aud`): the application says, the kit knows no issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRules {
    pub issuer: String,
    pub audience: String,
}

/// Where the users service serves its public keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

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

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

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

    fn rules() -> TokenRules {
        TokenRules {
            issuer: "test-issuer".into(),
            audience: "test-audience".into(),
        }
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            iss: rules().issuer,
            aud: rules().audience,
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
        let verifier = TokenVerifier::from_jwks(&issuer.jwks(), &rules()).expect("jwks");
        assert_eq!(
            verifier.verify(&issuer.sign(&claims())).expect("valid").sub,
            "user-1"
        );
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let issuer = Issuer::new("k1", 7);
        let verifier = TokenVerifier::from_jwks(&issuer.jwks(), &rules()).expect("jwks");
        // Expired 4 s ago: still valid for the 5 s of tolerated skew.
        let token = issuer.sign(&Claims {
            exp: now() - 4,
            ..claims()
        });
        assert!(verifier.verify(&token).is_ok(), "within the leeway");
        assert!(verifier.verify(&token).is_ok(), "remembered");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(
            verifier.verify(&token).is_err(),
            "expired, remembered or not"
        );
    }

    #[test]
    fn a_remembered_token_means_nothing_to_a_verifier_with_other_keys() {
        let old = Issuer::new("k1", 7);
        let before = TokenVerifier::from_jwks(&old.jwks(), &rules()).expect("jwks");
        let token = old.sign(&claims());
        assert!(before.verify(&token).is_ok());
        // The users service rotated its key: a verifier of the new set.
        let after = TokenVerifier::from_jwks(&Issuer::new("k2", 9).jwks(), &rules()).expect("jwks");
        assert!(after.verify(&token).is_err(), "the old key is gone");
        // A clone shares the memory: the same keys, the same answers.
        assert!(before.clone().verify(&token).is_ok());
    }

    #[test]
    fn a_tampered_token_is_not_taken_for_a_remembered_one() {
        let issuer = Issuer::new("k1", 7);
        let verifier = TokenVerifier::from_jwks(&issuer.jwks(), &rules()).expect("jwks");
        let token = issuer.sign(&claims());
        assert!(verifier.verify(&token).is_ok());
        let mut tampered = token.clone();
        tampered.push('A');
        assert!(verifier.verify(&tampered).is_err());
    }

    #[test]
    fn refuses_a_token_signed_by_another_key_with_the_same_kid() {
        let verifier =
            TokenVerifier::from_jwks(&Issuer::new("k1", 7).jwks(), &rules()).expect("jwks");
        let impostor = Issuer::new("k1", 8);
        assert!(verifier.verify(&impostor.sign(&claims())).is_err());
    }

    #[test]
    fn refuses_alg_none() {
        let verifier =
            TokenVerifier::from_jwks(&Issuer::new("k1", 7).jwks(), &rules()).expect("jwks");
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
        let verifier = TokenVerifier::from_jwks(&issuer.jwks(), &rules()).expect("jwks");
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
        let verifier = TokenVerifier::from_jwks(&issuer.jwks(), &rules()).expect("jwks");
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
