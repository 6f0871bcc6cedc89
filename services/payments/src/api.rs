//! RPC handlers of `shop.payments.v1.PaymentService`.

use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::{
    RequestRules, auth::Caller, observe::trace_context::TraceParent, rpc::connect_errors::refusal,
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
                Code::InvalidArgument,
                error.to_string(),
                "UNKNOWN_PAYMENT_TOKEN",
                DOMAIN,
            ),
            PaymentsError::ProcessorUnavailable => {
                ConnectError::new(Code::Unavailable, error.to_string())
            }
            PaymentsError::KeyReused { .. } => refusal(
                Code::FailedPrecondition,
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
            PaymentsError::CorruptRecord(_) => {
                tracing::error!(%error, "payments record unreadable");
                ConnectError::new(Code::Internal, "internal error")
            }
            PaymentsError::Database(db) => {
                tracing::error!(error = %db, "payments database error");
                ConnectError::new(Code::Unavailable, "the payments database is unavailable")
            }
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
        amount: Some(Money {
            currency_code: payment.amount.currency_code,
            minor_units: payment.amount.minor_units,
        }),
        status: status.into(),
        customer_id: payment.user_id,
    }
}

/// Who is paying: a service on a customer's behalf, or the customer.
fn payer(caller: &Caller) -> Payer {
    if caller.service().is_some() {
        Payer::Service
    } else {
        Payer::Customer
    }
}

/// Whom a charge is for: a service names the customer; a customer is
/// themself and may not charge someone else.
fn customer_of(caller: &Caller, customer_id: &str) -> Result<String, PaymentsError> {
    match caller.service() {
        Some(_) if customer_id.is_empty() => Err(PaymentsError::invalid(
            "customer_id",
            "a service must name the customer",
        )),
        Some(_) => Ok(customer_id.to_owned()),
        None if customer_id.is_empty() || customer_id == caller.user_id => {
            Ok(caller.user_id.clone())
        }
        None => Err(PaymentsError::NotYourself),
    }
}

/// The caller's own payment; any payment for the shop's services.
async fn visible_payment(
    state: &AppState,
    caller: &Caller,
    payment_id: &str,
) -> Result<Payment, PaymentsError> {
    match caller.service() {
        Some(_) => state
            .payments
            .store()
            .by_id(payment_id)
            .await?
            .ok_or_else(|| PaymentsError::NotFound {
                id: payment_id.to_owned(),
            }),
        None => state.payments.own(&caller.user_id, payment_id).await,
    }
}

pub async fn charge(
    caller: Caller,
    trace: TraceParent,
    State(state): State<AppState>,
    rules: RequestRules,
    ConnectRequest(request): ConnectRequest<pb::ChargeRequest>,
) -> Result<ConnectResponse<pb::ChargeResponse>, ConnectError> {
    let request = rules.check(request)?;
    let amount = request.amount.unwrap_or_default();
    let customer = customer_of(&caller, &request.customer_id)?;
    let payment = state
        .payments
        .charge(
            &Charge {
                customer: &customer,
                payer: payer(&caller),
                idempotency_key: &request.idempotency_key,
                reference: &request.reference,
                currency_code: &amount.currency_code,
                minor_units: amount.minor_units,
                payment_token: &request.payment_token,
            },
            &trace,
        )
        .await?;
    Ok(ConnectResponse::new(pb::ChargeResponse {
        payment: Some(to_proto(payment)),
    }))
}

pub async fn refund(
    caller: Caller,
    trace: TraceParent,
    State(state): State<AppState>,
    rules: RequestRules,
    ConnectRequest(request): ConnectRequest<pb::RefundRequest>,
) -> Result<ConnectResponse<pb::RefundResponse>, ConnectError> {
    let request = rules.check(request)?;
    let payment = match (
        request.payment_id.is_empty(),
        request.idempotency_key.is_empty(),
    ) {
        (false, true) => {
            let owner = visible_payment(&state, &caller, &request.payment_id)
                .await?
                .user_id;
            state
                .payments
                .refund(payer(&caller), &owner, &request.payment_id, &trace)
                .await?
        }
        (true, false) => {
            let customer = customer_of(&caller, &request.customer_id)?;
            state
                .payments
                .refund_key(payer(&caller), &customer, &request.idempotency_key, &trace)
                .await?
        }
        _ => {
            return Err(PaymentsError::invalid(
                "payment_id",
                "name the payment, or else the charge's idempotency_key",
            )
            .into());
        }
    };
    Ok(ConnectResponse::new(pb::RefundResponse {
        payment: Some(to_proto(payment)),
    }))
}

pub async fn check_payment_token(
    _caller: Caller,
    rules: RequestRules,
    ConnectRequest(request): ConnectRequest<pb::CheckPaymentTokenRequest>,
) -> Result<ConnectResponse<pb::CheckPaymentTokenResponse>, ConnectError> {
    let request = rules.check(request)?;
    crate::domain::recognize(&request.payment_token)?;
    Ok(ConnectResponse::new(pb::CheckPaymentTokenResponse {}))
}

pub async fn get_payment(
    caller: Caller,
    State(state): State<AppState>,
    rules: RequestRules,
    ConnectRequest(request): ConnectRequest<pb::GetPaymentRequest>,
) -> Result<ConnectResponse<pb::GetPaymentResponse>, ConnectError> {
    let request = rules.check(request)?;
    let payment = visible_payment(&state, &caller, &request.payment_id).await?;
    Ok(ConnectResponse::new(pb::GetPaymentResponse {
        payment: Some(to_proto(payment)),
    }))
}
