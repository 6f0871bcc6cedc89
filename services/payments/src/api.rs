//! RPC handlers of `shop.payments.v1.PaymentService` (customers) and the
//! internal `shop.payments.v1.OrderPaymentService` (the orders saga): one
//! charge path and one refund path, the payer told apart.

use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::{
    RpcService, Valid,
    auth::{Caller, Customer, ServiceCaller},
    rpc::connect_errors::refusal,
};
use shop_proto::shop::{common::v1::Money, payments::v1 as pb};

use crate::{
    AppState,
    domain::{Charge, Payer, Payment, PaymentStatus},
    error::PaymentsError,
};

/// The `google.rpc.ErrorInfo` domain of the payment service's refusals.
const DOMAIN: &str = "payments.connect-shop";

impl From<PaymentsError> for ConnectError {
    fn from(error: PaymentsError) -> Self {
        match &error {
            PaymentsError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            PaymentsError::Declined { reason } => {
                refusal(Code::FailedPrecondition, error.to_string(), reason, DOMAIN)
            }
            PaymentsError::UnknownToken { .. } => refusal(
                Code::NotFound,
                error.to_string(),
                "UNKNOWN_PAYMENT_TOKEN",
                DOMAIN,
            ),
            PaymentsError::ProcessorUnavailable => {
                ConnectError::new(Code::Unavailable, error.to_string())
            }
            // A key names the charge it made (AIP-133's client-assigned
            // id): another charge under it already exists.
            PaymentsError::KeyReused { .. } => refusal(
                Code::AlreadyExists,
                error.to_string(),
                "IDEMPOTENCY_KEY_REUSED",
                DOMAIN,
            ),
            PaymentsError::KeyVoided => ConnectError::new(Code::Aborted, error.to_string()),
            PaymentsError::NotYourself => {
                ConnectError::new(Code::PermissionDenied, error.to_string())
            }
            PaymentsError::NotYourCharge => {
                ConnectError::new(Code::PermissionDenied, error.to_string())
            }
            PaymentsError::NotFound { .. } => ConnectError::new(Code::NotFound, error.to_string()),
            PaymentsError::Storage(failure) => shop_kit::storage_failure("payments", failure),
        }
    }
}

fn to_proto(payment: Payment) -> pb::Payment {
    let status = match payment.status {
        PaymentStatus::Captured => pb::PaymentStatus::Captured,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
        PaymentStatus::Voided => pb::PaymentStatus::Voided,
    };
    pb::Payment {
        id: payment.id,
        reference: payment.reference,
        // A voided key moved no money: no amount (rather than an empty one).
        amount: (payment.status != PaymentStatus::Voided).then_some(Money {
            currency_code: payment.amount.currency_code,
            minor_units: payment.amount.minor_units,
        }),
        status: status.into(),
        customer_id: payment.user_id,
    }
}

/// Whom a customer's own charge or refund is for: themself; naming anyone
/// else is permission_denied.
fn customer_of(caller: &Customer, customer_id: &str) -> Result<String, PaymentsError> {
    if customer_id.is_empty() || customer_id == caller.user_id {
        Ok(caller.user_id.clone())
    } else {
        Err(PaymentsError::NotYourself)
    }
}

/// The caller's own payment; any payment for the shop's services.
async fn visible_payment(
    state: &AppState,
    caller: &Caller,
    payment_id: &str,
) -> Result<Payment, PaymentsError> {
    match caller.service() {
        Some(_) => any_payment(state, payment_id).await,
        None => state.payments.own(&caller.user_id, payment_id).await,
    }
}

async fn any_payment(state: &AppState, payment_id: &str) -> Result<Payment, PaymentsError> {
    state
        .payments
        .store()
        .by_id(payment_id)
        .await?
        .ok_or_else(|| PaymentsError::NotFound {
            id: payment_id.to_owned(),
        })
}

/// The fields of a charge, whoever asks for it.
struct ChargeAsked<'a> {
    idempotency_key: &'a str,
    reference: &'a str,
    amount: Option<Money>,
    payment_token: &'a str,
}

/// Charges `customer` as `payer` asks: the one path of both services.
async fn charge_for(
    state: &AppState,
    payer: Payer,
    customer: &str,
    asked: ChargeAsked<'_>,
) -> Result<pb::Payment, PaymentsError> {
    let amount = asked.amount.unwrap_or_default();
    let payment = state
        .payments
        .charge(&Charge {
            customer,
            payer,
            idempotency_key: asked.idempotency_key,
            reference: asked.reference,
            currency_code: &amount.currency_code,
            minor_units: amount.minor_units,
            payment_token: asked.payment_token,
        })
        .await?;
    Ok(to_proto(payment))
}

