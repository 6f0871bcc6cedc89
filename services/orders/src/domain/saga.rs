//! The saga that takes an order to CONFIRMED or CANCELLED, as pure rules:
//! given where a saga stands and what its last step answered, what comes
//! next. The driver (`crate::saga`) performs the steps and persists every
//! transition before taking the next step.
//!
//! Forward: reserve stock -> charge -> commit stock -> confirmed.
//! Backward (compensation): refund -> release stock -> cancelled.
//!
//! The charge is the pivot: until it succeeds the saga may turn back (a
//! refusal, the customer cancelling, the order's deadline passing, a peer
//! still unavailable then); once it has, committing the stock is retried
//! until it succeeds. Compensations are retried until they succeed. A peer
//! that is down is waited for, with backoff: only time gives up, never a
//! count of failures, so an outage shorter than the deadline cancels
//! nothing.

use std::time::Duration;

use shop_kit::client::Backoff;

use super::{CancelReason, Cancellation};

/// Where a saga stands: the step it will take next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    ReserveStock,
    Charge,
    CommitStock,
    Refund,
    ReleaseStock,
    /// Nothing left to do: the order is confirmed or cancelled.
    Done,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReserveStock => "reserve_stock",
            Self::Charge => "charge",
            Self::CommitStock => "commit_stock",
            Self::Refund => "refund",
            Self::ReleaseStock => "release_stock",
            Self::Done => "done",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::ReserveStock,
            Self::Charge,
            Self::CommitStock,
            Self::Refund,
            Self::ReleaseStock,
            Self::Done,
        ]
        .into_iter()
        .find(|step| step.as_str() == stored)
    }

    /// Before the pivot: the saga may still turn back.
    fn may_turn_back(self) -> bool {
        matches!(self, Self::ReserveStock | Self::Charge)
    }

    /// The service this step calls, as a customer hears of it.
    fn peer(self) -> &'static str {
        match self {
            Self::ReserveStock | Self::CommitStock | Self::ReleaseStock => "catalog service",
            Self::Charge | Self::Refund => "payment service",
            Self::Done => "shop",
        }
    }
}

/// How a saga behaves: retries, patience, leases.
#[derive(Clone, Debug)]
pub struct SagaPolicy {
    /// The first retry's delay; each retry doubles it, up to `max_backoff`.
    /// A call not even made (the peer's breaker open, too many calls in
    /// flight) is retried after `first_backoff`, and is no attempt.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// An order not past its charge by then is cancelled (a peer still
    /// unavailable then included).
    pub deadline: Duration,
    /// How long a driver owns a saga without renewing; after a crash,
    /// another driver takes over once it has run out.
    pub lease: Duration,
    /// How often the recovery sweep looks for sagas to resume.
    pub sweep_every: Duration,
    /// Sagas one driver takes forward at once. A new order waits for a
    /// turn before it is placed (for half the time its caller's
    /// deadline leaves, at most 2 s, then `busy`, nothing written), a resumed saga before it is claimed. A
    /// stall of a peer's database then holds this many of the driver's
    /// calls to it, not one per order placed meanwhile: the calls orders
    /// makes while it answers a customer (pricing) keep room in the
    /// client's bulkhead (64 calls per peer), the peer is not buried when
    /// it comes back, and orders are taken no faster than their sagas go.
    pub max_driving: usize,
}

impl Default for SagaPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(120),
            lease: Duration::from_secs(10),
            sweep_every: Duration::from_secs(2),
            max_driving: 32,
        }
    }
}

impl SagaPolicy {
    /// The delay before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.first_backoff, self.max_backoff).delay(attempt)
    }
}

/// A saga's persisted state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saga {
    pub step: Step,
    /// Failed attempts of the current step.
    pub attempts: u32,
    pub deadline_at_ms: i64,
    pub cancel_requested: bool,
    /// Why the saga turned back; none while it goes forward.
    pub cancellation: Option<Cancellation>,
    pub payment_id: String,
}

