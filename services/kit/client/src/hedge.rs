//! Hedging, as a method's hedgingPolicy says (gRPC's): the call is sent,
//! and while no answer has come, sent again every `delay` (to another
//! endpoint: the balancer weighs endpoints by calls in flight), up to
//! `max_attempts` copies; but only while the peer has another endpoint to
//! take it: with one, a copy would only add to the work of the endpoint
//! already slow on the call. The endpoints slow on it are the balancer's
//! last choice for a moment (as one that refused a call is), so the copy
//! goes elsewhere, and so do the calls after it. The first answer that is
//! not a non-fatal code is the call's, and the other copies are
//! cancelled; a non-fatal code sends the next copy at once. Each copy
//! after the first is drawn from the peer's retry budget, so a slow peer
//! is not sent twice its load.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{
    StreamExt,
    future::{BoxFuture, Either},
    stream::FuturesUnordered,
};
use shop_kit_policy::RetryThrottling;
use tokio::time::Instant;
use tonic::Code;
use tower::{Service, ServiceExt};

use super::{
    budget::{Answered, RetryBudget},
    calls::{Hedging, MethodCalls},
    connection::never_left,
    endpoint::Copies,
    endpoints::Shared as Endpoints,
    status::{BoxError, Response, head_code},
};

type Request = http::Request<Bytes>;

#[derive(Clone)]
pub(super) struct Hedge<S> {
    inner: S,
    budget: Arc<RetryBudget>,
    endpoints: Arc<Endpoints>,
}

impl<S> Hedge<S> {
    pub(super) fn new(inner: S, budget: Arc<RetryBudget>, endpoints: Arc<Endpoints>) -> Self {
        Self {
            inner,
            budget,
            endpoints,
        }
    }
}

impl<S> Service<Request> for Hedge<S>
where
    S: Service<Request, Response = Response, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, BoxError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Not hedged, or nowhere else to send a copy: sent as it is.
        let hedging = match MethodCalls::of_request(&request).hedging() {
            Some(hedging) if self.endpoints.elsewhere(Instant::now()) => hedging.clone(),
            _ => {
                return Either::Left(self.inner.call(request));
            }
        };
        let throttling = MethodCalls::of_request(&request).throttling;
        let mut request = request;
        let copies = Arc::new(Copies::default());
        request.extensions_mut().insert(copies.clone());
        let first = self.inner.call(copy(&request));
        Either::Right(Box::pin(hedged(
            first,
            request,
            self.clone(),
            hedging,
            throttling,
            copies,
        )))
    }
}

/// Whether an attempt's outcome ends the call (its answer is the call's).
fn is_final(result: &Result<Response, BoxError>, hedging: &Hedging) -> bool {
    let code = match result {
        Ok(response) => match head_code(response.status(), response.headers()) {
            None => return true,
            Some(code) => code,
        },
        // Not sent at all: the next copy may be.
        Err(error) if never_left(error.as_ref()) => return false,
        Err(_) => Code::Unavailable,
    };
    !hedging.non_fatal.contains(code)
}

async fn hedged<S>(
    first: S::Future,
    request: Request,
    stack: Hedge<S>,
    hedging: Hedging,
    throttling: Option<RetryThrottling>,
    copies: Arc<Copies>,
) -> Result<Response, BoxError>
where
    S: Service<Request, Response = Response, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Hedge {
        inner,
        budget,
        endpoints,
    } = stack;
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Result<Response, BoxError>>> =
        FuturesUnordered::new();
    in_flight.push(Box::pin(first));
    let mut sent = 1;
    let mut next = Instant::now() + hedging.delay;
    let mut last = None;
    loop {
        let more = sent < hedging.max_attempts;
        let send_now = tokio::select! {
            Some(result) = in_flight.next() => {
                if is_final(&result, &hedging) {
                    return result;
                }
                budget.answered(throttling, Answered::Failed, false);
                last = Some(result);
                if !more && in_flight.is_empty() {
                    break;
                }
                more
            }
            () = tokio::time::sleep_until(next), if more => {
                let elsewhere = endpoints.elsewhere(Instant::now());
                if elsewhere {
                    copies.avoid();
                } else {
                    next = Instant::now() + hedging.delay;
                }
                elsewhere
            }
        };
        if send_now {
            if budget.withdraw(throttling) {
                endpoints.metrics.hedges.increment(1);
                in_flight.push(Box::pin(inner.clone().oneshot(copy(&request))));
                sent += 1;
                next = Instant::now() + hedging.delay;
            } else {
                // No budget: the copies out are the last.
                sent = hedging.max_attempts;
            }
        }
        if in_flight.is_empty() {
            break;
        }
    }
    last.unwrap_or_else(|| Err("no attempt of the hedged call was sent".into()))
}

/// The same request again (its buffered body shared).
pub(super) fn copy(request: &Request) -> Request {
    let mut again = http::Request::new(request.body().clone());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    *again.extensions_mut() = request.extensions().clone();
    again
}
