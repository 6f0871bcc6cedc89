//! RPC handlers of `shop.payments.v1.PaymentService`.

use axum::extract::State;
use connectrpc_axum::prelude::*;
use prost::Message;
use shop_kit::auth::Caller;
use shop_proto::shop::{common::v1::Money, payments::v1 as pb};

use crate::{
    AppState,
    domain::{Payment, PaymentStatus},
    error::PaymentsError,
};

/// `google.rpc.ErrorInfo`, the standard detail that says why.
#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
}

impl From<PaymentsError> for ConnectError {
    fn from(error: PaymentsError) -> Self {
        match &error {
            PaymentsError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            PaymentsError::Declined { reason } => {
                let info = ErrorInfo {
                    reason: (*reason).to_owned(),
                    domain: "payments.connect-shop".to_owned(),
                };
                ConnectError::new(Code::FailedPrecondition, error.to_string())
                    .add_detail("google.rpc.ErrorInfo", info.encode_to_vec())
            }
            PaymentsError::ProcessorUnavailable => {
                ConnectError::new(Code::Unavailable, error.to_string())
            }
            PaymentsError::KeyReused { .. } => {
                ConnectError::new(Code::FailedPrecondition, error.to_string())
            }
            PaymentsError::NotFound { .. } => ConnectError::new(Code::NotFound, error.to_string()),
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
    };
    pb::Payment {
        id: payment.id,
        reference: payment.reference,
        amount: Some(Money {
            currency_code: payment.amount.currency_code,
            minor_units: payment.amount.minor_units,
        }),
        status: status.into(),
        user_id: payment.user_id,
    }
}

pub async fn charge(
    caller: Caller,
    State(state): State<AppState>,
    ConnectRequest(request): ConnectRequest<pb::ChargeRequest>,
) -> Result<ConnectResponse<pb::ChargeResponse>, ConnectError> {
    let amount = request.amount.unwrap_or_default();
    let payment = state
        .payments
        .charge(
            &caller.user_id,
            &request.idempotency_key,
            &request.reference,
            &amount.currency_code,
            amount.minor_units,
            &request.payment_token,
        )
        .await?;
    Ok(ConnectResponse::new(pb::ChargeResponse {
        payment: Some(to_proto(payment)),
    }))
}

pub async fn refund(
    caller: Caller,
    State(state): State<AppState>,
    ConnectRequest(request): ConnectRequest<pb::RefundRequest>,
) -> Result<ConnectResponse<pb::RefundResponse>, ConnectError> {
    let payment = state
        .payments
        .refund(&caller.user_id, &request.payment_id)
        .await?;
    Ok(ConnectResponse::new(pb::RefundResponse {
        payment: Some(to_proto(payment)),
    }))
}

pub async fn get_payment(
    caller: Caller,
    State(state): State<AppState>,
    ConnectRequest(request): ConnectRequest<pb::GetPaymentRequest>,
) -> Result<ConnectResponse<pb::GetPaymentResponse>, ConnectError> {
    let payment = state
        .payments
        .own(&caller.user_id, &request.payment_id)
        .await?;
    Ok(ConnectResponse::new(pb::GetPaymentResponse {
        payment: Some(to_proto(payment)),
    }))
}
