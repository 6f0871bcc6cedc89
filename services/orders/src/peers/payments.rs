//! Payments as the saga sees it: charge the customer for an order, or undo
//! that charge, both by the charge's idempotency key, so a repeat after a
//! lost answer or a crash is harmless.

use std::time::Duration;

use shop_kit::client::{CallContext, Peer, PeerFailure};
use shop_proto::shop::{
    common::v1::Money,
    payments::v1::{
        ChargeOrderRequest, CheckPaymentTokenRequest, RefundOrderRequest,
        order_payment_service_client::OrderPaymentServiceClient,
        payment_service_client::PaymentServiceClient,
    },
};
use tonic::Code;

use super::unavailable;
use crate::{
    domain::{CancelReason, Cancellation, Order, saga::Outcome},
    error::OrdersError,
};

const PEER: &str = "payment";

/// How long placing an order waits for payments to say whether it issued
/// the order's payment token before going ahead without the answer.
const TOKEN_CHECK_PATIENCE: Duration = Duration::from_millis(500);
/// How long, and how many, tokens payments said it issued are remembered.
/// The check only spares a customer an order doomed by a mistyped token
/// (the charge decides anyway), so a token revoked meanwhile costs nothing
/// worse than a cancelled order.
const ISSUED_TOKENS_FOR: Duration = Duration::from_secs(60);
const ISSUED_TOKENS_KEPT: u64 = 10_000;

/// Payments' public PaymentService (checking a payment token) and internal
/// OrderPaymentService (the order's charge and its refund), on the same
/// endpoints.
#[derive(Clone, Debug)]
pub struct Payments {
    peer: Peer,
    /// Tokens payments said it issued, for a while: a customer's next
    /// order with the same card is not asked about again.
    issued: moka::sync::Cache<String, ()>,
}

/// The idempotency key of an order's charge.
pub fn charge_key(order_id: &str) -> String {
    format!("order-{order_id}")
}

impl Payments {
    pub fn new(peer: Peer) -> Self {
        Self {
            peer,
            issued: moka::sync::Cache::builder()
                .max_capacity(ISSUED_TOKENS_KEPT)
                .time_to_live(ISSUED_TOKENS_FOR)
                .build(),
        }
    }

    /// Refuses a payment token the processor never issued, before an order
    /// is placed with it. Only a clear no refuses: if payments cannot say
    /// (down, breaker open, no service token), the order goes ahead and its
    /// charge decides, as it always does.
    pub async fn check_token(&self, payment_token: &str) -> Result<(), OrdersError> {
        if self.issued.contains_key(payment_token) {
            return Ok(());
        }
        let check = CheckPaymentTokenRequest {
            payment_token: payment_token.to_owned(),
        };
        // Within the caller's time, and never longer than the patience.
        let answer = CallContext::at_most(TOKEN_CHECK_PATIENCE)
            .scope(PaymentServiceClient::new(self.peer.clone()).check_payment_token(check))
            .await;
        match answer {
            Err(status) if PeerFailure::of(&status) == PeerFailure::NoCredentials => {
                tracing::debug!(
                    message = status.message(),
                    "no service token to check a payment token"
                );
                Ok(())
            }
            Ok(_) => {
                self.issued.insert(payment_token.to_owned(), ());
                Ok(())
            }
            // not_found; invalid_argument from a payments service of the
            // release before (during a rolling upgrade).
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => Err(
                OrdersError::UnknownPaymentToken(status.message().to_owned()),
            ),
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "payment token not checked");
                Ok(())
            }
        }
    }

    /// The internal OrderPaymentService, on the same endpoints.
    fn orders_payments(&self) -> OrderPaymentServiceClient<Peer> {
        OrderPaymentServiceClient::new(self.peer.clone())
    }

    pub async fn charge(&self, order: &Order, payment_token: &str) -> Outcome {
        let charge = ChargeOrderRequest {
            idempotency_key: charge_key(&order.id),
            reference: order.id.clone(),
            amount: Some(Money {
                currency_code: order.currency_code.clone(),
                minor_units: order.total_minor_units,
            }),
            payment_token: payment_token.to_owned(),
            customer_id: order.user_id.clone(),
        };
        let answer = self.orders_payments().charge_order(charge).await;
        match answer {
            Ok(answer) => Outcome::Charged {
                payment_id: answer
                    .into_inner()
                    .payment
                    .map(|p| p.id)
                    .unwrap_or_default(),
            },
            Err(status) => match status.code() {
                Code::FailedPrecondition => Outcome::Refused(Cancellation::new(
                    CancelReason::CardDeclined,
                    "your card was declined",
                )),
                // A key already used for another amount (a charge of this
                // order's key that differs): never charged twice, refused.
                Code::InvalidArgument | Code::NotFound | Code::AlreadyExists => {
                    Outcome::Refused(Cancellation::new(
                        CancelReason::PaymentRefused,
                        format!("the payment was refused: {}", status.message()),
                    ))
                }
                Code::Aborted => Outcome::Refused(Cancellation::new(
                    CancelReason::PaymentRefused,
                    "the payment was voided",
                )),
                _ => unavailable(PEER, &status),
            },
        }
    }

    /// Refunds the order's charge if it was made; makes sure it never is
    /// otherwise.
    pub async fn refund(&self, order: &Order) -> Outcome {
        let refund = RefundOrderRequest {
            payment_id: String::new(),
            idempotency_key: charge_key(&order.id),
            customer_id: order.user_id.clone(),
        };
        let answer = self.orders_payments().refund_order(refund).await;
        match answer {
            Ok(_) => Outcome::Done,
            Err(status) => unavailable(PEER, &status),
        }
    }
}
