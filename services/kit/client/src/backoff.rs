//! The one backoff formula: exponential from `first`, times `multiplier`
//! per retry, capped at `max` (gRPC's retryPolicy). Calls in the client
//! stack draw their pause at random below it, as gRPC does; the saga, whose
//! retries are spread by their orders' own timing, uses it as it is.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub multiplier: f64,
}

impl Backoff {
    /// Doubling from `first` up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            multiplier: 2.0,
        }
    }

    /// The delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1).min(64)).unwrap_or(64);
        let factor = self.multiplier.powi(exponent);
        if !factor.is_finite() || self.first.as_secs_f64() * factor >= self.max.as_secs_f64() {
            return self.max;
        }
        self.first.mul_f64(factor).min(self.max)
    }

    /// A pause drawn at random below the delay (gRPC's
    /// `random(0, min(initial * multiplier^(n-1), max))`), so the retries
    /// of many callers spread out.
    pub fn jittered(&self, retry: u32) -> Duration {
        self.delay(retry)
            .mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_delay_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
        assert_eq!(backoff.delay(1), Duration::from_millis(250));
        assert_eq!(backoff.delay(2), Duration::from_millis(500));
        assert_eq!(backoff.delay(3), Duration::from_secs(1));
        assert_eq!(backoff.delay(30), Duration::from_secs(10));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_below_the_delay() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for retry in 1..6 {
            assert!(backoff.jittered(retry) <= backoff.delay(retry));
        }
    }

    #[test]
    fn a_multiplier_other_than_two_is_followed() {
        let backoff = Backoff {
            multiplier: 1.5,
            ..Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
        };
        assert_eq!(backoff.delay(1), Duration::from_millis(100));
        assert_eq!(backoff.delay(2), Duration::from_millis(150));
        assert_eq!(backoff.delay(3), Duration::from_millis(225));
        assert_eq!(backoff.delay(200), Duration::from_secs(1));
    }
}
