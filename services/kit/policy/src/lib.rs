//! Each method's call policy, as the contract declares it with the kit's
//! options (`proto/kit/policy/v1/policy.proto`): who may call, the deadline
//! a call gets and may have at most, how a failed call is tried again or
//! hedged, and the rate limiter it counts against.
//!
//! Read from the descriptors, never from a list kept in Rust: the server
//! enforces what it reads here, the clients apply it, the build refuses a
//! contract whose policy is missing or unsafe ([`Policy::required`]), and
//! [`table`] writes the table people read.

mod deployment;
pub use deployment::{DEPLOYMENT_EXTENSION, Deployment, DeploymentError, declared_deployments};
mod read;
pub use read::{Idempotency, idempotency_level};
mod render;
mod service_config;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};

pub use render::{
    caller as caller_in_words, duration as duration_in_words, hedging as hedging_in_words,
    retries as retries_in_words, table, table_of_set,
};
pub use service_config::{
    MethodConfig, RetryThrottling, ServiceConfig, ServiceConfigError, service_config_of,
};

/// Who may call a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerRule {
    /// Anyone, with or without an access token.
    Anyone,
    /// A signed-in customer (a user's access token); services are refused.
    Customer,
    /// A customer or one of the services.
    SignedIn,
    /// Only the services named.
    Services(Vec<String>),
    /// One of the shop's services proving itself with its certificate, or
    /// else the shared secret in its request (the field
    /// `shop_secret_field` names), both checked by the kit.
    ShopSecret,
}

impl CallerRule {
    /// Whether only the shop's own services may call: no browser may, and
    /// the method has no REST route.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Services(_) | Self::ShopSecret)
    }
}

/// gRPC's retryPolicy, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub backoff_multiplier: f64,
    /// gRPC's names ("UNAVAILABLE").
    pub retryable_status_codes: Vec<String>,
}

/// gRPC's hedgingPolicy, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct HedgingPolicy {
    pub max_attempts: u32,
    pub hedging_delay: Duration,
    pub non_fatal_status_codes: Vec<String>,
}

/// A method's policy: its own options over its service's, field by field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// `None` only for a method whose contract declares none (the build
    /// refuses that for the methods it generates).
    pub caller: Option<CallerRule>,
    pub deadline: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub hedging: Option<HedgingPolicy>,
    pub rate_class: Option<String>,
    pub idempotency_key_field: Option<String>,
    /// The request's field with the shop's shared secret (a `ShopSecret`
    /// caller's, which the kit checks).
    pub shop_secret_field: Option<String>,
    /// The codes it answers for its own reasons (gRPC's names), for the
    /// documents made from the contract; `None`: its service's.
    pub errors: Option<Vec<String>>,
}

/// What is wrong with a method's policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "{method}: no caller policy: say who may call it with (kit.policy.v1.method) or (kit.policy.v1.service) `caller`"
    )]
    NoCaller { method: String },
    #[error("{method}: `caller` names no rule")]
    EmptyCaller { method: String },
    #[error("{method}: `caller.services` names no service")]
    NoServices { method: String },
    #[error(
        "{method}: retries are only for a method safe to repeat: mark it idempotency_level IDEMPOTENT or NO_SIDE_EFFECTS, or name its request's idempotency key (idempotency_key_field)"
    )]
    RetryNotSafe { method: String },
    #[error("{method}: hedging is only for reads (idempotency_level NO_SIDE_EFFECTS)")]
    HedgingNotRead { method: String },
    #[error("{method}: a method is retried or hedged, not both (as gRPC's service config says)")]
    RetryAndHedging { method: String },
    #[error("{method}: {what}.max_attempts is {attempts}: it must be 2 to 5")]
    Attempts {
        method: String,
        what: &'static str,
        attempts: u32,
    },
    #[error("{method}: {what} must be more than zero")]
    NotPositive { method: String, what: &'static str },
    #[error("{method}: {what} names no status code")]
    NoCodes { method: String, what: &'static str },
    #[error("{method}: {code:?} is no gRPC status code name (such as \"UNAVAILABLE\")")]
    UnknownCode { method: String, code: String },
    #[error("the descriptor set does not decode: {0}")]
    Descriptors(String),
    #[error("{method}: idempotency_key_field {field:?} is no string field of {request}")]
    NoKeyField {
        method: String,
        field: String,
        request: String,
    },
    #[error(
        "{method}: its caller proves itself with the shop's shared secret, which the kit checks: name the request's field that carries it with shop_secret_field"
    )]
    NoSecretField { method: String },
    #[error("{method}: shop_secret_field {field:?} is no string field of {request}")]
    SecretFieldNotString {
        method: String,
        field: String,
        request: String,
    },
    #[error("{method}: shop_secret_field is only for a method whose caller is `shop_secret`")]
    SecretFieldWithoutSecret { method: String },
}

/// gRPC's status code names, as its service config spells them.
pub const STATUS_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The descriptors of an encoded `FileDescriptorSet`, options and all.
pub fn descriptors(file_descriptor_set: &[u8]) -> Result<DescriptorPool, PolicyError> {
    DescriptorPool::decode(file_descriptor_set).map_err(|e| PolicyError::Descriptors(e.to_string()))
}

