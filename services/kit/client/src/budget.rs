//! A peer's retry budget, which retries and hedges both draw on, so that a
//! peer in trouble is not sent several times its load: by default a share
//! of its calls (`tower::retry::budget`: 20% over the last 10 s, and a few
//! a second whatever the share); where the service config says so, gRPC's
//! retryThrottling (a token bucket: a failed call takes a token, a good one
//! gives back `tokenRatio`, and retries stop while half or fewer are left).

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use shop_kit_policy::RetryThrottling;
use tower::retry::budget::{Budget, TpsBudget};

/// Thousandths of a token: gRPC keeps token counts to three decimals.
const MILLI: f64 = 1000.0;
/// The bucket has not been used yet: it starts full.
const UNUSED: i64 = i64::MIN;

#[derive(Debug)]
pub(super) struct RetryBudget {
    share: TpsBudget,
    /// The token bucket's count, in thousandths (while the service config
    /// gives retryThrottling).
    tokens: AtomicI64,
}

/// How a call's attempt ended, for the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answered {
    /// With a code its policy would try again (or hedge past).
    Failed,
    Otherwise,
}

impl RetryBudget {
    /// `ratio` of the calls, at least `min_per_sec` a second.
    pub(super) fn new(ratio: f32, min_per_sec: u32) -> Self {
        Self {
            share: TpsBudget::new(Duration::from_secs(10), min_per_sec, ratio),
            tokens: AtomicI64::new(UNUSED),
        }
    }

    /// Counts an answered attempt (`first`: the call's first). The share
    /// counts calls, not attempts, so retries never earn more retries;
    /// gRPC's bucket counts every attempt's outcome.
    pub(super) fn answered(&self, throttling: Option<RetryThrottling>, how: Answered, first: bool) {
        match throttling {
            None if first => self.share.deposit(),
            None => {}
            Some(throttling) => {
                let change = match how {
                    Answered::Failed => -MILLI,
                    Answered::Otherwise => throttling.token_ratio * MILLI,
                };
                self.change_tokens(throttling, change as i64);
            }
        }
    }

    /// Whether another attempt may be sent (taken from the share, if that
    /// is the budget).
    pub(super) fn withdraw(&self, throttling: Option<RetryThrottling>) -> bool {
        match throttling {
            None => self.share.withdraw(),
            Some(throttling) => {
                let full = i64::from(throttling.max_tokens) * 1000;
                let tokens = match self.tokens.load(Ordering::Relaxed) {
                    UNUSED => full,
                    tokens => tokens.min(full),
                };
                tokens * 2 > full
            }
        }
    }

    fn change_tokens(&self, throttling: RetryThrottling, change: i64) {
        let full = i64::from(throttling.max_tokens) * 1000;
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                let tokens = if tokens == UNUSED { full } else { tokens };
                Some((tokens + change).clamp(0, full))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_s_throttling_stops_retries_at_half_the_tokens_and_lets_them_back() {
        let throttling = Some(RetryThrottling {
            max_tokens: 10,
            token_ratio: 0.5,
        });
        let budget = RetryBudget::new(0.2, 10);
        assert!(budget.withdraw(throttling), "full at first");
        for _ in 0..5 {
            budget.answered(throttling, Answered::Failed, true);
        }
        assert!(
            !budget.withdraw(throttling),
            "5 of 10 left: no more retries"
        );
        budget.answered(throttling, Answered::Otherwise, true);
        assert!(budget.withdraw(throttling), "5.5 of 10");
    }
}
