//! The one backoff formula: exponential from `first`, doubling per retry,
//! capped at `max`. Calls in the client stack add jitter; the saga, whose
//! retries are spread by their orders' own timing, uses it as it is.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The delay with equal jitter: half fixed, half random, so the
    /// retries of many callers spread out.
    pub fn jittered(&self, retry: u32) -> Duration {
        let half = self.delay(retry) / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
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
    fn jitter_stays_between_half_and_the_whole_delay() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for retry in 1..6 {
            let jittered = backoff.jittered(retry);
            assert!(jittered >= backoff.delay(retry) / 2 && jittered <= backoff.delay(retry));
        }
    }
}
