//! How each method's calls are made: its timeout, and whether a failed
//! call is tried again or hedged, read from the contract's policy
//! (`shop_kit_policy`), or from a deployment's gRPC service config where
//! one names the method. No call site says any of it: the stack looks a
//! call's method up by its path once, as it comes in.
//!
//! [`Calls`] is what peers share: the policies of now, replaced whole when
//! the service config file changes (and checked first: a config that does
//! not hold is logged and the one before kept).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock, Weak},
    time::{Duration, SystemTime},
};

use prost_reflect::{DescriptorPool, MethodDescriptor};
use shop_kit_policy::{
    HedgingPolicy, Policy, PolicyError, RetryPolicy, RetryThrottling, STATUS_CODES, ServiceConfig,
    ServiceConfigError,
};
use tonic::Code;

use super::Backoff;

/// How often the service config file is looked at for a change.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// A set of status codes, as a bit per code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codes(u32);

impl Codes {
    pub fn of(names: &[String]) -> Self {
        Self(
            names
                .iter()
                .filter_map(|name| STATUS_CODES.iter().position(|known| known == name))
                .fold(0, |bits, code| bits | 1 << code),
        )
    }

    pub fn contains(self, code: Code) -> bool {
        let code = code as i32;
        (0..32).contains(&code) && self.0 & (1 << code) != 0
    }
}

/// gRPC's retryPolicy, as the stack applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Retrying {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub codes: Codes,
}

/// gRPC's hedgingPolicy, as the stack applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Hedging {
    /// Copies in all, the first included.
    pub max_attempts: u32,
    /// How long each copy waits for an answer before the next is sent.
    pub delay: Duration,
    /// Codes that send the next copy at once rather than end the call.
    pub non_fatal: Codes,
}

/// How the calls of one method are made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodCalls {
    /// The most a call may take, the caller's own deadline being shorter
    /// if it is (gRPC's rule); none: the peer's default.
    pub timeout: Option<Duration>,
    pub retry: Option<Retrying>,
    pub hedging: Option<Hedging>,
    /// The retry budget in force (the service config's); none: the
    /// peer's share of its calls.
    pub throttling: Option<RetryThrottling>,
    /// The method answers with one message, not a stream.
    pub one_answer: bool,
    /// What the contract says of sending a call again, which no policy
    /// given here overrides (see [`CallPolicies::forcing`]).
    pub(crate) repeating: Repeating,
}

/// Whether a call of a method may be sent again once it may have run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Repeating {
    /// Not safe (or not known to be: a path of no contract's method).
    #[default]
    Never,
    /// Retried: idempotent, or keyed by an idempotency key.
    Retried,
    /// Retried or hedged: free of side effects.
    Hedged,
}

impl MethodCalls {
    /// How `request`'s method is called (put on it as it came in).
    pub(super) fn of_request<B>(request: &http::Request<B>) -> &Self {
        static NOTHING: MethodCalls = MethodCalls {
            timeout: None,
            retry: None,
            hedging: None,
            throttling: None,
            one_answer: false,
            repeating: Repeating::Never,
        };
        request
            .extensions()
            .get::<Arc<Self>>()
            .map_or(&NOTHING, |calls| calls.as_ref())
    }

    /// The retry policy, where the contract lets a call be sent again.
    pub(super) fn retry(&self) -> Option<&Retrying> {
        self.retry
            .as_ref()
            .filter(|_| self.repeating != Repeating::Never)
    }

    /// The hedging policy, where the contract lets copies run side by side.
    pub(super) fn hedging(&self) -> Option<&Hedging> {
        self.hedging
            .as_ref()
            .filter(|_| self.repeating == Repeating::Hedged)
    }

    /// Whether `code` sends a hedged call's next copy.
    pub(super) fn hedged_past(&self, code: Code) -> bool {
        self.hedging()
            .is_some_and(|hedging| hedging.non_fatal.contains(code))
    }

    /// Whether a call's answer is read whole before the retry policy
    /// decides on it (see `read_whole`): one message, and a retry on
    /// `unavailable`, which a connection broken mid-answer is.
    pub(super) fn read_whole(&self) -> bool {
        self.one_answer
            && self
                .retry()
                .is_some_and(|retry| retry.codes.contains(Code::Unavailable))
    }

