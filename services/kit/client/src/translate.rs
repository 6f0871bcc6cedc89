//! What a downstream's error means for this service's caller: one ladder
//! ([`PeerFailure::of`]) every caller reads, whether it answers its own
//! caller with a status ([`translate`]) or turns the failure into its own
//! outcome (a saga's step, a domain error).

use tonic::{Code, Status};

use super::{
    is_infrastructure_failure, lacked_credentials, was_not_sent, was_refused_unprocessed, was_shed,
};

/// Why a call to a peer failed, as its caller should take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerFailure {
    /// This service's own bulkhead shed it: this service is busy (the
    /// peer may be fine). Not sent.
    Shed,
    /// The peer refused it unprocessed (overloaded) on every attempt: busy,
    /// never down.
    Overloaded,
    /// Not sent: this service's credentials could not be had (the service
    /// that issues them is the one in trouble).
    NoCredentials,
    /// Not sent: no endpoint serving, every breaker open.
    NotSent,
    /// Its time ran out.
    TooLate,
    /// The peer, or the way to it, failed (unavailable, internal,
    /// unknown, ...): it may do better later.
    Down,
    /// The peer refused this service itself (`permission_denied`): this
    /// service should not have asked.
    Denied,
    /// The peer's answer to what was asked (not_found, invalid_argument,
    /// failed_precondition, an unauthenticated caller, ...): the caller's
    /// to decide on.
    Answered(Code),
}

impl PeerFailure {
    /// The rung `status` stands on.
    pub fn of(status: &Status) -> Self {
        if was_shed(status) {
            return Self::Shed;
        }
        if was_refused_unprocessed(status) {
            return Self::Overloaded;
        }
        if lacked_credentials(status) {
            return Self::NoCredentials;
        }
        if was_not_sent(status) && status.code() != Code::DeadlineExceeded {
            return Self::NotSent;
        }
        match status.code() {
            Code::DeadlineExceeded => Self::TooLate,
            Code::PermissionDenied => Self::Denied,
            code if is_infrastructure_failure(code) || code == Code::ResourceExhausted => {
                Self::Down
            }
            code => Self::Answered(code),
        }
    }
}

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
    match PeerFailure::of(status) {
        PeerFailure::Shed => Some(shed_message(downstream)),
        PeerFailure::Overloaded => Some(format!(
            "busy: the {downstream} service is overloaded; try again shortly"
        )),
        _ => None,
    }
}

/// A downstream's error as this service's caller should see it:
/// `business` decides for the codes of the peer's answers (e.g. the
/// downstream's not_found of a product the caller named is the caller's
/// invalid_argument), which otherwise pass through; trouble is
/// `unavailable` (or `deadline_exceeded`), a permission the downstream
/// denies is `internal` (this service should not have asked), and a call
/// shed here or refused unprocessed on every attempt `resource_exhausted`:
/// busy, never down. Messages of what becomes internal or unavailable are
/// logged here, not returned.
pub fn translate(
    downstream: &str,
    status: &Status,
    business: impl Fn(Code) -> Option<Code>,
) -> Status {
    if let Some(busy) = busy_message(downstream, status) {
        return Status::resource_exhausted(busy);
    }
    match PeerFailure::of(status) {
        PeerFailure::Answered(code) => match business(code) {
            Some(code) => Status::new(code, status.message()),
            None => status.clone(),
        },
        PeerFailure::TooLate => {
            Status::deadline_exceeded(format!("the {downstream} service did not answer in time"))
        }
        PeerFailure::Denied => {
            tracing::error!(
                downstream,
                message = status.message(),
                "downstream denied the call"
            );
            Status::internal("an internal call was refused")
        }
        _ => {
            tracing::warn!(downstream, code = ?status.code(), message = status.message(), "downstream failed");
            Status::unavailable(format!(
                "the {downstream} service is unavailable, try again later"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{no_credentials, not_sent};

    #[test]
    fn each_failure_stands_on_its_rung() {
        assert_eq!(
            PeerFailure::of(&not_sent(Code::ResourceExhausted, "full".into())),
            PeerFailure::Shed
        );
        assert_eq!(
            PeerFailure::of(&not_sent(Code::Unavailable, "nowhere".into())),
            PeerFailure::NotSent
        );
        assert_eq!(
            PeerFailure::of(&no_credentials(&Status::unavailable("users down"))),
            PeerFailure::NoCredentials
        );
        assert_eq!(
            PeerFailure::of(&not_sent(Code::DeadlineExceeded, "no time left".into())),
            PeerFailure::TooLate
        );
        assert_eq!(
            PeerFailure::of(&Status::internal("boom")),
            PeerFailure::Down
        );
        assert_eq!(
            PeerFailure::of(&Status::permission_denied("not you")),
            PeerFailure::Denied
        );
        assert_eq!(
            PeerFailure::of(&Status::not_found("no such product")),
            PeerFailure::Answered(Code::NotFound)
        );
    }
}
