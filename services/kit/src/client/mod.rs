//! Calling another service, resiliently: the one client-side stack every
//! service and the gateway put around their calls (tonic gRPC clients, or
//! any call returning a `tonic::Status`).
//!
//! - the caller's remaining deadline bounds each attempt (else a default
//!   per-call timeout), and the attempt is told its budget so it can send it
//!   on (`grpc-timeout`);
//! - retries with exponential backoff and jitter, only on `unavailable` or
//!   `resource_exhausted`, and only when the call is safe to repeat (an
//!   idempotent method, or a call carrying an idempotency key);
//! - a circuit breaker per downstream that counts infrastructure failures
//!   only (unavailable, deadline_exceeded, internal, unknown, data_loss),
//!   never business errors: open, calls fail fast with `unavailable`; after
//!   the cool-down one probe is let through, and its outcome closes or
//!   reopens it;
//! - a bulkhead: at most so many calls in flight, the rest shed with
//!   `resource_exhausted`;
//! - metrics per downstream: calls by code, retries, sheds, breaker state.
//!
//! [`translate`] turns a downstream's error into what is true for this
//! service's caller.

mod backoff;
mod breaker;
mod channel;
mod translate;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{sync::Semaphore, time::Instant};
use tonic::{Code, Status};

pub use backoff::Backoff;
use breaker::Breaker;
pub use channel::channel;
pub use translate::translate;

/// How one downstream is called.
#[derive(Clone, Debug)]
pub struct DownstreamPolicy {
    /// A call's time budget, all attempts together, when the caller set
    /// no deadline.
    pub timeout: Duration,
    /// Attempts of a call safe to repeat, the first included.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Consecutive infrastructure failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker fails fast before letting a probe through.
    pub breaker_cooldown: Duration,
    /// Calls in flight at most; more are shed.
    pub max_in_flight: usize,
}

impl Default for DownstreamPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            max_attempts: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            breaker_threshold: 5,
            // A blip is over within a second or so: probe that soon.
            breaker_cooldown: Duration::from_secs(1),
            max_in_flight: 64,
        }
    }
}

/// Whether a call may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// An idempotent method, or a call carrying an idempotency key.
    Safe,
    /// Anything else: one attempt only.
    Never,
}

/// Codes that say the downstream (or the way to it) is in trouble, not
/// that the request was wrong.
pub fn is_infrastructure_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss
    )
}

fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// Marks the answer to a call that was never sent.
const NOT_SENT: &str = "x-shop-not-sent";

/// A failure without a call: the breaker open, or the bulkhead full.
fn not_sent(code: Code, message: String) -> Status {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(NOT_SENT, tonic::metadata::MetadataValue::from_static("1"));
    Status::with_metadata(code, message, metadata)
}

/// Whether a call failed without being sent to the downstream (its
/// breaker open, too many calls in flight): a caller that counts attempts
/// (or gives up after some) should not count it.
pub fn was_not_sent(status: &Status) -> bool {
    status.metadata().contains_key(NOT_SENT)
}

/// One downstream service, as seen by this one.
#[derive(Clone, Debug)]
pub struct Downstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    policy: DownstreamPolicy,
    breaker: Breaker,
    backoff: Backoff,
    in_flight: Arc<Semaphore>,
    metrics: Metrics,
}

/// One downstream's metric handles, looked up once: calls by code (the 17
/// gRPC codes, then "circuit_open"), sheds, retries.
#[derive(Debug)]
struct Metrics {
    calls: Vec<metrics::Counter>,
    shed: metrics::Counter,
    retries: metrics::Counter,
}

/// The label of calls failed fast by an open breaker.
const CIRCUIT_OPEN: usize = 17;

impl Metrics {
    fn new(downstream: &str) -> Self {
        crate::observe::telemetry::prometheus();
        let calls = (0..=16)
            .map(crate::rpc::connect_errors::code_name)
            .chain(["circuit_open"])
            .map(|code| {
                metrics::counter!("shop_downstream_calls_total",
                    "downstream" => downstream.to_owned(), "code" => code)
            })
            .collect();
        Self {
            calls,
            shed: metrics::counter!("shop_downstream_shed_total", "downstream" => downstream.to_owned()),
            retries: metrics::counter!("shop_downstream_retries_total", "downstream" => downstream.to_owned()),
        }
    }

    fn call(&self, code: Code) {
        if let Some(counter) = self.calls.get(code as usize) {
            counter.increment(1);
        }
    }
}

