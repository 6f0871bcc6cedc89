//! Password hashing with argon2id, off the async threads (it is meant to be
//! slow).

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use crate::error::UsersError;

/// A PHC-format argon2id hash of `password` with a fresh salt.
pub async fn hash(password: String) -> Result<String, UsersError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| UsersError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| UsersError::Hashing(e.to_string()))?
}

/// Whether `password` matches `hash`. With no hash (unknown email) a dummy
/// one is checked anyway, so timing does not tell which emails exist.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, UsersError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&hash).map_err(|e| UsersError::Hashing(e.to_string()))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| UsersError::Hashing(e.to_string()))?
}

/// argon2id of a random password, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2hvcHNhbHRzaG9wc2FsdA$Vq0d0C2w4Qm6xk7M3N2xg6QbS5m8cH1pYqzZ5y4tR0E";
