//! What payments publishes: `payment.captured` and `payment.refunded`,
//! written to the outbox in the transaction that records the money moving.

use serde::Serialize;
use shop_kit::events::Event;

use crate::domain::{Payment, PaymentStatus};

/// Payments' name on events and in its event tables.
pub const SERVICE: &str = "payments";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentFacts<'a> {
    payment_id: &'a str,
    customer_id: &'a str,
    reference: &'a str,
    currency_code: &'a str,
    minor_units: i64,
}

/// The event for `payment` having reached its status (captured or
/// refunded); `None` for a voided key, where no money moved.
pub fn payment_event(payment: &Payment) -> Option<Event> {
    let (event_type, version) = match payment.status {
        PaymentStatus::Captured => ("payment.captured", 1),
        PaymentStatus::Refunded => ("payment.refunded", 2),
        PaymentStatus::Voided => return None,
    };
    let facts = PaymentFacts {
        payment_id: &payment.id,
        customer_id: &payment.user_id,
        reference: &payment.reference,
        currency_code: &payment.amount.currency_code,
        minor_units: payment.amount.minor_units,
    };
    Some(Event::new(
        SERVICE,
        event_type,
        &payment.id,
        version,
        serde_json::json!(facts),
    ))
}