    fn of_method(
        method: &MethodDescriptor,
        policy: &Policy,
        throttling: Option<RetryThrottling>,
    ) -> Self {
        let repeating = if Policy::may_hedge(method) {
            Repeating::Hedged
        } else if policy.may_retry(method) {
            Repeating::Retried
        } else {
            Repeating::Never
        };
        Self {
            timeout: policy.deadline,
            retry: policy.retry.as_ref().map(Retrying::from),
            hedging: policy.hedging.as_ref().map(Hedging::from),
            throttling,
            one_answer: !method.is_server_streaming(),
            repeating,
        }
    }
}

impl From<&RetryPolicy> for Retrying {
    fn from(policy: &RetryPolicy) -> Self {
        Self {
            max_attempts: policy.max_attempts,
            backoff: Backoff {
                first: policy.initial_backoff,
                max: policy.max_backoff,
                multiplier: policy.backoff_multiplier,
            },
            codes: Codes::of(&policy.retryable_status_codes),
        }
    }
}

impl From<&HedgingPolicy> for Hedging {
    fn from(policy: &HedgingPolicy) -> Self {
        Self {
            max_attempts: policy.max_attempts,
            delay: policy.hedging_delay,
            non_fatal: Codes::of(&policy.non_fatal_status_codes),
        }
    }
}

/// Every method's calls, by gRPC path (`/package.Service/Method`); any
/// other path (a plain GET) is made as `other` says.
#[derive(Clone, Debug, Default)]
pub struct CallPolicies {
    methods: HashMap<String, Arc<MethodCalls>, foldhash::fast::RandomState>,
    other: Arc<MethodCalls>,
}

impl CallPolicies {
    /// The calls of every method of `contract`, as its policy says, each
    /// replaced by `config`'s entry for it where there is one.
    pub fn of_contract(
        contract: &DescriptorPool,
        config: Option<&ServiceConfig>,
    ) -> Result<Self, PolicyError> {
        let throttling = config.and_then(|config| config.retry_throttling);
        let mut policies = Self {
            other: Arc::new(MethodCalls {
                throttling,
                ..MethodCalls::default()
            }),
            ..Self::default()
        };
        for service in contract.services() {
            for method in service.methods() {
                let policy = match config {
                    Some(config) => config.policy_of(&method)?,
                    None => Policy::of(&method)?,
                };
                let path = format!("/{}/{}", service.full_name(), method.name());
                let calls = MethodCalls::of_method(&method, &policy, throttling);
                policies.methods.insert(path, Arc::new(calls));
            }
        }
        Ok(policies)
    }

    /// These, with the calls to `path` made as `calls` says.
    #[must_use]
    pub fn with(mut self, path: &str, calls: MethodCalls) -> Self {
        self.methods.insert(path.to_owned(), Arc::new(calls));
        self
    }

    /// These, each method's calls changed by `force` (its timeout, retry
    /// or hedging policy), unchecked: to show what the stack does with any
    /// policy (the conformance suite's runs with retries or hedging on
    /// for every method). What the contract says of repeating a method
    /// still holds: a call it does not let be sent again is not.
    #[must_use]
    pub fn forcing(mut self, force: impl Fn(&mut MethodCalls)) -> Self {
        for calls in self.methods.values_mut() {
            force(Arc::make_mut(calls));
        }
        self
    }

    /// These, with the calls to any path not named made as `calls` says.
    #[must_use]
    pub fn otherwise(mut self, calls: MethodCalls) -> Self {
        self.other = Arc::new(calls);
        self
    }

    pub(super) fn of(&self, path: &str) -> Arc<MethodCalls> {
        self.methods.get(path).unwrap_or(&self.other).clone()
    }
}

/// Why the calls' policies could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error("cannot read the service config {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("the service config {path} is refused: {error}")]
    Config {
        path: String,
        error: ServiceConfigError,
    },
    #[error("the contract's call policy: {0}")]
    Contract(#[from] PolicyError),
}

