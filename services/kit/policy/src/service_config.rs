//! A deployment's override of the contract's client-side policy: a gRPC
//! service config (gRFC A6), as JSON, read and checked whole. Its
//! `methodConfig` entries name a method, a service or every method (`{}`);
//! for each method the most specific entry that names it replaces the
//! contract's `deadline`, `retry` and `hedging` as the clients apply them,
//! exactly as a gRPC channel uses the one `methodConfig` that matches a
//! call. Only the client stack reads it: the server keeps the contract's
//! deadline. `retryThrottling` replaces the clients' retry budget per peer.
//!
//! Checked against the contract: an entry naming a method or service the
//! contract does not have, or giving a retry to a method not safe to
//! repeat, is an error, never ignored.

use std::{collections::BTreeMap, time::Duration};

use prost_reflect::{DescriptorPool, MethodDescriptor};
use serde::Deserialize;

use super::{HedgingPolicy, Policy, PolicyError, RetryPolicy, STATUS_CODES};

/// gRPC's retryThrottling: a token bucket per peer. Each failed call takes
/// a token, each successful one gives `token_ratio` back; a call is retried
/// or hedged only while more than half of `max_tokens` are left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryThrottling {
    pub max_tokens: u32,
    pub token_ratio: f64,
}

/// What one `methodConfig` entry says about the calls it names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodConfig {
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub hedging: Option<HedgingPolicy>,
}

/// A gRPC service config, parsed and checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    /// By (service, method): `("", "")` every method, `(s, "")` every
    /// method of `s`.
    entries: BTreeMap<(String, String), MethodConfig>,
    pub retry_throttling: Option<RetryThrottling>,
}

