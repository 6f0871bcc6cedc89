//! The saga driver: takes each order through its steps (see
//! `domain::saga` for the rules), persisting every transition before the
//! next step, so that whatever crashes when, a restart resumes or
//! compensates.
//!
//! One driver at a time holds a saga: a lease in the order's row. The
//! driver that places an order holds its saga from the start and keeps its
//! state in memory while it holds it; each transition is one statement,
//! conditional on the step it leaves and on the lease, that renews the
//! lease and tells whether a cancel was asked for meanwhile. A saga that
//! must wait for a retry lets go; whoever retries first (this driver's
//! timer or, after a crash, the recovery sweep) claims it again, reading it
//! back in the same statement.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use shop_kit::{Shutdown, observe::traces};
use tracing::Instrument;

use crate::{
    domain::{
        OrderStatus,
        saga::{self, Outcome, SagaPolicy, Step, Transition},
    },
    error::OrdersError,
    now_ms,
    peers::{Catalog, Payments},
    store::{HeldSaga, SagaUpdate, Store},
};

/// Sagas resumed per sweep, at most.
const SWEEP_BATCH: u64 = 100;

#[derive(Clone, Debug)]
pub struct SagaDriver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    catalog: Catalog,
    payments: Payments,
    policy: SagaPolicy,
    shutdown: Shutdown,
    /// A permit per saga taken forward now (`SagaPolicy::max_driving`).
    driving: Arc<Semaphore>,
}

/// A saga's turn to be taken forward: one of `SagaPolicy::max_driving`,
/// given back when the driving stops (at its end, or to wait for a retry).
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

