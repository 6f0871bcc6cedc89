//! The secret the shop's services share (`SHOP_SERVICE_SECRET`), with which
//! a service that has no token yet proves who it is to a method whose
//! caller rule is `shop_secret`. The kit checks it, not the method: the
//! server holds the secret's hashes ([`SharedSecret`]), and the generated
//! handlers compare what the request's `shop_secret_field` carries before
//! the handler runs.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::CallerRefused;

/// The shared secret as a server checking it holds it: the SHA-256 of its
/// value and, during a rotation, of the previous one (docs/tls.md: the two
/// steps). A memory dump shows no secret.
#[derive(Clone, Default)]
pub struct SharedSecret {
    hashes: Arc<[[u8; 32]]>,
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSecret")
            .field("values", &self.hashes.len())
            .finish()
    }
}

impl SharedSecret {
    /// `current`, and `previous` beside it while the secret is rotated.
    /// An empty `current` sets none: every proof by secret is refused (a
    /// previous value alone never enables them).
    pub fn new(current: &str, previous: &str) -> Self {
        let hashes: Vec<[u8; 32]> = match (current, previous) {
            ("", _) => Vec::new(),
            (current, "") => vec![hash(current)],
            (current, previous) => vec![hash(current), hash(previous)],
        };
        Self {
            hashes: hashes.into(),
        }
    }

    /// Whether `shown` is the secret (or the previous one). Hashes are
    /// compared, each in constant time and all of them: the time taken
    /// says nothing about the secret.
    pub fn check(&self, shown: &str) -> Result<(), CallerRefused> {
        if self.hashes.is_empty() {
            return Err(CallerRefused::NoSharedSecret);
        }
        let shown = hash(shown);
        let matches = self
            .hashes
            .iter()
            .fold(subtle::Choice::from(0), |found, expected| {
                found | shown.ct_eq(expected)
            });
        if bool::from(matches) {
            Ok(())
        } else {
            Err(CallerRefused::WrongSecret)
        }
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_half_on_each_value_agrees_during_a_rotation() {
        // The two steps of a rotation: first the new value is accepted
        // beside the old, then it is the one sent and the old one is
        // accepted beside it. Replicas on either step, and callers showing
        // either value, always agree.
        let (old, new) = ("the old service secret", "the new service secret");
        for replica in [SharedSecret::new(old, new), SharedSecret::new(new, old)] {
            for shown in [old, new] {
                assert_eq!(replica.check(shown), Ok(()), "{shown}");
            }
            assert_eq!(replica.check("a guess"), Err(CallerRefused::WrongSecret));
            assert_eq!(replica.check(""), Err(CallerRefused::WrongSecret));
        }
        // Once done (the previous value dropped), the old one is refused.
        assert_eq!(
            SharedSecret::new(new, "").check(old),
            Err(CallerRefused::WrongSecret)
        );
    }

    #[test]
    fn without_a_secret_every_proof_by_secret_is_refused() {
        for unset in [
            SharedSecret::default(),
            SharedSecret::new("", "the old one"),
        ] {
            assert_eq!(unset.check(""), Err(CallerRefused::NoSharedSecret));
            assert_eq!(
                unset.check("the old one"),
                Err(CallerRefused::NoSharedSecret)
            );
        }
        assert!(!format!("{:?}", SharedSecret::new("hunter2", "")).contains("hunter2"));
    }
}
