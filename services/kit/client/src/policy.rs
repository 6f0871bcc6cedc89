//! How a peer is called: the settings of its stack. How each method's
//! calls are made (timeout, retries, hedging) is the contract's, in
//! [`Calls`].

use std::time::Duration;

use super::Calls;

/// How one peer is called.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    /// A call's time budget, all attempts together, when neither the
    /// caller (`tonic::Request::set_timeout`) nor its method's policy gives
    /// one.
    pub timeout: Duration,
    /// Each method's timeout, retries and hedging: the contract's policy,
    /// or a service config's.
    pub calls: Calls,
    /// Retries and hedges allowed beyond a floor, as a share of the calls
    /// made (`tower::retry::budget`): a peer in trouble gets at most this
    /// many more calls, not `max_attempts` times as many (unless the
    /// service config gives gRPC's retryThrottling instead).
    pub retry_ratio: f32,
    /// Retries per second always allowed, whatever the ratio.
    pub min_retries_per_sec: u32,
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
    /// Whether each endpoint's `grpc.health.v1.Health` is watched (a peer
    /// without one, answering `unimplemented`, is judged by its calls).
    /// Off: every endpoint serves as far as this client knows, and only
    /// its breaker takes it out; for a peer whose health service refuses
    /// this client (the conformance suite's reference server asks every
    /// request for its test case's name).
    pub health_checks: bool,
}

impl Default for PeerPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            calls: Calls::default(),
            retry_ratio: 0.2,
            min_retries_per_sec: 10,
            breaker_threshold: 5,
            // A blip is over within a second or so: probe that soon.
            breaker_cooldown: Duration::from_secs(1),
            max_in_flight: 64,
            connect_timeout: Duration::from_secs(1),
            resolve_patience: Duration::from_secs(30),
            max_request_bytes: 4 * 1024 * 1024,
            health_checks: true,
        }
    }
}