/// How long placing an order waits for a turn at most.
const TURN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl SagaDriver {
    /// A driver, with its recovery sweep running (at once, then
    /// periodically) until `shutdown`.
    pub fn start(
        store: Store,
        catalog: Catalog,
        payments: Payments,
        policy: SagaPolicy,
        shutdown: &Shutdown,
    ) -> Self {
        let driver = Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                payments,
                driving: Arc::new(Semaphore::new(policy.max_driving.max(1))),
                policy,
                shutdown: shutdown.clone(),
            }),
        };
        shutdown.spawn(driver.clone().sweep());
        driver
    }

    pub fn policy(&self) -> &SagaPolicy {
        &self.inner.policy
    }

    /// Until when a saga claimed or moved now is held.
    pub fn lease_from(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(millis(self.inner.policy.lease))
    }

    /// A turn for a new order's saga, waited for during half the time the
    /// caller's `deadline` leaves (so that the rest is left for the order,
    /// or for saying `busy` before the deadline says less), and at most
    /// [`TURN_PATIENCE`]: an order is placed only once its saga can go
    /// forward at once, so orders are taken no faster than their sagas
    /// move, and a stalled peer's backlog is a wait (then `busy`, nothing
    /// written) at the door, not a pile of sagas.
    pub async fn turn(&self, deadline: Option<Instant>) -> Result<Turn, OrdersError> {
        let now = Instant::now();
        let half_left = deadline.map_or(TURN_PATIENCE, |deadline| {
            deadline.saturating_duration_since(now) / 2
        });
        let until = now + half_left.min(TURN_PATIENCE);
        let acquired =
            tokio::time::timeout_at(until, self.inner.driving.clone().acquire_owned()).await;
        match acquired {
            Ok(Ok(permit)) => Ok(Turn { _permit: permit }),
            Ok(Err(_)) | Err(_) => Err(OrdersError::Busy(format!(
                "busy: {} orders are on their way here already; try again shortly",
                self.inner.policy.max_driving
            ))),
        }
    }

    /// Waits for a turn, unless shutdown is asked for first.
    async fn turn_or_shutdown(&self) -> Option<Turn> {
        tokio::select! {
            turn = self.inner.driving.clone().acquire_owned() => {
                turn.ok().map(|permit| Turn { _permit: permit })
            }
            () = self.inner.shutdown.requested() => None,
        }
    }

    /// Drives a saga this driver holds (an order it just placed, its
    /// `turn` taken), in the background. Shutting down, it lets go: the
    /// next start resumes it.
    pub fn drive_held(&self, held: HeldSaga, turn: Turn) {
        let driver = self.clone();
        self.inner.shutdown.spawn(async move {
            let order_id = held.order.id.clone();
            if let Err(error) = driver.drive(held, turn).await {
                // The saga stays where it was; the sweep resumes it.
                tracing::warn!(order = %order_id, %error, "saga paused");
            }
        });
    }

    /// Claims the order's saga and drives it, in the background (unless
    /// shutting down: then the next start's sweep resumes it).
    pub fn kick(&self, order_id: &str) {
        let shutdown = &self.inner.shutdown;
        if shutdown.is_triggered() {
            return;
        }
        shutdown.spawn(self.clone().claim_and_drive(order_id.to_owned()));
    }

    async fn sweep(self) {
        loop {
            match self.inner.store.due_sagas(now_ms(), SWEEP_BATCH).await {
                Ok(due) => {
                    for order_id in due {
                        self.kick(&order_id);
                    }
                }
                Err(error) => tracing::warn!(%error, "saga recovery sweep failed"),
            }
            tokio::select! {
                () = self.inner.shutdown.requested() => return,
                () = tokio::time::sleep(self.inner.policy.sweep_every) => {}
            }
        }
    }

    /// Boxed: a saga that must wait claims itself again later, and a
    /// future cannot contain itself.
    fn claim_and_drive(self, order_id: String) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Its turn first: no lease runs out while it waits.
            let Some(turn) = self.turn_or_shutdown().await else {
                return;
            };
            let now = now_ms();
            let claimed = self
                .inner
                .store
                .claim(&order_id, now, self.lease_from(now))
                .await;
            let driven = match claimed {
                // Done, or another driver has it.
                Ok(None) => Ok(()),
                Ok(Some(held)) => self.drive(held, turn).await,
                Err(error) => Err(error),
            };
            if let Err(error) = driven {
                tracing::warn!(order = %order_id, %error, "saga paused");
            }
        })
    }

    /// Takes the saga as far as it goes now: to its end, to a retry that
    /// must wait, or to the end of the step under way when shutdown is
    /// asked for (every step ends persisted; the next start resumes).
    /// Its `turn` is given back when it returns.
    async fn drive(&self, mut held: HeldSaga, _turn: Turn) -> Result<(), OrdersError> {
        let Inner {
            store,
            policy,
            shutdown,
            ..
        } = &*self.inner;
        loop {
            if shutdown.is_triggered() {
                return store.release(&held).await;
            }
            // The step, its calls and the transition it records belong to
            // the order's trace, whichever process drives it.
            let step = traces::continuing_span(
                format_args!("saga {}", held.saga.step.as_str()),
                &held.traceparent,
            );
            // What a reader of the trace needs to follow the order: which
            // order, which try, what the peer said, where it goes next.
            traces::annotate(&step, "shop.order.id", || &held.order.id);
            traces::annotate(&step, "saga.step", || held.saga.step.as_str());
            traces::annotate(&step, "saga.attempt", || held.saga.attempts + 1);
            let next = async {
                let now = now_ms();
                let transition = match saga::before_step(&held.saga, now) {
                    Some(turned_back) => {
                        traces::annotate(&step, "saga.outcome", || "not tried: turned back");
                        turned_back
                    }
                    None => {
                        let outcome = self.perform(&held).await;
                        metrics::counter!("shop_saga_steps_total",
                            "step" => held.saga.step.as_str(), "outcome" => outcome_label(&outcome))
                        .increment(1);
                        traces::annotate(&step, "saga.outcome", || described(&outcome));
                        saga::after_step(&held.saga, outcome, policy, now_ms())
                    }
                };
                traces::annotate(&step, "saga.next", || next_of(&transition));
                self.record(held, transition).await
            }
            .instrument(step.clone())
            .await?;
            match next {
                Next::Continue(moved) => held = *moved,
                Next::Stop => return Ok(()),
                Next::RetryAfter(order_id, delay) => {
                    let driver = self.clone();
                    let waiting = shutdown.clone();
                    shutdown.spawn(async move {
                        tokio::select! {
                            () = waiting.requested() => {}
                            () = tokio::time::sleep(delay) => driver.claim_and_drive(order_id).await,
                        }
                    });
                    return Ok(());
                }
            }
        }
    }

    async fn perform(&self, held: &HeldSaga) -> Outcome {
        let Inner {
            catalog, payments, ..
        } = &*self.inner;
        let order = &held.order;
        // Each peer call is bounded by its client stack's one budget.
        match held.saga.step {
            Step::ReserveStock => catalog.reserve(order).await,
            Step::Charge => payments.charge(order, &held.payment_token).await,
            Step::CommitStock => catalog.commit(order).await,
            Step::Refund => payments.refund(order).await,
            Step::ReleaseStock => catalog.release(order).await,
            Step::Done => Outcome::Done,
        }
    }

    /// Persists a transition (only if this driver still holds the saga
    /// where it was), and what the driver holds after it.
    async fn record(
        &self,
        mut held: HeldSaga,
        transition: Transition,
    ) -> Result<Next, OrdersError> {
        let store = &self.inner.store;
        let now = now_ms();
        let saga = &held.saga;
        match transition {
            Transition::Move {
                to,
                cancellation,
                payment_id,
            } => {
                let update = SagaUpdate {
                    step: to,
                    attempts: 0,
                    next_attempt_at_ms: now,
                    cancellation,
                    payment_id,
                    lease_until_ms: self.lease_from(now),
                };
                let Some(cancel_requested) = store.advance(&held, &update, None).await? else {
                    return Ok(Next::Stop);
                };
                held.saga.step = update.step;
                held.saga.attempts = 0;
                held.saga.cancellation = update.cancellation;
                held.saga.payment_id = update.payment_id;
                held.saga.cancel_requested = cancel_requested;
                held.lease_until_ms = update.lease_until_ms;
                Ok(Next::Continue(Box::new(held)))
            }
            Transition::Retry { attempts, after } => {
                let update = SagaUpdate {
                    step: saga.step,
                    attempts,
                    next_attempt_at_ms: now.saturating_add(millis(after)),
                    cancellation: saga.cancellation.clone(),
                    payment_id: saga.payment_id.clone(),
                    // Free for whoever retries first: this driver's timer
                    // or, after a crash, the sweep.
                    lease_until_ms: 0,
                };
                Ok(match store.advance(&held, &update, None).await? {
                    Some(_) => Next::RetryAfter(held.order.id, after),
                    None => Next::Stop,
                })
            }
            Transition::Finish { confirmed } => {
                let mut done = held.order.clone();
                done.status = if confirmed {
                    OrderStatus::Confirmed
                } else {
                    OrderStatus::Cancelled
                };
                done.cancellation = if confirmed {
                    None
                } else {
                    saga.cancellation.clone()
                };
                done.updated_at_ms = now;
                done.version = held.order.version + 1;
                let update = SagaUpdate {
                    step: Step::Done,
                    attempts: 0,
                    next_attempt_at_ms: now,
                    cancellation: done.cancellation.clone(),
                    payment_id: saga.payment_id.clone(),
                    lease_until_ms: 0,
                };
                if store.advance(&held, &update, Some(&done)).await?.is_some() {
                    metrics::counter!("shop_orders_finished_total", "status" => done.status.as_str())
                        .increment(1);
                    if confirmed {
                        tracing::debug!(order = %done.id, "order confirmed");
                    } else {
                        let why = done.cancellation.as_ref();
                        tracing::info!(
                            order = %done.id,
                            reason = why.map_or("", |c| c.reason.as_str()),
                            message = why.map_or("", |c| c.message.as_str()),
                            "order cancelled"
                        );
                    }
                }
                Ok(Next::Stop)
            }
        }
    }
}

