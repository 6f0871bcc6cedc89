//! Rate limiting with tower-governor: per client address (an IPv6 client's
//! network, `client_limit_key`), and per caller (the verified subject of the
//! bearer token; the address for anonymous calls and tokens that do not
//! verify), each with its own rate and burst. Over the limit, the caller gets
//! `resource_exhausted` in its own protocol (HTTP 429 with a Connect JSON
//! error, or gRPC status 8), with a `Retry-After` header and the wait in the
//! message.
//!
//! Each limiter's memory is bounded twice over: a key is one of [`SLOTS`]
//! slots (a hash seeded anew by each process, so nobody can aim at another
//! client's slot), and every [`PRUNE_EVERY`] the keys whose bucket is full
//! again are dropped, so the table holds only clients seen lately.

use std::{
    hash::{BuildHasher, Hash},
    sync::{Arc, LazyLock, Weak},
    time::Duration,
};

use axum::{Router, body::Body, extract::Request, middleware::Next, response::Response};
use governor::middleware::NoOpMiddleware;
use tower_governor::{
    GovernorError, GovernorLayer, governor::GovernorConfigBuilder, key_extractor::KeyExtractor,
};

use super::{
    client_address::client_limit_key,
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

/// The most keys one limiter holds: about 40 bytes each, so at most some
/// 40 MiB however many clients come; with a thousand clients active, one
/// shares its bucket with another by a chance of 1 in a thousand.
pub const SLOTS: u64 = 1 << 20;

/// How often each limiter drops the clients whose bucket is full again.
pub const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// The hash of this process's slots: a seed nobody outside knows.
static SLOT_HASH: LazyLock<foldhash::quality::RandomState> =
    LazyLock::new(foldhash::quality::RandomState::default);

fn slot_of(key: impl Hash) -> u32 {
    // SLOTS is 2^20: the remainder fits.
    u32::try_from(SLOT_HASH.hash_one(key) % SLOTS).unwrap_or_default()
}

/// Keys a request by its client's address (an IPv6 client's network).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientKeyExtractor;

impl KeyExtractor for ClientKeyExtractor {
    type Key = u32;

    fn extract<T>(&self, request: &http::Request<T>) -> Result<Self::Key, GovernorError> {
        Ok(slot_of(client_limit_key(request.extensions())))
    }
}

/// Keys a request by its caller: the subject of a bearer token that
/// verifies, else the client's address.
#[derive(Clone, Debug)]
pub struct CallerKeyExtractor {
    verifier: TokenVerifier,
}

impl KeyExtractor for CallerKeyExtractor {
    type Key = u32;

    fn extract<T>(&self, request: &http::Request<T>) -> Result<Self::Key, GovernorError> {
        let subject = bearer_token(request.headers())
            .and_then(|token| self.verifier.verify(token).ok())
            .map(|claims| claims.sub);
        Ok(match subject {
            Some(subject) => slot_of((true, subject)),
            None => slot_of((false, client_limit_key(request.extensions()))),
        })
    }
}

/// Drops, every [`PRUNE_EVERY`], the keys of `limiter` whose bucket is full
/// again, until the router holding it is gone.
fn prune(limiter: &tower_governor::governor::SharedRateLimiter<u32, NoOpMiddleware>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("rate limits built outside a runtime: their tables are not pruned");
        return;
    };
    let limiter: Weak<_> = Arc::downgrade(limiter);
    runtime.spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
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
        .key_extractor(ClientKeyExtractor)
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
    prune(by_ip.limiter());
    prune(by_caller.limiter());
    router
        .layer(GovernorLayer::new(Arc::new(by_caller)).error_handler(refusal))
        .layer(GovernorLayer::new(Arc::new(by_ip)).error_handler(refusal))
        .layer(axum::middleware::from_fn(render))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::client_address::{Client, limit_key};

    fn from(address: &str) -> http::Request<()> {
        let address: IpAddr = address.parse().expect("address");
        let mut request = http::Request::new(());
        request.extensions_mut().insert(Client {
            address,
            limit_key: limit_key(address, 64),
        });
        request
    }

    #[test]
    fn an_ipv6_network_is_one_client() {
        let key = |address| ClientKeyExtractor.extract(&from(address)).expect("key");
        assert_eq!(key("2001:db8:0:1::a"), key("2001:db8:0:1:ffff::b"));
        assert_ne!(key("2001:db8:0:1::a"), key("2001:db8:0:2::a"));
        assert_ne!(key("198.51.100.1"), key("198.51.100.2"));
    }

    #[tokio::test]
    async fn a_table_holds_bounded_slots_and_only_clients_seen_lately() {
        let config = GovernorConfigBuilder::default()
            .key_extractor(ClientKeyExtractor)
            .period(per_second(1000))
            .burst_size(1)
            .finish()
            .expect("limits");
        let limiter = config.limiter();
        for n in 0..20_000u32 {
            let key = ClientKeyExtractor
                .extract(&from(&Ipv4Addr::from_bits(0xc633_0000 + n).to_string()))
                .expect("key");
            assert!(u64::from(key) < SLOTS);
            let _ = limiter.check_key(&key);
        }
        assert!(
            limiter.len() > 19_000,
            "few clients share a slot: {}",
            limiter.len()
        );
        prune(limiter);
        tokio::time::sleep(PRUNE_EVERY + Duration::from_secs(1)).await;
        assert_eq!(limiter.len(), 0, "every bucket is full again: pruned");
    }
}
