//! What a downstream's error means for this service's caller.

use tonic::{Code, Status};

use super::{is_infrastructure_failure, was_refused_unprocessed, was_shed};

/// What a caller hears of a call this service's own bulkhead shed: this
/// service is busy (the downstream may be fine).
pub fn shed_message(downstream: &str) -> String {
    format!("busy: too many calls to the {downstream} service in flight here; try again shortly")
}

/// What a caller hears when a call to `downstream` failed for want of
/// room rather than for trouble: this service's bulkhead shed it, or the
/// downstream refused it unprocessed (overloaded) on every attempt.
/// `None` for any other failure.
pub fn busy_message(downstream: &str, status: &Status) -> Option<String> {
    if was_shed(status) {
        Some(shed_message(downstream))
    } else if was_refused_unprocessed(status) {
        Some(format!(
            "busy: the {downstream} service is overloaded; try again shortly"
        ))
    } else {
        None
    }
}

/// A downstream's error as this service's caller should see it:
/// `business` decides for the codes it knows (e.g. the downstream's
/// not_found of a product the caller named is the caller's
/// invalid_argument); otherwise infrastructure trouble is `unavailable`
/// (or `deadline_exceeded`), a permission the downstream denies is
/// `internal` (this service should not have asked), and the rest (an
/// unauthenticated caller, not_found, ...) passes through. A call this
/// service's own bulkhead shed, or that the downstream refused unprocessed
/// on every attempt, is `resource_exhausted`: busy, never down. Messages of what becomes
/// internal or unavailable are logged here, not returned.
pub fn translate(
    downstream: &str,
    status: &Status,
    business: impl Fn(Code) -> Option<Code>,
) -> Status {
    if let Some(busy) = busy_message(downstream, status) {
        return Status::resource_exhausted(busy);
    }
    if let Some(code) = business(status.code()) {
        return Status::new(code, status.message());
    }
    match status.code() {
        Code::DeadlineExceeded => {
            Status::deadline_exceeded(format!("the {downstream} service did not answer in time"))
        }
        code if is_infrastructure_failure(code) || code == Code::ResourceExhausted => {
            tracing::warn!(downstream, code = ?code, message = status.message(), "downstream failed");
            Status::unavailable(format!(
                "the {downstream} service is unavailable, try again later"
            ))
        }
        Code::PermissionDenied => {
            tracing::error!(
                downstream,
                message = status.message(),
                "downstream denied the call"
            );
            Status::internal("an internal call was refused")
        }
        _ => status.clone(),
    }
}