enum Next {
    /// Go on with the next step, held as given.
    Continue(Box<HeldSaga>),
    Stop,
    /// Claim the order's saga again after the delay.
    RetryAfter(String, std::time::Duration),
}

/// A step's outcome, as its span tells it.
fn described(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done => "done".to_owned(),
        Outcome::Charged { payment_id } => format!("charged as {payment_id}"),
        Outcome::Refused(why) => format!("refused: {} ({})", why.reason.as_str(), why.message),
        Outcome::Unavailable(peer) => format!("unavailable: {peer}"),
        Outcome::NotSent(why) => format!("not sent: {why}"),
    }
}

/// Where a transition takes the saga, as its span tells it.
fn next_of(transition: &Transition) -> String {
    match transition {
        Transition::Move {
            to, cancellation, ..
        } => match cancellation {
            Some(why) => format!("compensate with {} ({})", to.as_str(), why.reason.as_str()),
            None => format!("go on with {}", to.as_str()),
        },
        Transition::Retry { attempts, after } => {
            format!(
                "try again in {} ms (attempt {})",
                after.as_millis(),
                attempts + 1
            )
        }
        Transition::Finish { confirmed: true } => "finish: confirmed".to_owned(),
        Transition::Finish { confirmed: false } => "finish: cancelled".to_owned(),
    }
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done | Outcome::Charged { .. } => "done",
        Outcome::Refused(_) => "refused",
        Outcome::Unavailable(_) => "unavailable",
        Outcome::NotSent(_) => "not_sent",
    }
}
