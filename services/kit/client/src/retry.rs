//! When a call is sent again (`tower::retry`): after `unavailable`,
//! `resource_exhausted` or a connection that broke under it when it is safe
//! to repeat (the peer's policy, or the call's own [`Retry`]), and always
//! when it never left (no connection could be made) or the peer refused it
//! unprocessed (its admission control: too many calls at work); at most `max_attempts` in all, with exponential backoff
//! and jitter, never past the call's deadline, and only while the peer's
//! retry budget (a share of its calls, `tower::retry::budget`) allows, so a
//! peer in trouble is not sent `max_attempts` times its load. The endpoint
//! that failed is out of rotation until its health check answers (see
//! `endpoint`), so a retry goes elsewhere when there is an elsewhere.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::time::Instant;
use tonic::Code;
use tower::retry::budget::{Budget, TpsBudget};

use super::{
    Backoff, Deadline, Retry,
    status::{BoxError, Response, head_code, never_left, refused_unprocessed},
};

/// A peer's retry policy; one per call (its attempts counted from zero).
#[derive(Clone, Debug)]
pub(super) struct RetryPolicy {
    attempts: u32,
    max_attempts: u32,
    backoff: Backoff,
    default: Retry,
    budget: Arc<TpsBudget>,
    retries: metrics::Counter,
}

impl RetryPolicy {
    pub(super) fn new(
        max_attempts: u32,
        backoff: Backoff,
        default: Retry,
        budget: Arc<TpsBudget>,
        retries: metrics::Counter,
    ) -> Self {
        Self {
            attempts: 1,
            max_attempts,
            backoff,
            default,
            budget,
            retries,
        }
    }
}

/// A peer's retry budget: `ratio` of its calls, and at least
/// `min_per_sec` a second, over the last 10 s.
pub(super) fn budget(ratio: f32, min_per_sec: u32) -> Arc<TpsBudget> {
    Arc::new(TpsBudget::new(Duration::from_secs(10), min_per_sec, ratio))
}

type Request = http::Request<Bytes>;

impl tower::retry::Policy<Request, Response, BoxError> for RetryPolicy {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        request: &mut Request,
        result: &mut Result<Response, BoxError>,
    ) -> Option<Self::Future> {
        let again = match result {
            Ok(response) => {
                // Every call that got an answer counts towards the budget.
                self.budget.deposit();
                let (code, safe) = match response_code(response) {
                    Some(code) => (code, self.safe(request)),
                    None => return None,
                };
                // Refused at the peer's door: it did nothing, so sending
                // it again is safe whatever the method.
                let unprocessed =
                    code == Code::ResourceExhausted && refused_unprocessed(response.headers());
                unprocessed || (safe && matches!(code, Code::Unavailable | Code::ResourceExhausted))
            }
            // Never left: sent again whatever the call. The connection
            // broke under it (a replica killed): the call may have run, as
            // after `unavailable`.
            Err(error) => never_left(error.as_ref()) || self.safe(request),
        };
        if !again || self.attempts >= self.max_attempts || !self.budget.withdraw() {
            return None;
        }
        let pause = self.backoff.jittered(self.attempts);
        let deadline = request.extensions().get::<Deadline>().copied();
        if deadline.is_some_and(|deadline| Instant::now() + pause >= deadline.0) {
            return None;
        }
        self.attempts += 1;
        self.retries.increment(1);
        Some(Box::pin(tokio::time::sleep(pause)))
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        let mut again = http::Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(request.body().clone())
            .ok()?;
        *again.headers_mut() = request.headers().clone();
        *again.extensions_mut() = request.extensions().clone();
        Some(again)
    }
}

impl RetryPolicy {
    fn safe(&self, request: &Request) -> bool {
        request
            .extensions()
            .get::<Retry>()
            .copied()
            .unwrap_or(self.default)
            == Retry::Safe
    }
}

fn response_code(response: &Response) -> Option<Code> {
    // The head's code (a trailers-only failure); an answer whose code comes
    // in its trailers has begun: it is the caller's, whatever it says.
    head_code(response.status(), response.headers())
}
