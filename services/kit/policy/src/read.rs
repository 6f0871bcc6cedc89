//! The options as the descriptors carry them, read into a [`Policy`]: every
//! value checked as it is read (an attempt count out of gRPC's range, a
//! status code gRPC does not name, a zero duration are errors, never
//! defaults).

use std::time::Duration;

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

use super::{CallerRule, HedgingPolicy, Policy, PolicyError, RetryPolicy, STATUS_CODES};

/// A method's `idempotency_level` (descriptor.proto's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    Unknown,
    NoSideEffects,
    Idempotent,
}

/// The `idempotency_level` `method` is marked with.
pub fn idempotency_level(method: &MethodDescriptor) -> Idempotency {
    match method
        .options()
        .get_field_by_name("idempotency_level")
        .as_deref()
    {
        Some(Value::EnumNumber(1)) => Idempotency::NoSideEffects,
        Some(Value::EnumNumber(2)) => Idempotency::Idempotent,
        _ => Idempotency::Unknown,
    }
}

/// The policy `options` (a method's or a service's) declare with the
/// extension named `extension`; the default if none.
pub fn declared(
    pool: &DescriptorPool,
    options: &DynamicMessage,
    extension: &str,
    method: &str,
) -> Result<Policy, PolicyError> {
    let Some(extension) = pool.get_extension_by_name(extension) else {
        // The contract never imported the options: nothing declared.
        return Ok(Policy::default());
    };
    if !options.has_extension(&extension) {
        return Ok(Policy::default());
    }
    let value = options.get_extension(&extension);
    let Value::Message(policy) = value.as_ref() else {
        return Ok(Policy::default());
    };
    let reader = Reader {
        message: policy,
        method,
    };
    Ok(Policy {
        caller: reader
            .message("caller")
            .map(|caller| reader.within(caller).caller())
            .transpose()?,
        deadline: reader.duration("deadline", "deadline")?,
        retry: reader
            .message("retry")
            .map(|retry| reader.within(retry).retry())
            .transpose()?,
        hedging: reader
            .message("hedging")
            .map(|hedging| reader.within(hedging).hedging())
            .transpose()?,
        rate_class: reader.string("rate_class"),
        idempotency_key_field: reader.string("idempotency_key_field"),
        shop_secret_field: reader.string("shop_secret_field"),
        errors: reader.errors()?,
    })
}

/// Reads the fields of one message of the options.
struct Reader<'a> {
    message: &'a DynamicMessage,
    method: &'a str,
}

