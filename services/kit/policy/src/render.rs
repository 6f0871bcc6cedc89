//! The table of every method's policy, as docs/contract.md holds it and
//! `just policy` prints it.

use std::{fmt::Write as _, time::Duration};

use prost_reflect::DescriptorPool;

use super::{CallerRule, Policy, PolicyError, every_method};

/// A Markdown table of the policy of every method of the services whose
/// package `include` takes; the first error if a policy is wrong.
pub fn table(pool: &DescriptorPool, include: impl Fn(&str) -> bool) -> Result<String, PolicyError> {
    let mut table = String::from(
        "| method | caller | deadline | retries | hedging | rate class |\n|---|---|---|---|---|---|\n",
    );
    for (method, policy) in every_method(pool, include) {
        let policy = policy?;
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} | {} | {} |",
            method.full_name(),
            caller(&policy),
            policy.deadline.map_or("—".to_owned(), duration),
            retries(&policy),
            hedging(&policy),
            policy.rate_class.as_deref().unwrap_or("—"),
        );
    }
    Ok(table)
}

/// [`table`] of an encoded `FileDescriptorSet`.
pub fn table_of_set(
    file_descriptor_set: &[u8],
    include: impl Fn(&str) -> bool,
) -> Result<String, PolicyError> {
    table(&super::descriptors(file_descriptor_set)?, include)
}

/// Who may call, in words.
pub fn caller(policy: &Policy) -> String {
    match &policy.caller {
        None => "—".to_owned(),
        Some(CallerRule::Anyone) => "anyone".to_owned(),
        Some(CallerRule::Customer) => "a signed-in customer".to_owned(),
        Some(CallerRule::SignedIn) => "signed in (a customer or a service)".to_owned(),
        Some(CallerRule::Services(names)) => format!("the {} service", names.join(" or ")),
        Some(CallerRule::ShopSecret) => "a shop service, by the shared secret".to_owned(),
    }
}

pub fn retries(policy: &Policy) -> String {
    let Some(retry) = &policy.retry else {
        return "—".to_owned();
    };
    let key = policy
        .idempotency_key_field
        .as_deref()
        .map(|field| format!(", by `{field}`"))
        .unwrap_or_default();
    format!(
        "{} attempts on {}; backoff {} ×{} up to {}{key}",
        retry.max_attempts,
        retry.retryable_status_codes.join(", "),
        duration(retry.initial_backoff),
        retry.backoff_multiplier,
        duration(retry.max_backoff),
    )
}

pub fn hedging(policy: &Policy) -> String {
    let Some(hedging) = &policy.hedging else {
        return "—".to_owned();
    };
    format!(
        "{} copies, {} apart",
        hedging.max_attempts,
        duration(hedging.hedging_delay)
    )
}

/// `5 s`, `250 ms`.
pub fn duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis >= 1000 && millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{millis} ms")
    }
}