impl Downstream {
    pub fn new(name: &str, policy: DownstreamPolicy) -> Self {
        let in_flight = Arc::new(Semaphore::new(policy.max_in_flight));
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                breaker: Breaker::new(name, policy.breaker_threshold, policy.breaker_cooldown),
                backoff: Backoff::new(policy.first_backoff, policy.max_backoff),
                policy,
                in_flight,
                metrics: Metrics::new(name),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn policy(&self) -> &DownstreamPolicy {
        &self.inner.policy
    }

    /// Whether the breaker is open (failing fast) right now.
    pub fn is_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Calls the downstream through the stack. `attempt` makes one attempt
    /// within the time budget it is given (and should send it on, e.g. with
    /// `tonic::Request::set_timeout`); `deadline` is the caller's, if any.
    pub async fn call<T, F, Fut>(
        &self,
        retry: Retry,
        deadline: Option<Instant>,
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let name = &self.inner.name;
        let policy = &self.inner.policy;
        let counted = &self.inner.metrics;
        let Ok(_permit) = self.inner.in_flight.clone().try_acquire_owned() else {
            counted.shed.increment(1);
            return Err(not_sent(
                Code::ResourceExhausted,
                format!("too many calls to the {name} service in flight"),
            ));
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + policy.timeout);
        let mut attempts = 0;
        loop {
            attempts += 1;
            if !self.inner.breaker.admit() {
                counted.calls[CIRCUIT_OPEN].increment(1);
                return Err(not_sent(
                    Code::Unavailable,
                    format!("the {name} service is failing; not called (circuit open)"),
                ));
            }
            let budget = deadline.saturating_duration_since(Instant::now());
            let result = if budget.is_zero() {
                Err(Status::deadline_exceeded(format!(
                    "no time left to call the {name} service"
                )))
            } else {
                let started = Instant::now();
                let late = || {
                    Status::deadline_exceeded(format!("the {name} service did not answer in time"))
                };
                match tokio::time::timeout(budget, attempt(budget)).await {
                    Err(_elapsed) => Err(late()),
                    // tonic's own client timeout (from `set_timeout`) says
                    // `cancelled`; it is this deadline all the same.
                    Ok(Err(status))
                        if status.code() == Code::Cancelled
                            && started.elapsed() + Duration::from_millis(5) >= budget =>
                    {
                        Err(late())
                    }
                    Ok(answer) => answer,
                }
            };
            let code = result.as_ref().err().map_or(Code::Ok, Status::code);
            counted.call(code);
            self.inner
                .breaker
                .record(result.as_ref().map(|_| ()).map_err(Status::code));
            match result {
                Err(status)
                    if retry == Retry::Safe
                        && is_retryable(status.code())
                        && attempts < policy.max_attempts =>
                {
                    let pause = self.inner.backoff.jittered(attempts);
                    if Instant::now() + pause >= deadline {
                        return Err(status);
                    }
                    counted.retries.increment(1);
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn failures_ending_at_once_are_all_counted() {
        // 8 threads each record 50 failures: 400 against a threshold of 400
        // must open the breaker, exactly as 400 in a row do.
        let downstream = Downstream::new(
            "concurrent",
            DownstreamPolicy {
                breaker_threshold: 400,
                breaker_cooldown: Duration::from_secs(60),
                ..policy()
            },
        );
        std::thread::scope(|threads| {
            for _ in 0..8 {
                threads.spawn(|| {
                    for _ in 0..50 {
                        downstream.inner.breaker.record(Err(Code::Unavailable));
                    }
                });
            }
        });
        assert!(downstream.is_open(), "{:?}", downstream.inner.breaker);
        let sequential = Downstream::new(
            "sequential",
            DownstreamPolicy {
                breaker_threshold: 400,
                ..policy()
            },
        );
        for _ in 0..399 {
            sequential.inner.breaker.record(Err(Code::Unavailable));
        }
        assert!(!sequential.is_open(), "one short of the threshold");
        sequential.inner.breaker.record(Err(Code::Unavailable));
        assert!(sequential.is_open());
    }

    fn policy() -> DownstreamPolicy {
        DownstreamPolicy {
            timeout: Duration::from_millis(500),
            max_attempts: 3,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(100),
            max_in_flight: 2,
        }
    }

    /// A downstream answering `answers` in turn (the last one forever),
    /// counting the calls that reached it.
    async fn call(
        downstream: &Downstream,
        retry: Retry,
        reached: &AtomicU32,
        answers: &[Code],
    ) -> Result<(), Status> {
        downstream
            .call(retry, None, |_budget| {
                let n = reached.fetch_add(1, Ordering::SeqCst) as usize;
                let code = answers[n.min(answers.len() - 1)];
                async move {
                    match code {
                        Code::Ok => Ok(()),
                        code => Err(Status::new(code, "answer")),
                    }
                }
            })
            .await
    }

    #[tokio::test]
    async fn infrastructure_failures_open_the_breaker_and_a_probe_closes_it() {
        let downstream = Downstream::new("test-breaker", policy());
        let reached = AtomicU32::new(0);
        for _ in 0..3 {
            let failed = call(&downstream, Retry::Never, &reached, &[Code::Internal]).await;
            assert_eq!(failed.expect_err("fails").code(), Code::Internal);
        }
        assert!(downstream.is_open());
        let fast = call(&downstream, Retry::Never, &reached, &[Code::Ok]).await;
        let fast = fast.expect_err("fails fast");
        assert_eq!(fast.code(), Code::Unavailable);
        assert!(was_not_sent(&fast));
        assert_eq!(reached.load(Ordering::SeqCst), 3, "not called while open");

        tokio::time::sleep(Duration::from_millis(120)).await;
        call(
            &downstream,
            Retry::Never,
            &reached,
            &[Code::Ok, Code::Ok, Code::Ok, Code::Ok],
        )
        .await
        .expect("the probe goes through");
        assert!(!downstream.is_open());
        assert_eq!(reached.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_and_business_errors_never_open() {
        let downstream = Downstream::new("test-business", policy());
        let reached = AtomicU32::new(0);
        for _ in 0..10 {
            let answer = call(&downstream, Retry::Safe, &reached, &[Code::NotFound]).await;
            assert_eq!(answer.expect_err("not found").code(), Code::NotFound);
        }
        assert!(!downstream.is_open(), "not_found is the caller's problem");
        assert_eq!(reached.load(Ordering::SeqCst), 10, "and never retried");

        for _ in 0..3 {
            let _ = call(&downstream, Retry::Never, &reached, &[Code::Unknown]).await;
        }
        assert!(downstream.is_open());
        tokio::time::sleep(Duration::from_millis(120)).await;
        let probe = call(&downstream, Retry::Never, &reached, &[Code::Unavailable]).await;
        assert_eq!(probe.expect_err("probe fails").code(), Code::Unavailable);
        assert!(downstream.is_open(), "a failed probe opens it again");
    }

    #[tokio::test]
    async fn only_calls_safe_to_repeat_are_retried() {
        let flaky = [Code::Unavailable, Code::Ok];
        let downstream = Downstream::new("test-retry", policy());
        let reached = AtomicU32::new(0);
        call(&downstream, Retry::Safe, &reached, &flaky)
            .await
            .expect("the retry succeeds");
        assert_eq!(reached.load(Ordering::SeqCst), 2);

        let reached = AtomicU32::new(0);
        let once = call(&downstream, Retry::Never, &reached, &flaky).await;
        assert_eq!(once.expect_err("not retried").code(), Code::Unavailable);
        assert_eq!(reached.load(Ordering::SeqCst), 1);

        let reached = AtomicU32::new(0);
        let busy = call(
            &downstream,
            Retry::Safe,
            &reached,
            &[Code::ResourceExhausted],
        )
        .await;
        assert_eq!(busy.expect_err("gives up").code(), Code::ResourceExhausted);
        assert_eq!(reached.load(Ordering::SeqCst), 3, "max_attempts in all");
    }

    #[tokio::test]
    async fn the_callers_deadline_bounds_every_attempt() {
        let downstream = Downstream::new("test-deadline", policy());
        let started = Instant::now();
        let deadline = started + Duration::from_millis(60);
        let slow = downstream
            .call(Retry::Safe, Some(deadline), |budget| async move {
                assert!(budget <= Duration::from_millis(60));
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<(), Status>(())
            })
            .await;
        assert_eq!(slow.expect_err("too slow").code(), Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_millis(400));
    }

    #[tokio::test]
    async fn a_full_bulkhead_sheds_with_resource_exhausted() {
        let downstream = Downstream::new("test-bulkhead", policy());
        let gate = Arc::new(Semaphore::new(0));
        let hold = |gate: Arc<Semaphore>| {
            let downstream = downstream.clone();
            tokio::spawn(async move {
                downstream
                    .call(Retry::Never, None, |_| {
                        let gate = gate.clone();
                        async move {
                            let _ = gate.acquire().await;
                            Ok::<(), Status>(())
                        }
                    })
                    .await
            })
        };
        let first = hold(gate.clone());
        let second = hold(gate.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let shed = downstream
            .call(Retry::Safe, None, |_| async { Ok::<(), Status>(()) })
            .await;
        let shed = shed.expect_err("shed");
        assert_eq!(shed.code(), Code::ResourceExhausted);
        assert!(was_not_sent(&shed));
        gate.add_permits(2);
        first.await.expect("join").expect("first");
        second.await.expect("join").expect("second");
    }

    #[test]
    fn errors_are_translated_for_the_caller() {
        let not_found = Status::not_found("product \"x\" not found");
        let invalid = translate("catalog", &not_found, |code| {
            (code == Code::NotFound).then_some(Code::InvalidArgument)
        });
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let denied = translate("orders", &Status::permission_denied("no"), |_| None);
        assert_eq!(denied.code(), Code::Internal);
        let broken = translate("orders", &Status::internal("stack trace here"), |_| None);
        assert_eq!(broken.code(), Code::Unavailable);
        assert!(!broken.message().contains("stack"));
        let anonymous = translate("orders", &Status::unauthenticated("log in"), |_| None);
        assert_eq!(anonymous.code(), Code::Unauthenticated);
    }
}