/// Which charge a refund names: a payment, or else the charge's key.
enum RefundOf<'a> {
    Payment(&'a str),
    Key(&'a str),
}

impl<'a> RefundOf<'a> {
    fn of(payment_id: &'a str, idempotency_key: &'a str) -> Result<Self, PaymentsError> {
        match (payment_id.is_empty(), idempotency_key.is_empty()) {
            (false, true) => Ok(Self::Payment(payment_id)),
            (true, false) => Ok(Self::Key(idempotency_key)),
            _ => Err(PaymentsError::invalid(
                "payment_id",
                "name the payment, or else the charge's idempotency_key",
            )),
        }
    }
}

/// PaymentService: each of its RPCs and the handler that answers it (the
/// builder does not compile without every one).
pub fn payment_service(state: AppState) -> RpcService {
    pb::PaymentServiceRoutes::new()
        .charge(charge)
        .refund(refund)
        .check_payment_token(check_payment_token)
        .get_payment(get_payment)
        .build(state)
}

/// OrderPaymentService, the saga's payment steps, beside PaymentService.
pub fn order_payment_service(state: AppState) -> RpcService {
    pb::OrderPaymentServiceRoutes::new()
        .charge_order(charge_order)
        .refund_order(refund_order)
        .build(state)
}

/// A customer's own charge; the shop's charges are OrderPaymentService's.
pub async fn charge(
    caller: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ChargeRequest>,
) -> Result<ConnectResponse<pb::ChargeResponse>, ConnectError> {
    let customer = customer_of(&caller, &request.customer_id)?;
    let asked = ChargeAsked {
        idempotency_key: &request.idempotency_key,
        reference: &request.reference,
        amount: request.amount,
        payment_token: &request.payment_token,
    };
    let payment = charge_for(&state, Payer::Customer, &customer, asked).await?;
    Ok(ConnectResponse::new(pb::ChargeResponse {
        payment: Some(payment),
    }))
}

/// A customer's refund of a charge they made themself.
pub async fn refund(
    caller: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::RefundRequest>,
) -> Result<ConnectResponse<pb::RefundResponse>, ConnectError> {
    let payments = &state.payments;
    let payment = match RefundOf::of(&request.payment_id, &request.idempotency_key)? {
        // Only the caller's own payment (another's is not_found).
        RefundOf::Payment(id) => {
            payments
                .refund(Payer::Customer, &caller.user_id, id)
                .await?
        }
        RefundOf::Key(key) => {
            let customer = customer_of(&caller, &request.customer_id)?;
            payments.refund_key(Payer::Customer, &customer, key).await?
        }
    };
    Ok(ConnectResponse::new(pb::RefundResponse {
        payment: Some(to_proto(payment)),
    }))
}

/// The orders saga's charge for an order (internal OrderPaymentService).
pub async fn charge_order(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ChargeOrderRequest>,
) -> Result<ConnectResponse<pb::ChargeOrderResponse>, ConnectError> {
    let asked = ChargeAsked {
        idempotency_key: &request.idempotency_key,
        reference: &request.reference,
        amount: request.amount,
        payment_token: &request.payment_token,
    };
    let payment = charge_for(&state, Payer::Service, &request.customer_id, asked).await?;
    Ok(ConnectResponse::new(pb::ChargeOrderResponse {
        payment: Some(payment),
    }))
}

/// The orders saga's refund of an order's charge, by payment or by key
/// (internal OrderPaymentService).
pub async fn refund_order(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::RefundOrderRequest>,
) -> Result<ConnectResponse<pb::RefundOrderResponse>, ConnectError> {
    let payments = &state.payments;
    let payment = match RefundOf::of(&request.payment_id, &request.idempotency_key)? {
        RefundOf::Payment(id) => {
            let owner = any_payment(&state, id).await?.user_id;
            payments.refund(Payer::Service, &owner, id).await?
        }
        RefundOf::Key(key) => {
            if request.customer_id.is_empty() {
                return Err(PaymentsError::invalid(
                    "customer_id",
                    "name the customer the charge was for",
                )
                .into());
            }
            payments
                .refund_key(Payer::Service, &request.customer_id, key)
                .await?
        }
    };
    Ok(ConnectResponse::new(pb::RefundOrderResponse {
        payment: Some(to_proto(payment)),
    }))
}

pub async fn check_payment_token(
    _caller: Caller,
    Valid(request): Valid<pb::CheckPaymentTokenRequest>,
) -> Result<ConnectResponse<pb::CheckPaymentTokenResponse>, ConnectError> {
    crate::domain::recognize(&request.payment_token)?;
    Ok(ConnectResponse::new(pb::CheckPaymentTokenResponse {}))
}

pub async fn get_payment(
    caller: Caller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::GetPaymentRequest>,
) -> Result<ConnectResponse<pb::GetPaymentResponse>, ConnectError> {
    let payment = visible_payment(&state, &caller, &request.payment_id).await?;
    Ok(ConnectResponse::new(pb::GetPaymentResponse {
        payment: Some(to_proto(payment)),
    }))
}