/// What a step's call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The charge went through as this payment.
    Charged {
        payment_id: String,
    },
    /// The peer said no, for good, and why.
    Refused(Cancellation),
    /// The peer (named, e.g. "payment service") did not answer, or not
    /// usefully; worth trying again.
    Unavailable(String),
    /// The call was not even made: the peer's breaker is open, or too many
    /// calls to it are in flight. Not an attempt; worth trying again soon.
    NotSent(String),
}

/// What to do after a step (or before one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Go on with `to`.
    Move {
        to: Step,
        cancellation: Option<Cancellation>,
        payment_id: String,
    },
    /// Try the same step again after the delay.
    Retry { attempts: u32, after: Duration },
    /// The order is final.
    Finish { confirmed: bool },
}

impl Transition {
    /// Whether this transition, taken at `now_ms`, gets to try again by
    /// `deadline_ms` (anything but a retry moves on at once).
    fn due_by(&self, now_ms: i64, deadline_ms: i64) -> bool {
        match self {
            Self::Retry { after, .. } => {
                let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
                now_ms.saturating_add(after) <= deadline_ms
            }
            _ => true,
        }
    }
}

/// Where compensation starts from a step before the pivot: a charge may
/// have been made (its answer lost), so turning back at the charge refunds.
fn turn_back(from: Step, why: Cancellation) -> Transition {
    let to = match from {
        Step::Charge => Step::Refund,
        _ => Step::ReleaseStock,
    };
    Transition::Move {
        to,
        cancellation: Some(why),
        payment_id: String::new(),
    }
}

/// Checked before each step: a cancel request or the deadline turns a saga
/// back while it still may.
pub fn before_step(saga: &Saga, now_ms: i64) -> Option<Transition> {
    if !saga.step.may_turn_back() {
        return None;
    }
    if saga.cancel_requested {
        return Some(turn_back(saga.step, Cancellation::requested()));
    }
    if now_ms > saga.deadline_at_ms {
        // A step that has failed before was waiting for its peer: a retry
        // due in time but woken late (a busy machine) says so, as the
        // failure that would have come in time does.
        let why = if saga.attempts > 0 {
            unavailable_until_time_ran_out(saga.step.peer())
        } else {
            Cancellation::new(
                CancelReason::TimedOut,
                "not completed in time: the shop's services were too slow",
            )
        };
        return Some(turn_back(saga.step, why));
    }
    None
}

fn unavailable_until_time_ran_out(peer: &str) -> Cancellation {
    Cancellation::new(
        CancelReason::TimedOut,
        format!("the {peer} was unavailable until the order's time ran out"),
    )
}

