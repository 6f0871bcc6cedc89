//! The saga driver: takes each order through its steps (see
//! `domain::saga` for the rules), persisting every transition before the
//! next step, so that whatever crashes when, a restart resumes or
//! compensates. One driver at a time holds a saga (a lease in the
//! database); the recovery sweep resumes sagas whose driver died or whose
//! retry is due.

use std::sync::Arc;

use futures::future::BoxFuture;

use shop_kit::{Shutdown, events::Relay, observe::trace_context::TraceParent};

use crate::{
    domain::{
        Order, OrderStatus,
        saga::{self, Outcome, SagaPolicy, Step, Transition},
    },
    error::OrdersError,
    now_ms,
    peers::{Catalog, Payments},
    store::{SagaUpdate, Store, StoredSaga},
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
    relay: Relay,
    policy: SagaPolicy,
    shutdown: Shutdown,
}

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
        relay: Relay,
        policy: SagaPolicy,
        shutdown: &Shutdown,
    ) -> Self {
        let driver = Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                payments,
                relay,
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

    /// Drives the order's saga now, in the background (unless shutting
    /// down: then the next start's sweep resumes it).
    pub fn kick(&self, order_id: &str) {
        let shutdown = &self.inner.shutdown;
        if shutdown.is_triggered() {
            return;
        }
        shutdown.spawn(self.clone().drive_logged(order_id.to_owned()));
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

    /// Boxed: a saga that must wait drives itself again later, and a
    /// future cannot contain itself.
    fn drive_logged(self, order_id: String) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Err(error) = self.drive(&order_id).await {
                // The saga stays where it was; the sweep resumes it.
                tracing::warn!(order = %order_id, %error, "saga paused");
            }
        })
    }

    /// Takes the saga as far as it goes now: to its end, to a retry that
    /// must wait, or to the end of the step under way when shutdown is
    /// asked for (every step ends persisted; the next start resumes).
    async fn drive(&self, order_id: &str) -> Result<(), OrdersError> {
        let Inner {
            store,
            policy,
            shutdown,
            ..
        } = &*self.inner;
        while !shutdown.is_triggered() {
            let now = now_ms();
            if !store
                .claim(order_id, now, now + millis(policy.lease))
                .await?
            {
                return Ok(()); // done, or another driver has it
            }
            let Some((stored, order)) = store.saga(order_id).await? else {
                return Ok(());
            };
            let transition = match saga::before_step(&stored.saga, now) {
                Some(turned_back) => turned_back,
                None => {
                    let outcome = self.perform(&stored, &order).await;
                    metrics::counter!("shop_saga_steps_total",
                        "step" => stored.saga.step.as_str(), "outcome" => outcome_label(&outcome))
                    .increment(1);
                    saga::after_step(&stored.saga, outcome, policy)
                }
            };
            match self.record(&stored, &order, transition).await? {
                Next::Continue => {}
                Next::Stop => return Ok(()),
                Next::RetryAfter(delay) => {
                    let driver = self.clone();
                    let order_id = order_id.to_owned();
                    let waiting = shutdown.clone();
                    shutdown.spawn(async move {
                        tokio::select! {
                            () = waiting.requested() => {}
                            () = tokio::time::sleep(delay) => driver.drive_logged(order_id).await,
                        }
                    });
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn perform(&self, stored: &StoredSaga, order: &Order) -> Outcome {
        let Inner {
            catalog, payments, ..
        } = &*self.inner;
        let trace = TraceParent::parse(&stored.traceparent).unwrap_or_else(TraceParent::root);
        // Each peer call is bounded by its client stack's one budget.
        match stored.saga.step {
            Step::ReserveStock => catalog.reserve(order, &trace).await,
            Step::Charge => payments.charge(order, &stored.payment_token, &trace).await,
            Step::CommitStock => catalog.commit(order, &trace).await,
            Step::Refund => payments.refund(order, &trace).await,
            Step::ReleaseStock => catalog.release(order, &trace).await,
            Step::Done => Outcome::Done,
        }
    }

    /// Persists a transition (only if the saga is still where it was).
    async fn record(
        &self,
        stored: &StoredSaga,
        order: &Order,
        transition: Transition,
    ) -> Result<Next, OrdersError> {
        let Inner { store, relay, .. } = &*self.inner;
        let saga = &stored.saga;
        let now = now_ms();
        let (update, finished, next) = match transition {
            Transition::Move {
                to,
                cancel_reason,
                payment_id,
            } => (
                SagaUpdate {
                    step: to,
                    attempts: 0,
                    next_attempt_at_ms: now,
                    cancel_reason,
                    payment_id,
                    // Released: the next step claims it again (this driver,
                    // unless another got there first).
                    lease_until_ms: 0,
                },
                None,
                Next::Continue,
            ),
            Transition::Retry { attempts, after } => (
                SagaUpdate {
                    step: saga.step,
                    attempts,
                    next_attempt_at_ms: now + millis(after),
                    cancel_reason: saga.cancel_reason.clone(),
                    payment_id: saga.payment_id.clone(),
                    // Free for whoever retries first: this driver's timer
                    // or, after a crash, the sweep.
                    lease_until_ms: 0,
                },
                None,
                Next::RetryAfter(after),
            ),
            Transition::Finish { confirmed } => {
                let mut done = order.clone();
                done.status = if confirmed {
                    OrderStatus::Confirmed
                } else {
                    OrderStatus::Cancelled
                };
                done.cancel_reason = if confirmed {
                    String::new()
                } else {
                    saga.cancel_reason.clone()
                };
                done.updated_at_ms = now;
                done.version = order.version + 1;
                (
                    SagaUpdate {
                        step: Step::Done,
                        attempts: 0,
                        next_attempt_at_ms: now,
                        cancel_reason: done.cancel_reason.clone(),
                        payment_id: saga.payment_id.clone(),
                        lease_until_ms: 0,
                    },
                    Some(done),
                    Next::Stop,
                )
            }
        };
        let finished_with_trace = finished
            .as_ref()
            .map(|order| (order, stored.traceparent.as_str()));
        if !store
            .advance(&order.id, saga.step, &update, finished_with_trace)
            .await?
        {
            return Ok(Next::Stop);
        }
        if let Some(done) = finished {
            relay.wake();
            metrics::counter!("shop_orders_finished_total", "status" => done.status.as_str())
                .increment(1);
            tracing::info!(order = %done.id, status = done.status.as_str(), reason = %done.cancel_reason, "order final");
        }
        Ok(next)
    }
}

enum Next {
    Continue,
    Stop,
    RetryAfter(std::time::Duration),
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done | Outcome::Charged { .. } => "done",
        Outcome::Refused(_) => "refused",
        Outcome::Unavailable(_) => "unavailable",
    }
}
