//! Rate limiting with tower-governor: per client address, and per caller (the
//! verified subject of the bearer token; the IP for anonymous calls and
//! tokens that do not verify), each with its own rate and burst. Over the limit, the caller gets `resource_exhausted` in its own
//! protocol (HTTP 429 with a Connect JSON error, or gRPC status 8), with a
//! `Retry-After` header and the wait in the message.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use axum::{Router, body::Body, extract::Request, middleware::Next, response::Response};
use tower_governor::{
    GovernorError, GovernorLayer, governor::GovernorConfigBuilder, key_extractor::KeyExtractor,
};

use super::{
    client_address::ClientAddressKeyExtractor,
    connect_errors::{error_response, retry_later},
};
use shop_kit_auth::{TokenVerifier, bearer_token};

/// The limits; each is a sustained rate per second and a burst.
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// Requests per second one client IP may sustain.
    pub ip_per_second: u32,
    /// Requests one client IP may send at once beyond that.
    pub ip_burst: u32,
    /// Requests per second one signed-in caller may sustain.
    pub user_per_second: u32,
    /// Requests one signed-in caller may send at once beyond that.
    pub user_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            ip_per_second: 50,
            ip_burst: 100,
            user_per_second: 20,
            user_burst: 40,
        }
    }
}

/// Keys a request by its caller: the subject of a bearer token that
/// verifies, else the client's address.
#[derive(Clone, Debug)]
pub struct CallerKeyExtractor {
    verifier: TokenVerifier,
}

impl KeyExtractor for CallerKeyExtractor {
    type Key = (bool, u64);

    fn extract<T>(&self, request: &http::Request<T>) -> Result<Self::Key, GovernorError> {
        let subject = bearer_token(request.headers())
            .and_then(|token| self.verifier.verify(token).ok())
            .map(|claims| claims.sub);
        let mut hasher = DefaultHasher::new();
        match subject {
            Some(subject) => {
                subject.hash(&mut hasher);
                Ok((true, hasher.finish()))
            }
            None => {
                ClientAddressKeyExtractor
                    .extract(request)?
                    .hash(&mut hasher);
                Ok((false, hasher.finish()))
            }
        }
    }
}

/// Marks a response as the governor's refusal, for [`render`] to turn into
/// the caller's protocol.
#[derive(Clone, Copy, Debug)]
struct Limited {
    wait_secs: u64,
}

fn refusal(error: GovernorError) -> Response<Body> {
    let wait_secs = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 1,
    };
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(Limited { wait_secs });
    response
}

async fn render(request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let response = next.run(request).await;
    let Some(Limited { wait_secs }) = response.extensions().get::<Limited>().copied() else {
        return response;
    };
    metrics::counter!("shop_rate_limited_total").increment(1);
    let error = retry_later(
        format!("too many requests: retry in {wait_secs} s"),
        Duration::from_secs(wait_secs),
    );
    let mut response = error_response(&headers, error);
    // On gRPC the error's own metadata is not sent: the header is set here
    // for every protocol.
    if let Ok(value) = wait_secs.to_string().parse() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    response
}

fn per_second(rate: u32) -> Duration {
    Duration::from_secs(1) / rate.max(1)
}

/// Applies the limits to `router`, keyed by the client's address (as
/// `super::listener` tells it: the peer, or whom a trusted proxy forwarded
/// the request for).
pub fn limit(router: Router, config: &RateLimitConfig, verifier: TokenVerifier) -> Router {
    let by_ip = GovernorConfigBuilder::default()
        .key_extractor(ClientAddressKeyExtractor)
        .period(per_second(config.ip_per_second))
        .burst_size(config.ip_burst.max(1))
        .finish();
    let by_caller = GovernorConfigBuilder::default()
        .key_extractor(CallerKeyExtractor { verifier })
        .period(per_second(config.user_per_second))
        .burst_size(config.user_burst.max(1))
        .finish();
    let (Some(by_ip), Some(by_caller)) = (by_ip, by_caller) else {
        // Only a zero period or burst is refused: a rate above a billion
        // per second, which is no limit at all.
        tracing::warn!(?config, "rate limits too high to enforce: none applied");
        return router;
    };
    router
        .layer(GovernorLayer::new(Arc::new(by_caller)).error_handler(refusal))
        .layer(GovernorLayer::new(Arc::new(by_ip)).error_handler(refusal))
        .layer(axum::middleware::from_fn(render))
}