/// What follows a step's outcome, at `now_ms`.
pub fn after_step(saga: &Saga, outcome: Outcome, policy: &SagaPolicy, now_ms: i64) -> Transition {
    let keep = |to: Step| Transition::Move {
        to,
        cancellation: saga.cancellation.clone(),
        payment_id: saga.payment_id.clone(),
    };
    let retry = || {
        let attempts = saga.attempts.saturating_add(1);
        Transition::Retry {
            attempts,
            after: policy.backoff(attempts),
        }
    };
    // A call not sent is no attempt: soon again, with no more backoff.
    let wait = || Transition::Retry {
        attempts: saga.attempts,
        after: policy.first_backoff,
    };
    match (saga.step, outcome) {
        (Step::Done, _) => Transition::Finish {
            confirmed: saga.cancellation.is_none(),
        },
        // Forward, before the pivot: a refusal turns back, and so does a
        // peer still unavailable when the order's time is up (its next try
        // would come too late).
        (step @ (Step::ReserveStock | Step::Charge), Outcome::Refused(why)) => turn_back(step, why),
        (
            step @ (Step::ReserveStock | Step::Charge),
            Outcome::Unavailable(peer) | Outcome::NotSent(peer),
        ) if !retry().due_by(now_ms, saga.deadline_at_ms) => {
            turn_back(step, unavailable_until_time_ran_out(&peer))
        }
        (_, Outcome::NotSent(_)) => wait(),
        (Step::ReserveStock, Outcome::Done | Outcome::Charged { .. }) => keep(Step::Charge),
        (Step::Charge, Outcome::Charged { payment_id }) => Transition::Move {
            to: Step::CommitStock,
            cancellation: None,
            payment_id,
        },
        (Step::Charge, Outcome::Done) => keep(Step::CommitStock),
        // Past the pivot: commit until it succeeds, unless the reservation
        // is gone (then the money goes back).
        (Step::CommitStock, Outcome::Done | Outcome::Charged { .. }) => {
            Transition::Finish { confirmed: true }
        }
        (Step::CommitStock, Outcome::Refused(why)) => Transition::Move {
            to: Step::Refund,
            cancellation: Some(why),
            payment_id: saga.payment_id.clone(),
        },
        // Compensations: until they succeed.
        (Step::Refund, Outcome::Done | Outcome::Charged { .. }) => keep(Step::ReleaseStock),
        (Step::ReleaseStock, Outcome::Done | Outcome::Charged { .. }) => {
            Transition::Finish { confirmed: false }
        }
        (Step::ReleaseStock, Outcome::Refused(_)) => Transition::Finish { confirmed: false },
        (_, Outcome::Unavailable(_) | Outcome::Refused(_)) => retry(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: Step) -> Saga {
        Saga {
            step,
            attempts: 0,
            deadline_at_ms: 1_000,
            cancel_requested: false,
            cancellation: None,
            payment_id: String::new(),
        }
    }

    fn moved(to: Step, why: Option<Cancellation>) -> Transition {
        Transition::Move {
            to,
            cancellation: why,
            payment_id: String::new(),
        }
    }

    fn out_of_stock() -> Cancellation {
        Cancellation::new(CancelReason::OutOfStock, "out of stock: p1")
    }

    fn declined() -> Cancellation {
        Cancellation::new(CancelReason::CardDeclined, "your card was declined")
    }

    #[test]
    fn the_happy_path_reserves_charges_commits() {
        let policy = SagaPolicy::default();
        assert_eq!(
            after_step(&at(Step::ReserveStock), Outcome::Done, &policy, 0),
            moved(Step::Charge, None)
        );
        assert_eq!(
            after_step(
                &at(Step::Charge),
                Outcome::Charged {
                    payment_id: "pay-1".into()
                },
                &policy,
                0
            ),
            Transition::Move {
                to: Step::CommitStock,
                cancellation: None,
                payment_id: "pay-1".into()
            }
        );
        assert_eq!(
            after_step(&at(Step::CommitStock), Outcome::Done, &policy, 0),
            Transition::Finish { confirmed: true }
        );
    }

    #[test]
    fn refusals_before_the_pivot_compensate_in_reverse() {
        let policy = SagaPolicy::default();
        assert_eq!(
            after_step(
                &at(Step::ReserveStock),
                Outcome::Refused(out_of_stock()),
                &policy,
                0
            ),
            moved(Step::ReleaseStock, Some(out_of_stock()))
        );
        assert_eq!(
            after_step(&at(Step::Charge), Outcome::Refused(declined()), &policy, 0),
            moved(Step::Refund, Some(declined()))
        );
        let mut refunding = at(Step::Refund);
        refunding.cancellation = Some(declined());
        assert_eq!(
            after_step(&refunding, Outcome::Done, &policy, 0),
            moved(Step::ReleaseStock, Some(declined()))
        );
        assert_eq!(
            after_step(&at(Step::ReleaseStock), Outcome::Done, &policy, 0),
            Transition::Finish { confirmed: false }
        );
    }

    #[test]
    fn an_unavailable_peer_is_waited_for_until_the_deadline_only() {
        let policy = SagaPolicy::default();
        let unavailable = || Outcome::Unavailable("payment service".into());
        let mut charging = at(Step::Charge);
        assert_eq!(
            after_step(&charging, unavailable(), &policy, 0),
            Transition::Retry {
                attempts: 1,
                after: policy.first_backoff
            }
        );
        // However many failures: while a retry can come in time, it waits on.
        charging.attempts = 1_000;
        charging.deadline_at_ms = 10_000;
        assert!(matches!(
            after_step(&charging, unavailable(), &policy, 8_000),
            Transition::Retry { attempts: 1_001, after } if after == policy.max_backoff
        ));
        assert_eq!(
            after_step(&charging, unavailable(), &policy, 8_001),
            moved(
                Step::Refund,
                Some(Cancellation::new(
                    CancelReason::TimedOut,
                    "the payment service was unavailable until the order's time ran out"
                ))
            )
        );
        // Past the pivot and while compensating, never given up.
        for step in [Step::CommitStock, Step::Refund, Step::ReleaseStock] {
            let mut saga = at(step);
            saga.attempts = 50;
            assert!(matches!(
                after_step(&saga, Outcome::Unavailable("x".into()), &policy, i64::MAX),
                Transition::Retry { attempts: 51, .. }
            ));
        }
        assert_eq!(policy.backoff(30), policy.max_backoff);
    }

    #[test]
    fn a_retry_woken_after_the_deadline_names_the_peer_it_waited_for() {
        let failed = |step: Step, attempts: u32| Saga {
            attempts,
            ..at(step)
        };
        for (saga, to, words) in [
            (
                failed(Step::Charge, 0),
                Step::Refund,
                "not completed in time: the shop's services were too slow",
            ),
            (
                failed(Step::Charge, 3),
                Step::Refund,
                "the payment service was unavailable until the order's time ran out",
            ),
            (
                failed(Step::ReserveStock, 1),
                Step::ReleaseStock,
                "the catalog service was unavailable until the order's time ran out",
            ),
        ] {
            assert_eq!(
                before_step(&saga, 1_001),
                Some(moved(
                    to,
                    Some(Cancellation::new(CancelReason::TimedOut, words))
                )),
                "{saga:?}"
            );
            assert_eq!(before_step(&saga, 1_000), None);
        }
    }

    #[test]
    fn a_call_not_sent_is_no_attempt() {
        let policy = SagaPolicy::default();
        let mut charging = at(Step::Charge);
        charging.attempts = 2;
        assert_eq!(
            after_step(
                &charging,
                Outcome::NotSent("payment service".into()),
                &policy,
                0
            ),
            Transition::Retry {
                attempts: 2,
                after: policy.first_backoff
            }
        );
        assert!(matches!(
            after_step(
                &charging,
                Outcome::NotSent("payment service".into()),
                &policy,
                900
            ),
            Transition::Move {
                to: Step::Refund,
                ..
            }
        ));
    }

    #[test]
    fn cancelling_and_the_deadline_turn_back_only_before_the_pivot() {
        let mut saga = at(Step::Charge);
        assert_eq!(before_step(&saga, 0), None);
        saga.cancel_requested = true;
        assert_eq!(
            before_step(&saga, 0),
            Some(moved(Step::Refund, Some(Cancellation::requested())))
        );
        let mut reserving = at(Step::ReserveStock);
        assert!(matches!(
            before_step(&reserving, 2_000),
            Some(Transition::Move {
                to: Step::ReleaseStock,
                ..
            })
        ));
        reserving.step = Step::CommitStock;
        reserving.cancel_requested = true;
        assert_eq!(before_step(&reserving, 2_000), None);
    }

    #[test]
    fn steps_round_trip_through_storage() {
        for step in [
            Step::ReserveStock,
            Step::Charge,
            Step::CommitStock,
            Step::Refund,
            Step::ReleaseStock,
            Step::Done,
        ] {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("teleport"), None);
    }
}