impl<'a> Reader<'a> {
    fn within<'b>(&self, message: &'b DynamicMessage) -> Reader<'b>
    where
        'a: 'b,
    {
        Reader {
            message,
            method: self.method,
        }
    }

    fn method(&self) -> String {
        self.method.to_owned()
    }

    fn has(&self, field: &str) -> bool {
        self.message.has_field_by_name(field)
    }

    fn message(&self, field: &str) -> Option<&'a DynamicMessage> {
        if !self.has(field) {
            return None;
        }
        match self.message.get_field_by_name(field)? {
            std::borrow::Cow::Borrowed(Value::Message(message)) => Some(message),
            _ => None,
        }
    }

    fn string(&self, field: &str) -> Option<String> {
        let value = self.message.get_field_by_name(field)?;
        value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    }

    fn strings(&self, field: &str) -> Vec<String> {
        self.message
            .get_field_by_name(field)
            .and_then(|value| {
                value.as_list().map(|list| {
                    list.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    fn u32(&self, field: &str) -> u32 {
        self.message
            .get_field_by_name(field)
            .and_then(|value| value.as_u32())
            .unwrap_or(0)
    }

    /// A duration field, which if present must be more than zero.
    fn duration(&self, field: &str, what: &'static str) -> Result<Option<Duration>, PolicyError> {
        let Some(duration) = self.message(field) else {
            return Ok(None);
        };
        let part = |name: &str| duration.get_field_by_name(name).map(|v| v.into_owned());
        let seconds = part("seconds").and_then(|v| v.as_i64()).unwrap_or(0);
        let nanos = part("nanos").and_then(|v| v.as_i32()).unwrap_or(0);
        match (u64::try_from(seconds), u32::try_from(nanos)) {
            (Ok(seconds), Ok(nanos)) if seconds > 0 || nanos > 0 => {
                Ok(Some(Duration::new(seconds, nanos)))
            }
            _ => Err(PolicyError::NotPositive {
                method: self.method(),
                what,
            }),
        }
    }

    fn required_duration(&self, field: &str, what: &'static str) -> Result<Duration, PolicyError> {
        self.duration(field, what)?.ok_or(PolicyError::NotPositive {
            method: self.method(),
            what,
        })
    }

    fn caller(&self) -> Result<CallerRule, PolicyError> {
        let flag = |field: &str| {
            self.message
                .get_field_by_name(field)
                .and_then(|value| value.as_bool())
                .unwrap_or(false)
        };
        if flag("anyone") {
            return Ok(CallerRule::Anyone);
        }
        if flag("customer") {
            return Ok(CallerRule::Customer);
        }
        if flag("signed_in") {
            return Ok(CallerRule::SignedIn);
        }
        if flag("shop_secret") {
            return Ok(CallerRule::ShopSecret);
        }
        if let Some(services) = self.message("services") {
            let names = self.within(services).strings("names");
            if names.is_empty() {
                return Err(PolicyError::NoServices {
                    method: self.method(),
                });
            }
            return Ok(CallerRule::Services(names));
        }
        Err(PolicyError::EmptyCaller {
            method: self.method(),
        })
    }

    fn attempts(&self, what: &'static str) -> Result<u32, PolicyError> {
        match self.u32("max_attempts") {
            attempts @ 2..=5 => Ok(attempts),
            attempts => Err(PolicyError::Attempts {
                method: self.method(),
                what,
                attempts,
            }),
        }
    }

    fn codes(&self, field: &str, what: &'static str) -> Result<Vec<String>, PolicyError> {
        let codes = self.strings(field);
        if codes.is_empty() {
            return Err(PolicyError::NoCodes {
                method: self.method(),
                what,
            });
        }
        self.known(codes)
    }

    /// `errors`, if given: each a code gRPC names.
    fn errors(&self) -> Result<Option<Vec<String>>, PolicyError> {
        let codes = self.strings("errors");
        if codes.is_empty() {
            return Ok(None);
        }
        self.known(codes).map(Some)
    }

    fn known(&self, codes: Vec<String>) -> Result<Vec<String>, PolicyError> {
        if let Some(unknown) = codes
            .iter()
            .find(|code| !STATUS_CODES.contains(&code.as_str()))
        {
            return Err(PolicyError::UnknownCode {
                method: self.method(),
                code: unknown.clone(),
            });
        }
        Ok(codes)
    }

    fn retry(&self) -> Result<RetryPolicy, PolicyError> {
        let backoff_multiplier = self
            .message
            .get_field_by_name("backoff_multiplier")
            .and_then(|value| value.as_f64())
            .unwrap_or(0.0);
        if backoff_multiplier.is_nan() || backoff_multiplier <= 0.0 {
            return Err(PolicyError::NotPositive {
                method: self.method(),
                what: "retry.backoff_multiplier",
            });
        }
        Ok(RetryPolicy {
            max_attempts: self.attempts("retry")?,
            initial_backoff: self.required_duration("initial_backoff", "retry.initial_backoff")?,
            max_backoff: self.required_duration("max_backoff", "retry.max_backoff")?,
            backoff_multiplier,
            retryable_status_codes: self
                .codes("retryable_status_codes", "retry.retryable_status_codes")?,
        })
    }

    fn hedging(&self) -> Result<HedgingPolicy, PolicyError> {
        Ok(HedgingPolicy {
            max_attempts: self.attempts("hedging")?,
            // gRPC allows no delay (all copies at once); so does this.
            hedging_delay: self
                .duration("hedging_delay", "hedging.hedging_delay")?
                .unwrap_or_default(),
            non_fatal_status_codes: self.known(self.strings("non_fatal_status_codes"))?,
        })
    }
}
