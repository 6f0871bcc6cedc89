//! How a peer is called: the settings of its stack, and whether a call may
//! be sent again.

use std::time::Duration;

/// How one peer is called.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    /// A call's time budget, all attempts together, when the caller set
    /// no deadline (`tonic::Request::set_timeout`).
    pub timeout: Duration,
    /// Attempts of a call safe to repeat, the first included.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Retries allowed beyond a floor, as a share of the calls made
    /// (`tower::retry::budget`): a peer in trouble gets at most this many
    /// more calls from retries, not `max_attempts` times as many.
    pub retry_ratio: f32,
    /// Retries per second always allowed, whatever the ratio.
    pub min_retries_per_sec: u32,
    /// Whether this peer's calls are safe to repeat unless a call says
    /// otherwise (see [`Retry`]).
    pub retry: Retry,
    /// Consecutive infrastructure failures that open an endpoint's breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker fails fast before letting a probe through.
    pub breaker_cooldown: Duration,
    /// Calls in flight at most, all endpoints together; more are shed.
    pub max_in_flight: usize,
    /// How long making a connection to an endpoint may take.
    pub connect_timeout: Duration,
    /// How long starting up waits for the peer's names to resolve.
    pub resolve_patience: Duration,
    /// The largest request body the stack holds (to send it again).
    pub max_request_bytes: usize,
}

impl Default for PeerPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            max_attempts: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            retry_ratio: 0.2,
            min_retries_per_sec: 10,
            retry: Retry::Safe,
            breaker_threshold: 5,
            // A blip is over within a second or so: probe that soon.
            breaker_cooldown: Duration::from_secs(1),
            max_in_flight: 64,
            connect_timeout: Duration::from_secs(1),
            resolve_patience: Duration::from_secs(30),
            max_request_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Whether a call may be sent again after a failure: the peer's policy
/// says for its calls, a call may say for itself (a request extension,
/// `request.extensions_mut().insert(Retry::Never)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// An idempotent method, or a call carrying an idempotency key: sent
    /// again after `unavailable` or `resource_exhausted`.
    Safe,
    /// Anything else: sent again only if it never left (no connection
    /// could be made).
    Never,
}
