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

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use tokio::{sync::Semaphore, time::Instant};
use tonic::{Code, Status};

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
            breaker_cooldown: Duration::from_secs(5),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Cooled down: one probe call is on its way (if it never reports, say
    /// its caller gave up, another may go after a cool-down).
    HalfOpen {
        probe_sent: Instant,
    },
}

/// A lazily connected channel to a peer at `url`: connecting may take
/// `connect_timeout`; no channel-wide timeout, since each call's budget
/// comes from [`Downstream::call`] (and a tower timeout would surface as
/// `cancelled`).
pub fn channel(
    url: &str,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, http::uri::InvalidUri> {
    Ok(tonic::transport::Channel::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .connect_lazy())
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
    breaker: Mutex<Breaker>,
    in_flight: Arc<Semaphore>,
}

impl Downstream {
    pub fn new(name: &str, policy: DownstreamPolicy) -> Self {
        let in_flight = Arc::new(Semaphore::new(policy.max_in_flight));
        metrics::gauge!("shop_downstream_breaker_open", "downstream" => name.to_owned()).set(0.0);
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                policy,
                breaker: Mutex::new(Breaker::Closed { failures: 0 }),
                in_flight,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the breaker is open (failing fast) right now.
    pub fn is_open(&self) -> bool {
        matches!(self.breaker(), Breaker::Open { until } if Instant::now() < until)
    }

    fn breaker(&self) -> Breaker {
        *self.lock_breaker()
    }

    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.inner
            .breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the breaker lets a call through now (taking the probe slot
    /// when half-open).
    fn admit(&self) -> bool {
        let mut breaker = self.lock_breaker();
        let now = Instant::now();
        let cooldown = self.inner.policy.breaker_cooldown;
        let (admitted, next) = match *breaker {
            Breaker::Closed { .. } => (true, *breaker),
            Breaker::Open { until } if now < until => (false, *breaker),
            Breaker::HalfOpen { probe_sent } if now < probe_sent + cooldown => (false, *breaker),
            // Cooled down: this call is the probe.
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => {
                (true, Breaker::HalfOpen { probe_sent: now })
            }
        };
        *breaker = next;
        admitted
    }

    /// Counts an outcome: read and written under one lock, so failures
    /// that end at once are all counted.
    fn record(&self, outcome: Result<(), Code>) {
        let infrastructure = matches!(outcome, Err(code) if is_infrastructure_failure(code));
        let mut breaker = self.lock_breaker();
        let next = match (*breaker, infrastructure) {
            (_, false) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, true)
                if failures + 1 < self.inner.policy.breaker_threshold =>
            {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => {
                tracing::warn!(downstream = %self.inner.name, "circuit open: failing fast");
                Breaker::Open {
                    until: Instant::now() + self.inner.policy.breaker_cooldown,
                }
            }
        };
        let changed_openness =
            matches!(next, Breaker::Open { .. }) != matches!(*breaker, Breaker::Open { .. });
        *breaker = next;
        drop(breaker);
        if changed_openness {
            let open = matches!(next, Breaker::Open { .. });
            metrics::gauge!("shop_downstream_breaker_open", "downstream" => self.inner.name.clone())
                .set(if open { 1.0 } else { 0.0 });
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let policy = &self.inner.policy;
        let full = policy
            .first_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1).min(16)))
            .min(policy.max_backoff);
        // Equal jitter: half fixed, half random, so retries spread out.
        let half = full / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
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
        let name = self.inner.name.clone();
        let policy = &self.inner.policy;
        let Ok(_permit) = self.inner.in_flight.clone().try_acquire_owned() else {
            metrics::counter!("shop_downstream_shed_total", "downstream" => name.clone())
                .increment(1);
            return Err(Status::resource_exhausted(format!(
                "too many calls to the {name} service in flight"
            )));
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + policy.timeout);
        let mut attempts = 0;
        loop {
            attempts += 1;
            if !self.admit() {
                metrics::counter!("shop_downstream_calls_total",
                    "downstream" => name.clone(), "code" => "circuit_open")
                .increment(1);
                return Err(Status::unavailable(format!(
                    "the {name} service is failing; not called (circuit open)"
                )));
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
            metrics::counter!("shop_downstream_calls_total",
                "downstream" => name.clone(), "code" => crate::connect_errors::code_name(code as i32))
            .increment(1);
            self.record(result.as_ref().map(|_| ()).map_err(Status::code));
            match result {
                Err(status)
                    if retry == Retry::Safe
                        && is_retryable(status.code())
                        && attempts < policy.max_attempts =>
                {
                    let pause = self.backoff(attempts);
                    if Instant::now() + pause >= deadline {
                        return Err(status);
                    }
                    metrics::counter!("shop_downstream_retries_total", "downstream" => name.clone())
                        .increment(1);
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }
}

/// A downstream's error as this service's caller should see it:
/// `business` decides for the codes it knows (e.g. the downstream's
/// not_found of a product the caller named is the caller's
/// invalid_argument); otherwise infrastructure trouble is `unavailable`
/// (or `deadline_exceeded`), a permission the downstream denies is
/// `internal` (this service should not have asked), and the rest (an
/// unauthenticated caller, not_found, ...) passes through. Messages of what becomes
/// internal or unavailable are logged here, not returned.
pub fn translate(
    downstream: &str,
    status: &Status,
    business: impl Fn(Code) -> Option<Code>,
) -> Status {
    if let Some(code) = business(status.code()) {
        return Status::new(code, status.message());
    }
    match status.code() {
        Code::DeadlineExceeded => {
            Status::deadline_exceeded(format!("the {downstream} service did not answer in time"))
        }
        code if is_infrastructure_failure(code) || code == Code::ResourceExhausted => {
            tracing::warn!(downstream, code = ?code, message = status.message(), "downstream failed");
            Status::unavailable(format!(
                "the {downstream} service is unavailable, try again later"
            ))
        }
        Code::PermissionDenied => {
            tracing::error!(
                downstream,
                message = status.message(),
                "downstream denied the call"
            );
            Status::internal("an internal call was refused")
        }
        _ => status.clone(),
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
                        downstream.record(Err(Code::Unavailable));
                    }
                });
            }
        });
        assert!(downstream.is_open(), "{:?}", downstream.breaker());
        let sequential = Downstream::new(
            "sequential",
            DownstreamPolicy {
                breaker_threshold: 400,
                ..policy()
            },
        );
        for _ in 0..399 {
            sequential.record(Err(Code::Unavailable));
        }
        assert!(!sequential.is_open(), "one short of the threshold");
        sequential.record(Err(Code::Unavailable));
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
        assert_eq!(fast.expect_err("fails fast").code(), Code::Unavailable);
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
        assert_eq!(shed.expect_err("shed").code(), Code::ResourceExhausted);
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
