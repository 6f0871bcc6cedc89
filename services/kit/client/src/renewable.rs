//! A credential held for its lifetime: renewed shortly before it expires,
//! and, when a renewal fails while it is still valid, used on and renewed
//! again a little later (not at every call: with the issuer down, each
//! would wait on it). A service's own token ([`crate::Credentials`]) and a
//! client app's session keep theirs so.

use std::time::{Duration, Instant};

/// `value` (a token, or a token and what renews it) with its schedule.
#[derive(Debug)]
pub struct Renewable<T> {
    value: T,
    renew_at: Instant,
    expires_at: Instant,
}

impl<T> Renewable<T> {
    /// `value`, issued now for `expires_in_secs` (an issuer's `expires_in`;
    /// none or negative: due for renewal at once), renewed `renew_before`
    /// it expires.
    pub fn issued(value: T, expires_in_secs: i64, renew_before: Duration) -> Self {
        let lifetime = Duration::from_secs(u64::try_from(expires_in_secs).unwrap_or(0));
        Self::valid_for(value, lifetime, renew_before)
    }

    /// `value`, valid from now for `lifetime`, renewed `renew_before` it
    /// ends.
    pub fn valid_for(value: T, lifetime: Duration, renew_before: Duration) -> Self {
        let now = Instant::now();
        Self {
            value,
            renew_at: now + lifetime.saturating_sub(renew_before),
            expires_at: now + lifetime,
        }
    }

    /// The value while it is not yet due for renewal.
    pub fn fresh(&self) -> Option<&T> {
        (Instant::now() < self.renew_at).then_some(&self.value)
    }

    /// The value, due or not.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// A renewal failed: the value if it is still valid, with the next
    /// renewal `again_after` from now (or when it expires, if sooner);
    /// `None` once it has expired.
    pub fn renewal_failed(&mut self, again_after: Duration) -> Option<&T> {
        let now = Instant::now();
        if now >= self.expires_at {
            return None;
        }
        self.renew_at = (now + again_after).min(self.expires_at);
        Some(&self.value)
    }

    /// When it is next due for renewal.
    pub fn renew_at(&self) -> Instant {
        self.renew_at
    }

    /// When it stops being valid.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn it_is_fresh_until_shortly_before_it_expires() {
        let held = Renewable::issued("token", 900, MINUTE);
        assert_eq!(held.fresh(), Some(&"token"));
        assert_eq!(held.expires_at() - held.renew_at(), MINUTE);
    }

    #[test]
    fn no_lifetime_or_a_negative_one_is_due_at_once() {
        for expires_in in [0, -5] {
            let held = Renewable::issued("token", expires_in, MINUTE);
            assert_eq!(held.fresh(), None, "{expires_in}");
            assert_eq!(held.value(), &"token");
        }
    }

    #[test]
    fn a_failed_renewal_keeps_a_valid_value_and_waits_before_the_next() {
        let mut held = Renewable::valid_for("token", Duration::from_secs(30), MINUTE);
        assert_eq!(held.fresh(), None, "due: within a minute of expiring");
        let failed_at = Instant::now();
        assert_eq!(held.renewal_failed(Duration::from_secs(1)), Some(&"token"));
        assert!(held.renew_at() >= failed_at + Duration::from_secs(1));
        assert_eq!(held.fresh(), Some(&"token"), "not due again for a second");
    }

    #[test]
    fn a_failed_renewal_is_tried_again_no_later_than_it_expires() {
        let mut held = Renewable::valid_for("token", Duration::from_millis(300), MINUTE);
        assert_eq!(held.renewal_failed(MINUTE), Some(&"token"));
        assert_eq!(held.renew_at(), held.expires_at());
    }

    #[test]
    fn an_expired_value_is_not_kept_when_its_renewal_fails() {
        let mut held = Renewable::valid_for("token", Duration::ZERO, MINUTE);
        assert_eq!(held.renewal_failed(MINUTE), None);
    }
}
