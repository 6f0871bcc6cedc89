//! Throttling sign-in attempts against brute force, at the users service
//! itself (browsers call it directly, not through the gateway):
//!
//! - per client IP, a token bucket for the methods whose contract names
//!   the rate class `sign-in` (LogIn, SignUp, Refresh, IssueServiceToken),
//!   counted by the kit before any handler code runs (a caller whose client
//!   certificate names one of the shop's services guesses no secret, and
//!   is not counted);
//! - per email, a few failed log-ins per window, then refusals until the
//!   window ends; a successful log-in clears it. The email need not belong
//!   to an account: the answer is the same either way, so the throttle does
//!   not tell which accounts exist.
//!
//! Both tables are bounded caches: an attacker with many addresses or
//! emails evicts old entries, never grows memory without end. The client is
//! the kit's `client_limit_key`: the TCP peer's address, or the client's
//! the edge named (--trusted-proxies, --client-address-header); an IPv6
//! client's network (--rate-limit-ipv6-prefix, /64 by default).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use moka::sync::Cache;
use shop_kit::{
    auth::CertifiedService,
    rpc::{
        client_limit_key,
        rate_class::{RateClass, RateRefused},
    },
};
use tokio::time::Instant;

use crate::error::UsersError;

/// The rate class the contract's sign-in methods name.
pub const SIGN_IN: &str = "sign-in";

/// Entries kept per table at most.
const MAX_TRACKED: u64 = 100_000;

/// The limits, from flags or env.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// LogIn, SignUp and Refresh calls one client IP may make at once
    /// before it is slowed to --sign-in-ip-per-minute.
    pub sign_in_ip_burst: u32,
    /// LogIn, SignUp and Refresh calls per minute one client IP may sustain.
    pub sign_in_ip_per_minute: u32,
    /// Failed log-ins per email before that email is refused until its
    /// window (--sign-in-lockout-secs) ends.
    pub sign_in_failures: u32,
    /// The window failed log-ins are counted in, in seconds.
    pub sign_in_lockout_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            sign_in_ip_burst: 30,
            sign_in_ip_per_minute: 60,
            sign_in_failures: 5,
            sign_in_lockout_secs: 60,
        }
    }
}

/// A refusal: try again after `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    window_ends: Instant,
}

/// The throttle; cheap to clone (shared tables).
#[derive(Clone)]
pub struct SignInThrottle {
    config: ThrottleConfig,
    by_ip: Cache<IpAddr, Arc<Mutex<Bucket>>>,
    by_email: Cache<String, Arc<Mutex<Failures>>>,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateClass for SignInThrottle {
    fn admit(&self, request: &http::request::Parts) -> Result<(), RateRefused> {
        if let Ok(CertifiedService(Some(_))) = CertifiedService::of(&request.extensions) {
            return Ok(());
        }
        self.attempt_from(client_limit_key(&request.extensions))
            .map_err(|throttled| RateRefused {
                message: UsersError::Throttled {
                    retry_after: throttled.retry_after,
                }
                .to_string(),
                retry_after: throttled.retry_after,
            })
    }
}

impl SignInThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        let window = Duration::from_secs(config.sign_in_lockout_secs.max(1));
        Self {
            by_ip: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            by_email: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(window)
                .build(),
            config,
        }
    }

    /// Takes one attempt from the IP's bucket, or says how long to wait.
    pub fn attempt_from(&self, ip: IpAddr) -> Result<(), Throttled> {
        let burst = f64::from(self.config.sign_in_ip_burst.max(1));
        let per_sec = f64::from(self.config.sign_in_ip_per_minute.max(1)) / 60.0;
        let bucket = self.by_ip.get_with(ip, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }))
        });
        let mut bucket = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_sec;
        bucket.tokens = refilled.min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Throttled {
            retry_after: Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec),
        })
    }

    /// Whether `email` may try to log in now.
    pub fn may_try(&self, email: &str) -> Result<(), Throttled> {
        let Some(failures) = self.by_email.get(email) else {
            return Ok(());
        };
        let failures = failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if failures.count >= self.config.sign_in_failures.max(1) && now < failures.window_ends {
            return Err(Throttled {
                retry_after: failures.window_ends - now,
            });
        }
        Ok(())
    }

    /// Counts a failed log-in for `email`.
    pub fn failed(&self, email: &str) {
        let window = Duration::from_secs(self.config.sign_in_lockout_secs.max(1));
        let entry = self.by_email.get_with(email.to_owned(), || {
            Arc::new(Mutex::new(Failures {
                count: 0,
                window_ends: Instant::now() + window,
            }))
        });
        let mut failures = entry.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now >= failures.window_ends {
            failures.count = 0;
            failures.window_ends = now + window;
        }
        failures.count = failures.count.saturating_add(1);
    }

    /// A successful log-in clears the email's failures.
    pub fn succeeded(&self, email: &str) {
        self.by_email.invalidate(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(burst: u32, failures: u32) -> SignInThrottle {
        SignInThrottle::new(ThrottleConfig {
            sign_in_ip_burst: burst,
            sign_in_ip_per_minute: 60,
            sign_in_failures: failures,
            sign_in_lockout_secs: 60,
        })
    }

    #[test]
    fn an_ip_gets_its_burst_then_waits() {
        let throttle = throttle(3, 5);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..3 {
            assert!(throttle.attempt_from(ip).is_ok());
        }
        let refused = throttle.attempt_from(ip).expect_err("over the burst");
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(1));
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(throttle.attempt_from(other).is_ok(), "each IP its own");
    }

    #[test]
    fn failures_lock_an_email_and_a_success_clears_them() {
        let throttle = throttle(100, 3);
        for _ in 0..3 {
            assert!(throttle.may_try("ada@example.com").is_ok());
            throttle.failed("ada@example.com");
        }
        let refused = throttle.may_try("ada@example.com").expect_err("locked");
        assert!(refused.retry_after > Duration::from_secs(50));
        assert!(throttle.may_try("bob@example.com").is_ok());
        throttle.succeeded("ada@example.com");
        assert!(throttle.may_try("ada@example.com").is_ok());
    }
}
