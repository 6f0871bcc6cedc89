//! What orders publishes: `order.created`, `order.confirmed` and
//! `order.cancelled`, each carrying the order as it is after the change (so
//! a consumer needs nothing else, and can ignore older versions). Orders
//! consumes them too: durably for the order history behind ListOrders
//! (`store::History`), live for WatchOrder streams (`feed`).

use serde::{Deserialize, Serialize};
use shop_kit::{db::StorageError, events::Event};

use crate::{
    domain::{CancelReason, Cancellation, Line, Order, OrderStatus},
    error::OrdersError,
};

/// Orders' name on events and in its event tables.
pub const SERVICE: &str = "orders";
/// Prefix of every order event type.
pub const ORDER_EVENTS: &str = "order.";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSnapshot {
    pub product_id: String,
    pub product_name: String,
    pub quantity: i32,
    pub unit_price_minor_units: i64,
}

/// An order as an event carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSnapshot {
    pub id: String,
    pub user_id: String,
    pub status: String,
    /// Empty, or a `CancelReason` as stored.
    pub cancel_reason: String,
    /// Its words for the customer. Absent only in events of versions that
    /// kept words alone in `cancel_reason` (their reason is read from the
    /// words: [`CancelReason::of_legacy_words`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_message: Option<String>,
    pub currency_code: String,
    pub total_minor_units: i64,
    pub items: Vec<ItemSnapshot>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl OrderSnapshot {
    pub fn of(order: &Order) -> Self {
        let (cancel_reason, cancel_message) = Cancellation::to_stored(order.cancellation.as_ref());
        Self {
            id: order.id.clone(),
            user_id: order.user_id.clone(),
            status: order.status.as_str().to_owned(),
            cancel_reason: cancel_reason.to_owned(),
            cancel_message: Some(cancel_message),
            currency_code: order.currency_code.clone(),
            total_minor_units: order.total_minor_units,
            items: order
                .lines
                .iter()
                .map(|line| ItemSnapshot {
                    product_id: line.product_id.clone(),
                    product_name: line.product_name.clone(),
                    quantity: line.quantity,
                    unit_price_minor_units: line.unit_price_minor_units,
                })
                .collect(),
            created_at_ms: order.created_at_ms,
            updated_at_ms: order.updated_at_ms,
        }
    }

    pub fn into_order(self, version: i64) -> Result<Order, OrdersError> {
        let cancellation = match &self.cancel_message {
            Some(message) => Cancellation::from_stored(&self.cancel_reason, message)?,
            None if self.cancel_reason.is_empty() => None,
            None => {
                let reason = CancelReason::of_legacy_words(&self.cancel_reason)
                    .ok_or_else(|| StorageError::unknown("cancel_reason", &self.cancel_reason))?;
                Some(Cancellation::new(reason, self.cancel_reason.as_str()))
            }
        };
        Ok(Order {
            id: self.id,
            user_id: self.user_id,
            lines: self
                .items
                .into_iter()
                .map(|item| Line {
                    product_id: item.product_id,
                    product_name: item.product_name,
                    quantity: item.quantity,
                    unit_price_minor_units: item.unit_price_minor_units,
                })
                .collect(),
            currency_code: self.currency_code,
            total_minor_units: self.total_minor_units,
            status: OrderStatus::parse(&self.status)?,
            cancellation,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            version: version.max(1),
        })
    }
}

/// The event telling that `order` now is what it is.
pub fn order_event(order: &Order) -> Event {
    let event_type = match order.status {
        OrderStatus::Pending => "order.created",
        OrderStatus::Confirmed => "order.confirmed",
        OrderStatus::Cancelled => "order.cancelled",
    };
    Event::new(
        SERVICE,
        event_type,
        &order.id,
        order.version,
        serde_json::json!(OrderSnapshot::of(order)),
    )
}

/// The order an event carries.
pub fn order_of(event: &Event) -> Result<Order, String> {
    let snapshot: OrderSnapshot =
        serde_json::from_value(event.data.clone()).map_err(|e| e.to_string())?;
    snapshot
        .into_order(event.version)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cancelled(data: serde_json::Value) -> Result<Order, String> {
        order_of(&Event::new(SERVICE, "order.cancelled", "o1", 3, data))
    }

    fn snapshot(cancellation: serde_json::Value) -> serde_json::Value {
        let mut data = json!({
            "id": "o1", "userId": "ada", "status": "cancelled", "currencyCode": "EUR",
            "totalMinorUnits": 100, "items": [], "createdAtMs": 1, "updatedAtMs": 2,
        });
        for (key, value) in cancellation.as_object().expect("fields") {
            data[key] = value.clone();
        }
        data
    }

    #[test]
    fn a_cancellation_travels_as_reason_and_words() {
        let order = Order {
            id: "o1".into(),
            user_id: "ada".into(),
            lines: Vec::new(),
            currency_code: "EUR".into(),
            total_minor_units: 100,
            status: OrderStatus::Cancelled,
            cancellation: Some(Cancellation::new(
                CancelReason::OutOfStock,
                "out of stock: p1",
            )),
            created_at_ms: 1,
            updated_at_ms: 2,
            version: 3,
        };
        let event = order_event(&order);
        assert_eq!(event.data["cancelReason"], "out_of_stock");
        assert_eq!(event.data["cancelMessage"], "out of stock: p1");
        assert_eq!(order_of(&event), Ok(order));
    }

    #[test]
    fn events_of_earlier_versions_have_their_reason_read_from_the_words() {
        let order = cancelled(snapshot(json!({"cancelReason": "your card was declined"})))
            .expect("an earlier version's event");
        assert_eq!(
            order.cancellation,
            Some(Cancellation::new(
                CancelReason::CardDeclined,
                "your card was declined"
            ))
        );
        // Words no version wrote, or a reason this one does not know: the
        // event is malformed, never read as some reason.
        assert!(cancelled(snapshot(json!({"cancelReason": "a meteor"}))).is_err());
        assert!(
            cancelled(snapshot(
                json!({"cancelReason": "fraud", "cancelMessage": "x"})
            ))
            .is_err()
        );
    }
}