/// Why a service config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceConfigError {
    #[error("not a gRPC service config: {0}")]
    Json(String),
    #[error("methodConfig[{index}]: {what}")]
    Entry { index: usize, what: String },
    #[error("methodConfig[{index}] names {name}, which methodConfig[{first}] names already")]
    Duplicate {
        index: usize,
        first: usize,
        name: String,
    },
    #[error("methodConfig[{index}] names {name}, which the contract does not have")]
    Unknown { index: usize, name: String },
    #[error("retryThrottling: {0}")]
    Throttling(String),
    #[error("as configured, {0}")]
    Unsafe(PolicyError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    #[serde(default)]
    method_config: Vec<Entry>,
    retry_throttling: Option<Throttling>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    name: Vec<Name>,
    timeout: Option<String>,
    retry_policy: Option<Retry>,
    hedging_policy: Option<Hedging>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Name {
    #[serde(default)]
    service: String,
    #[serde(default)]
    method: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Retry {
    max_attempts: Option<u32>,
    initial_backoff: Option<String>,
    max_backoff: Option<String>,
    backoff_multiplier: Option<f64>,
    #[serde(default)]
    retryable_status_codes: Vec<Code>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Hedging {
    max_attempts: Option<u32>,
    hedging_delay: Option<String>,
    #[serde(default)]
    non_fatal_status_codes: Vec<Code>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Throttling {
    max_tokens: Option<u32>,
    token_ratio: Option<f64>,
}

/// A status code as the service config may give it: a name or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Code {
    Name(String),
    Number(u32),
}

/// gRPC caps a policy's attempts at 5, silently.
const MOST_ATTEMPTS: u32 = 5;

impl ServiceConfig {
    /// `json`, checked against `contract` (the services it names must be
    /// there, and a retry only where repeating is safe).
    pub fn parse(json: &str, contract: &DescriptorPool) -> Result<Self, ServiceConfigError> {
        let document: Document =
            serde_json::from_str(json).map_err(|e| ServiceConfigError::Json(e.to_string()))?;
        let mut entries = BTreeMap::new();
        let mut first_of = BTreeMap::new();
        for (index, entry) in document.method_config.into_iter().enumerate() {
            let failed = |what: String| ServiceConfigError::Entry { index, what };
            if entry.name.is_empty() {
                return Err(failed(
                    "`name` is empty: name a method, a service, or {} for every method".into(),
                ));
            }
            let config = entry.config().map_err(failed)?;
            for name in entry.name {
                if name.service.is_empty() && !name.method.is_empty() {
                    return Err(failed(format!(
                        "name {{\"method\": {:?}}} has no service",
                        name.method
                    )));
                }
                let shown = shown(&name.service, &name.method);
                exists(contract, &name.service, &name.method).map_err(|()| {
                    ServiceConfigError::Unknown {
                        index,
                        name: shown.clone(),
                    }
                })?;
                let key = (name.service, name.method);
                if let Some(first) = first_of.insert(key.clone(), index) {
                    return Err(ServiceConfigError::Duplicate {
                        index,
                        first,
                        name: shown,
                    });
                }
                entries.insert(key, config.clone());
            }
        }
        let retry_throttling = document
            .retry_throttling
            .map(Throttling::checked)
            .transpose()
            .map_err(ServiceConfigError::Throttling)?;
        let config = Self {
            entries,
            retry_throttling,
        };
        // Every method it touches, checked as the build checks the contract.
        for method in contract
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
        {
            if config.for_method(&method).is_some() {
                config
                    .policy_of(&method)
                    .map_err(ServiceConfigError::Unsafe)?;
            }
        }
        Ok(config)
    }

    /// The entry that applies to `method`: its own, else its service's,
    /// else the one for every method.
    pub fn for_method(&self, method: &MethodDescriptor) -> Option<&MethodConfig> {
        let service = method.parent_service().full_name().to_owned();
        self.entries
            .get(&(service.clone(), method.name().to_owned()))
            .or_else(|| self.entries.get(&(service, String::new())))
            .or_else(|| self.entries.get(&(String::new(), String::new())))
    }

    /// `method`'s policy as its clients apply it: the contract's, its
    /// deadline, retry and hedging replaced by the entry that names it (if
    /// any), checked.
    pub fn policy_of(&self, method: &MethodDescriptor) -> Result<Policy, PolicyError> {
        let contract = Policy::of(method)?;
        let Some(config) = self.for_method(method) else {
            return Ok(contract);
        };
        let policy = Policy {
            deadline: config.timeout,
            retry: config.retry.clone(),
            hedging: config.hedging.clone(),
            ..contract
        };
        policy.check(method)?;
        Ok(policy)
    }
}

fn shown(service: &str, method: &str) -> String {
    match (service, method) {
        ("", _) => "every method ({})".to_owned(),
        (service, "") => format!("every method of {service}"),
        (service, method) => format!("{service}.{method}"),
    }
}

fn exists(contract: &DescriptorPool, service: &str, method: &str) -> Result<(), ()> {
    if service.is_empty() {
        return Ok(());
    }
    let found = contract.get_service_by_name(service).ok_or(())?;
    if method.is_empty() || found.methods().any(|m| m.name() == method) {
        Ok(())
    } else {
        Err(())
    }
}

impl Entry {
    fn config(&self) -> Result<MethodConfig, String> {
        if self.retry_policy.is_some() && self.hedging_policy.is_some() {
            return Err(
                "retryPolicy and hedgingPolicy both given: a method is retried or hedged, not both"
                    .into(),
            );
        }
        Ok(MethodConfig {
            timeout: self
                .timeout
                .as_deref()
                .map(|t| positive(t, "timeout"))
                .transpose()?,
            retry: self.retry_policy.as_ref().map(Retry::checked).transpose()?,
            hedging: self
                .hedging_policy
                .as_ref()
                .map(Hedging::checked)
                .transpose()?,
        })
    }
}

impl Retry {
    fn checked(&self) -> Result<RetryPolicy, String> {
        let multiplier = self
            .backoff_multiplier
            .ok_or("retryPolicy.backoffMultiplier is required")?;
        if !(multiplier.is_finite() && multiplier > 0.0) {
            return Err("retryPolicy.backoffMultiplier must be more than 0".into());
        }
        if self.retryable_status_codes.is_empty() {
            return Err("retryPolicy.retryableStatusCodes names no status code".into());
        }
        Ok(RetryPolicy {
            max_attempts: attempts(self.max_attempts, "retryPolicy")?,
            initial_backoff: positive(
                self.initial_backoff
                    .as_deref()
                    .ok_or("retryPolicy.initialBackoff is required")?,
                "retryPolicy.initialBackoff",
            )?,
            max_backoff: positive(
                self.max_backoff
                    .as_deref()
                    .ok_or("retryPolicy.maxBackoff is required")?,
                "retryPolicy.maxBackoff",
            )?,
            backoff_multiplier: multiplier,
            retryable_status_codes: names(&self.retryable_status_codes)?,
        })
    }
}

impl Hedging {
    fn checked(&self) -> Result<HedgingPolicy, String> {
        Ok(HedgingPolicy {
            max_attempts: attempts(self.max_attempts, "hedgingPolicy")?,
            hedging_delay: self
                .hedging_delay
                .as_deref()
                .map(|d| duration(d).map_err(|e| format!("hedgingPolicy.hedgingDelay: {e}")))
                .transpose()?
                .unwrap_or_default(),
            non_fatal_status_codes: names(&self.non_fatal_status_codes)?,
        })
    }
}

impl Throttling {
    fn checked(self) -> Result<RetryThrottling, String> {
        let max_tokens = self.max_tokens.ok_or("maxTokens is required")?;
        if !(1..=1000).contains(&max_tokens) {
            return Err(format!("maxTokens is {max_tokens}: it must be 1 to 1000"));
        }
        let token_ratio = self.token_ratio.ok_or("tokenRatio is required")?;
        if !(token_ratio.is_finite() && token_ratio > 0.0) {
            return Err("tokenRatio must be more than 0".into());
        }
        Ok(RetryThrottling {
            max_tokens,
            token_ratio,
        })
    }
}

fn attempts(given: Option<u32>, what: &str) -> Result<u32, String> {
    match given {
        None => Err(format!("{what}.maxAttempts is required")),
        Some(attempts @ 0..=1) => Err(format!(
            "{what}.maxAttempts is {attempts}: it must be more than 1"
        )),
        Some(attempts) => Ok(attempts.min(MOST_ATTEMPTS)),
    }
}

fn names(codes: &[Code]) -> Result<Vec<String>, String> {
    codes
        .iter()
        .map(|code| match code {
            Code::Name(name) => STATUS_CODES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(name))
                .map(|known| (*known).to_owned())
                .ok_or_else(|| {
                    format!("{name:?} is no gRPC status code name (such as \"UNAVAILABLE\")")
                }),
            Code::Number(number) => STATUS_CODES
                .get(*number as usize)
                .map(|known| (*known).to_owned())
                .ok_or_else(|| format!("{number} is no gRPC status code")),
        })
        .collect()
}

fn positive(text: &str, what: &str) -> Result<Duration, String> {
    match duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!("{what} must be more than 0s")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// A duration as protobuf's JSON writes it: seconds with up to nine
/// decimals and an `s` ("1.5s", "0.050s").
pub fn duration(text: &str) -> Result<Duration, String> {
    let wrong = || format!("{text:?} is no duration such as \"1.5s\"");
    let seconds = text.strip_suffix('s').ok_or_else(wrong)?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(wrong());
    }
    let whole: u64 = whole.parse().map_err(|_| wrong())?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| wrong())?
    };
    Ok(Duration::new(whole, nanos))
}