/// The policies every peer of a process applies, shared, and the service
/// config file they follow (if any).
#[derive(Clone, Debug)]
pub struct Calls {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    now: RwLock<Arc<CallPolicies>>,
    source: Option<Source>,
    following: std::sync::Once,
}

#[derive(Debug)]
struct Source {
    file: PathBuf,
    contract: DescriptorPool,
}

impl Default for Calls {
    fn default() -> Self {
        Self::fixed(CallPolicies::default())
    }
}

impl Calls {
    /// Always `policies`.
    pub fn fixed(policies: CallPolicies) -> Self {
        Self::made(policies, None)
    }

    /// The policies of the contract whose encoded `FileDescriptorSet` is
    /// `set`, replaced where the gRPC service config at `file` (if any)
    /// says otherwise; the file is read again whenever it changes, while a
    /// peer uses these (see [`Calls::follow`]).
    pub fn of_contract(set: &[u8], file: Option<&Path>) -> Result<Self, CallsError> {
        let contract = &shop_kit_policy::descriptors(set)?;
        let Some(file) = file else {
            return Ok(Self::fixed(CallPolicies::of_contract(contract, None)?));
        };
        let policies = read(file, contract)?;
        Ok(Self::made(
            policies,
            Some(Source {
                file: file.to_owned(),
                contract: contract.clone(),
            }),
        ))
    }

    /// The policies of the contract whose encoded set is `set`, replaced
    /// where `service_config` (gRPC service config JSON) says otherwise.
    pub fn configured(set: &[u8], service_config: &str) -> Result<Self, CallsError> {
        let contract = shop_kit_policy::descriptors(set)?;
        let config = ServiceConfig::parse(service_config, &contract).map_err(|error| {
            CallsError::Config {
                path: "given".to_owned(),
                error,
            }
        })?;
        Ok(Self::fixed(CallPolicies::of_contract(
            &contract,
            Some(&config),
        )?))
    }

    fn made(policies: CallPolicies, source: Option<Source>) -> Self {
        Self {
            inner: Arc::new(Shared {
                now: RwLock::new(Arc::new(policies)),
                source,
                following: std::sync::Once::new(),
            }),
        }
    }

    /// The policies of now.
    pub fn current(&self) -> Arc<CallPolicies> {
        match self.inner.now.read() {
            Ok(now) => now.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts following the service config file (once, whoever asks; in
    /// a tokio runtime): a change is read, checked and put in force, or
    /// logged and the policies before kept. It stops when the last handle
    /// goes.
    pub fn follow(&self) {
        if self.inner.source.is_none() {
            return;
        }
        self.inner.following.call_once(|| {
            tokio::spawn(follow(Arc::downgrade(&self.inner)));
        });
    }
}

impl Shared {
    fn replace(&self, policies: CallPolicies) {
        match self.now.write() {
            Ok(mut now) => *now = Arc::new(policies),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policies),
        }
    }
}

fn read(file: &Path, contract: &DescriptorPool) -> Result<CallPolicies, CallsError> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|error| CallsError::Read {
        path: path.clone(),
        error,
    })?;
    let config = ServiceConfig::parse(&text, contract)
        .map_err(|error| CallsError::Config { path, error })?;
    Ok(CallPolicies::of_contract(contract, Some(&config))?)
}

fn modified(file: &Path) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

async fn follow(shared: Weak<Shared>) {
    let Some(file) = shared
        .upgrade()
        .and_then(|shared| shared.source.as_ref().map(|s| s.file.clone()))
    else {
        return;
    };
    let seen = |file: PathBuf| async move {
        tokio::task::spawn_blocking(move || modified(&file))
            .await
            .ok()
            .flatten()
    };
    let mut last = seen(file.clone()).await;
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let now = seen(file.clone()).await;
        if now == last {
            continue;
        }
        last = now;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(source) = shared.source.as_ref() else {
            return;
        };
        let file = source.file.clone();
        let contract = source.contract.clone();
        match tokio::task::spawn_blocking(move || read(&file, &contract)).await {
            Ok(Ok(policies)) => {
                shared.replace(policies);
                tracing::info!(file = %source.file.display(), "service config read again: in force");
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "service config not taken; the one before stays in force");
            }
            Err(error) => tracing::error!(%error, "service config not read"),
        }
    }
}