/// The options' full names.
pub const METHOD_EXTENSION: &str = "kit.policy.v1.method";
pub const SERVICE_EXTENSION: &str = "kit.policy.v1.service";

impl Policy {
    /// The policy of `method`, its service's defaults under its own,
    /// checked (a retry only where repeating is safe, and so on). A method
    /// that declares none has the default (no caller rule).
    pub fn of(method: &MethodDescriptor) -> Result<Self, PolicyError> {
        let name = method.full_name().to_owned();
        let pool = method.parent_pool();
        let service = read::declared(
            pool,
            &method.parent_service().options(),
            SERVICE_EXTENSION,
            &name,
        )?;
        let own = read::declared(pool, &method.options(), METHOD_EXTENSION, &name)?;
        let policy = service.under(own);
        policy.check(method)?;
        Ok(policy)
    }

    /// The policy of `method`, which must say who may call it.
    pub fn required(method: &MethodDescriptor) -> Result<Self, PolicyError> {
        let policy = Self::of(method)?;
        if policy.caller.is_none() {
            return Err(PolicyError::NoCaller {
                method: method.full_name().to_owned(),
            });
        }
        Ok(policy)
    }

    /// Every field `own` gives replaces this one's.
    fn under(self, own: Self) -> Self {
        Self {
            caller: own.caller.or(self.caller),
            deadline: own.deadline.or(self.deadline),
            retry: own.retry.or(self.retry),
            hedging: own.hedging.or(self.hedging),
            rate_class: own.rate_class.or(self.rate_class),
            idempotency_key_field: own.idempotency_key_field.or(self.idempotency_key_field),
            shop_secret_field: own.shop_secret_field.or(self.shop_secret_field),
            errors: own.errors.or(self.errors),
        }
    }

    /// Whether `service` is internal: it has methods, and each is for the
    /// shop's own services only (its caller rule, as `read` gives its
    /// policy). An internal service has no REST routes and no place in the
    /// public API.
    pub fn internal_service(
        service: &ServiceDescriptor,
        read: impl Fn(&MethodDescriptor) -> Result<Self, PolicyError>,
    ) -> Result<bool, PolicyError> {
        let mut only_services = service.methods().len() > 0;
        for method in service.methods() {
            only_services &= read(&method)?
                .caller
                .as_ref()
                .is_some_and(CallerRule::is_internal);
        }
        Ok(only_services)
    }

    /// Whether a call of `method` may be sent again after it may have run:
    /// it is marked idempotent (or free of side effects), or its requests
    /// carry an idempotency key.
    pub fn may_retry(&self, method: &MethodDescriptor) -> bool {
        read::idempotency_level(method) != read::Idempotency::Unknown
            || self.idempotency_key_field.is_some()
    }

    /// Whether copies of a call of `method` may run side by side: it has
    /// no side effects.
    pub fn may_hedge(method: &MethodDescriptor) -> bool {
        read::idempotency_level(method) == read::Idempotency::NoSideEffects
    }

    fn check(&self, method: &MethodDescriptor) -> Result<(), PolicyError> {
        let name = || method.full_name().to_owned();
        let request = method.input();
        let is_string = |field: &str| {
            request
                .get_field_by_name(field)
                .is_some_and(|f| f.kind() == prost_reflect::Kind::String && !f.is_list())
        };
        if let Some(field) = &self.idempotency_key_field
            && !is_string(field)
        {
            return Err(PolicyError::NoKeyField {
                method: name(),
                field: field.clone(),
                request: request.full_name().to_owned(),
            });
        }
        match (&self.caller, &self.shop_secret_field) {
            (Some(CallerRule::ShopSecret), None) => {
                return Err(PolicyError::NoSecretField { method: name() });
            }
            (Some(CallerRule::ShopSecret), Some(field)) if !is_string(field) => {
                return Err(PolicyError::SecretFieldNotString {
                    method: name(),
                    field: field.clone(),
                    request: request.full_name().to_owned(),
                });
            }
            (Some(CallerRule::ShopSecret), Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(PolicyError::SecretFieldWithoutSecret { method: name() }),
        }
        if self.retry.is_some() && self.hedging.is_some() {
            return Err(PolicyError::RetryAndHedging { method: name() });
        }
        if self.retry.is_some() && !self.may_retry(method) {
            return Err(PolicyError::RetryNotSafe { method: name() });
        }
        if self.hedging.is_some() && !Self::may_hedge(method) {
            return Err(PolicyError::HedgingNotRead { method: name() });
        }
        Ok(())
    }
}

/// The policy of every method of every service in `pool` whose package
/// `include` takes, in the pool's order: for the build's check and the
/// table.
fn every_method(
    pool: &DescriptorPool,
    include: impl Fn(&str) -> bool,
) -> Vec<(MethodDescriptor, Result<Policy, PolicyError>)> {
    pool.services()
        .filter(|service| include(service.package_name()))
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .map(|method| {
            let policy = Policy::required(&method);
            (method, policy)
        })
        .collect()
}

#[cfg(test)]
mod tests;