/// The contract's client-side policy of every method of the services whose
/// package `include` takes, as a gRPC service config (JSON): what a gRPC
/// client in any language is given to call the services as the kit's
/// clients do (`grpc.WithDefaultServiceConfig` in Go, the
/// `grpc.service_config` channel option in Python). Methods that declare
/// no deadline, retry or hedging are left out.
pub fn service_config_of(
    pool: &DescriptorPool,
    include: impl Fn(&str) -> bool,
) -> Result<String, PolicyError> {
    let mut entries = Vec::new();
    for (method, policy) in super::every_method(pool, include) {
        let policy = policy?;
        if policy.deadline.is_none() && policy.retry.is_none() && policy.hedging.is_none() {
            continue;
        }
        let mut entry = serde_json::Map::new();
        entry.insert(
            "name".into(),
            serde_json::json!([{
                "service": method.parent_service().full_name(),
                "method": method.name(),
            }]),
        );
        if let Some(deadline) = policy.deadline {
            entry.insert("timeout".into(), json_duration(deadline).into());
        }
        if let Some(retry) = &policy.retry {
            entry.insert(
                "retryPolicy".into(),
                serde_json::json!({
                    "maxAttempts": retry.max_attempts,
                    "initialBackoff": json_duration(retry.initial_backoff),
                    "maxBackoff": json_duration(retry.max_backoff),
                    "backoffMultiplier": retry.backoff_multiplier,
                    "retryableStatusCodes": retry.retryable_status_codes,
                }),
            );
        }
        if let Some(hedging) = &policy.hedging {
            entry.insert(
                "hedgingPolicy".into(),
                serde_json::json!({
                    "maxAttempts": hedging.max_attempts,
                    "hedgingDelay": json_duration(hedging.hedging_delay),
                    "nonFatalStatusCodes": hedging.non_fatal_status_codes,
                }),
            );
        }
        entries.push(serde_json::Value::Object(entry));
    }
    let config = serde_json::json!({ "methodConfig": entries });
    serde_json::to_string_pretty(&config).map_err(|e| PolicyError::Descriptors(e.to_string()))
}

/// A duration as protobuf's JSON writes it ("5s", "0.050s").
fn json_duration(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", duration.as_secs());
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", duration.as_secs(), fraction.trim_end_matches('0'))
}
