//! When a call is sent again (`tower::retry`), as its method's retryPolicy
//! says (gRPC's: its codes, at most its attempts, its backoff drawn at
//! random), and whatever the method when the call never left (no
//! connection could be made) or the peer refused it unprocessed (its
//! admission control: too many calls at work), as gRPC's transparent
//! retries are; never past the call's deadline, and only while the peer's
//! retry budget allows, so a peer in trouble is not sent `max_attempts`
//! times its load. The endpoint that failed is out of rotation until its
//! health check answers (see `endpoint`), so a retry goes elsewhere when
//! there is an elsewhere.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::time::Instant;
use tonic::Code;

use super::{
    Backoff, Deadline,
    budget::{Answered, RetryBudget},
    calls::MethodCalls,
    connection::never_left,
    status::{BoxError, Response, head_code, refused_unprocessed},
};

/// Attempts of a call that never left or was refused unprocessed, when
/// its method has no retryPolicy of more.
const TRANSPARENT_ATTEMPTS: u32 = 3;
const TRANSPARENT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(50),
    max: Duration::from_secs(1),
    multiplier: 2.0,
};

/// A peer's retry policy; one per call (its attempts counted from one).
#[derive(Clone, Debug)]
pub(super) struct Retries {
    attempts: u32,
    budget: Arc<RetryBudget>,
    retries: metrics::Counter,
}

impl Retries {
    pub(super) fn new(budget: Arc<RetryBudget>, retries: metrics::Counter) -> Self {
        Self {
            attempts: 1,
            budget,
            retries,
        }
    }
}

type Request = http::Request<Bytes>;

/// Why a call may be sent again.
enum Again {
    /// Its method's retryPolicy names the code.
    Policy,
    /// It did not reach the peer's work: safe whatever the method.
    Transparent,
}

impl tower::retry::Policy<Request, Response, BoxError> for Retries {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        request: &mut Request,
        result: &mut Result<Response, BoxError>,
    ) -> Option<Self::Future> {
        let calls = MethodCalls::of_request(request);
        let retryable = |code| calls.retry().is_some_and(|r| r.codes.contains(code));
        let again = match result {
            Ok(response) => {
                let first = self.attempts == 1;
                let Some(code) = head_code(response.status(), response.headers()) else {
                    // An answer begun: the caller's, whatever it says.
                    self.budget
                        .answered(calls.throttling, Answered::Otherwise, first);
                    return None;
                };
                // Refused at the peer's intake: it did nothing.
                let unprocessed =
                    code == Code::ResourceExhausted && refused_unprocessed(response.headers());
                let again = if unprocessed {
                    Some(Again::Transparent)
                } else if retryable(code) {
                    Some(Again::Policy)
                } else {
                    None
                };
                let how = if again.is_some() || calls.hedged_past(code) {
                    Answered::Failed
                } else {
                    Answered::Otherwise
                };
                self.budget.answered(calls.throttling, how, first);
                again?
            }
            // Never left: sent again whatever the call. The connection
            // broke under it (a replica killed): the call may have run,
            // as after `unavailable`.
            Err(error) if never_left(error.as_ref()) => Again::Transparent,
            Err(_) if retryable(Code::Unavailable) => Again::Policy,
            Err(_) => return None,
        };
        let (most, backoff) = match (&again, calls.retry()) {
            (Again::Policy, Some(retry)) => (retry.max_attempts, retry.backoff),
            (_, retry) => (
                retry.map_or(TRANSPARENT_ATTEMPTS, |r| {
                    r.max_attempts.max(TRANSPARENT_ATTEMPTS)
                }),
                retry.map_or(TRANSPARENT_BACKOFF, |r| r.backoff),
            ),
        };
        if self.attempts >= most || !self.budget.withdraw(calls.throttling) {
            return None;
        }
        let pause = backoff.jittered(self.attempts);
        let deadline = request.extensions().get::<Deadline>().copied();
        if deadline.is_some_and(|deadline| Instant::now() + pause >= deadline.0) {
            return None;
        }
        self.attempts += 1;
        self.retries.increment(1);
        Some(Box::pin(tokio::time::sleep(pause)))
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        Some(super::hedge::copy(request))
    }
}
