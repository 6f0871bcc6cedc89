//! What orders publishes: `order.created`, `order.confirmed` and
//! `order.cancelled`, each carrying the order as it is after the change (so
//! a consumer needs nothing else, and can ignore older versions). Orders
//! consumes them too: durably for the order history behind ListOrders
//! (`store::History`), live for WatchOrder streams (`feed`).

use serde::{Deserialize, Serialize};
use shop_kit::events::Event;

use crate::{
    domain::{Line, Order, OrderStatus},
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
    pub cancel_reason: String,
    pub currency_code: String,
    pub total_minor_units: i64,
    pub items: Vec<ItemSnapshot>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl OrderSnapshot {
    pub fn of(order: &Order) -> Self {
        Self {
            id: order.id.clone(),
            user_id: order.user_id.clone(),
            status: order.status.as_str().to_owned(),
            cancel_reason: order.cancel_reason.clone(),
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
            cancel_reason: self.cancel_reason,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            version: version.max(1),
        })
    }
}

/// The event telling that `order` now is what it is.
pub fn order_event(order: &Order, traceparent: &str) -> Event {
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
        traceparent,
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
