//! The orders rules, pure: what a valid order request is, how it is priced,
//! and how an order's status may move.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use shop_kit::db::StorageError;

use crate::error::OrdersError;

pub mod cancellation;
pub mod saga;

pub use cancellation::{CancelReason, Cancellation};

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i32 = 100;
pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }

    /// A stored (or published) status; anything else is a corrupt record,
    /// never read as pending.
    pub fn parse(stored: &str) -> Result<Self, OrdersError> {
        match stored {
            "pending" => Ok(Self::Pending),
            "confirmed" => Ok(Self::Confirmed),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(StorageError::unknown("status", other).into()),
        }
    }

    /// Final: nothing will change any more.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// One line as the customer asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub product_id: String,
    pub quantity: i32,
}

/// A line with the catalog's name and price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub product_id: String,
    pub product_name: String,
    pub quantity: i32,
    pub unit_price_minor_units: i64,
}

/// What the catalog says of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub name: String,
    pub currency_code: String,
    pub minor_units: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub lines: Vec<Line>,
    pub currency_code: String,
    pub total_minor_units: i64,
    pub status: OrderStatus,
    /// Why it was cancelled (CANCELLED orders only).
    pub cancellation: Option<Cancellation>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// 1 when placed; each status change adds one.
    pub version: i64,
}

#[cfg(test)]
impl Order {
    /// An order of no lines, for tests that care about its id, version and
    /// status only.
    pub fn sample(id: &str, version: i64, status: OrderStatus) -> Self {
        Self {
            id: id.into(),
            user_id: "ada".into(),
            lines: Vec::new(),
            currency_code: "EUR".into(),
            total_minor_units: 100,
            status,
            cancellation: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            version,
        }
    }
}

/// The lines of a CreateOrder call, checked, repeated products merged.
pub fn wanted_lines(lines: &[(String, i32)]) -> Result<Vec<Wanted>, OrdersError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(OrdersError::invalid(
            "items",
            format!("order 1 to {MAX_LINES} products"),
        ));
    }
    let mut wanted: Vec<Wanted> = Vec::new();
    for (product_id, quantity) in lines {
        if product_id.is_empty() {
            return Err(OrdersError::invalid("items.product_id", "is required"));
        }
        if !(1..=MAX_QUANTITY).contains(quantity) {
            return Err(OrdersError::invalid(
                "items.quantity",
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
        match wanted.iter_mut().find(|w| &w.product_id == product_id) {
            Some(line) => line.quantity += quantity,
            None => wanted.push(Wanted {
                product_id: product_id.clone(),
                quantity: *quantity,
            }),
        }
    }
    if let Some(over) = wanted.iter().find(|w| w.quantity > MAX_QUANTITY) {
        return Err(OrdersError::TooManyOfOneProduct {
            product_id: over.product_id.clone(),
            wanted: over.quantity,
            max: MAX_QUANTITY,
        });
    }
    Ok(wanted)
}

pub fn idempotency_key(key: &str) -> Result<&str, OrdersError> {
    if key.is_empty() || key.len() > 100 {
        return Err(OrdersError::invalid(
            "idempotency_key",
            "must be 1 to 100 characters",
        ));
    }
    Ok(key)
}

/// Whether `order`, placed earlier under the same key and paid with
/// `paid_with`, is what a request for `wanted` paid with `payment_token`
/// asks for: the same products in the same quantities (in any order; prices
/// may have moved since) and the same payment token.
pub fn asks_for(order: &Order, paid_with: &str, wanted: &[Wanted], payment_token: &str) -> bool {
    let mut placed: Vec<(&str, i32)> = order
        .lines
        .iter()
        .map(|line| (line.product_id.as_str(), line.quantity))
        .collect();
    let mut asked: Vec<(&str, i32)> = wanted
        .iter()
        .map(|want| (want.product_id.as_str(), want.quantity))
        .collect();
    placed.sort_unstable();
    asked.sort_unstable();
    paid_with == payment_token && placed == asked
}

/// An order's id as a caller names it: never empty (that is a malformed
/// request, not an order that does not exist).
pub fn order_id(id: &str) -> Result<&str, OrdersError> {
    if id.is_empty() {
        return Err(OrdersError::invalid("order_id", "is required"));
    }
    Ok(id)
}

pub fn payment_token(token: &str) -> Result<&str, OrdersError> {
    if token.is_empty() || token.len() > 200 {
        return Err(OrdersError::invalid("payment_token", "is required"));
    }
    Ok(token)
}

/// Prices the lines with the catalog's prices (never the client's): one
/// currency, exact integer total.
pub fn price(
    wanted: &[Wanted],
    prices: &[Priced],
) -> Result<(Vec<Line>, String, i64), OrdersError> {
    let currency = prices
        .first()
        .map(|p| p.currency_code.clone())
        .unwrap_or_default();
    if prices.iter().any(|p| p.currency_code != currency) {
        return Err(OrdersError::invalid(
            "items",
            "the products are priced in different currencies",
        ));
    }
    let mut total: i64 = 0;
    let mut lines = Vec::with_capacity(wanted.len());
    for (want, priced) in wanted.iter().zip(prices) {
        let subtotal = priced
            .minor_units
            .checked_mul(i64::from(want.quantity))
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| OrdersError::invalid("items", "the total is too large"))?;
        total = subtotal;
        lines.push(Line {
            product_id: want.product_id.clone(),
            product_name: priced.name.clone(),
            quantity: want.quantity,
            unit_price_minor_units: priced.minor_units,
        });
    }
    Ok((lines, currency, total))
}

/// Where the next page of a customer's orders starts (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: String,
}

pub fn page_size(requested: i32) -> Result<u64, OrdersError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(OrdersError::invalid("page_size", "must not be negative")),
        n => Ok(u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE)),
    }
}

pub fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.created_at_ms, cursor.id))
}

pub fn decode_cursor(token: &str) -> Result<Option<Cursor>, OrdersError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || OrdersError::PageTokenNotIssued;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    let (at, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Some(Cursor {
        created_at_ms: at.parse().map_err(|_| invalid())?,
        id: id.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_kit::db::UnknownStoredValue;

    #[test]
    fn stored_statuses_and_steps_are_read_strictly() {
        assert_eq!(
            OrderStatus::parse("confirmed").ok(),
            Some(OrderStatus::Confirmed)
        );
        for unknown in ["", "Pending", "shipped"] {
            assert!(matches!(
                OrderStatus::parse(unknown),
                Err(OrdersError::Storage(StorageError::CorruptRecord(
                    UnknownStoredValue {
                        column: "status",
                        ..
                    }
                )))
            ));
            assert_eq!(saga::Step::parse(unknown), None, "{unknown:?}");
        }
    }

    fn priced(name: &str, currency: &str, cents: i64) -> Priced {
        Priced {
            name: name.into(),
            currency_code: currency.into(),
            minor_units: cents,
        }
    }

    #[test]
    fn lines_are_checked_and_merged() {
        let wanted =
            wanted_lines(&[("a".into(), 1), ("b".into(), 2), ("a".into(), 3)]).expect("valid");
        assert_eq!(
            wanted,
            vec![
                Wanted {
                    product_id: "a".into(),
                    quantity: 4
                },
                Wanted {
                    product_id: "b".into(),
                    quantity: 2
                }
            ]
        );
        assert!(wanted_lines(&[]).is_err());
        assert!(wanted_lines(&[("a".into(), 0)]).is_err());
        assert!(wanted_lines(&[("a".into(), 60), ("a".into(), 60)]).is_err());
    }

    #[test]
    fn totals_come_from_catalog_prices_in_one_currency() {
        let wanted = wanted_lines(&[("a".into(), 2), ("b".into(), 1)]).expect("valid");
        let (lines, currency, total) =
            price(&wanted, &[priced("A", "EUR", 1250), priced("B", "EUR", 99)]).expect("priced");
        assert_eq!((currency.as_str(), total), ("EUR", 2599));
        assert_eq!(lines[0].product_name, "A");
        assert!(price(&wanted, &[priced("A", "EUR", 1), priced("B", "USD", 1)]).is_err());
        assert!(
            price(
                &wanted,
                &[priced("A", "EUR", i64::MAX), priced("B", "EUR", 1)]
            )
            .is_err()
        );
    }

    #[test]
    fn cursors_round_trip_and_foreign_tokens_are_refused() {
        let cursor = Cursor {
            created_at_ms: 1_700_000_000_123,
            id: "o-1".into(),
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&cursor)).expect("valid"),
            Some(cursor)
        );
        assert_eq!(decode_cursor("").expect("empty"), None);
        assert!(decode_cursor("%%%").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x:y")).is_err());
    }

    #[test]
    fn only_pending_orders_are_open() {
        assert!(!OrderStatus::Pending.is_final());
        assert!(OrderStatus::Confirmed.is_final() && OrderStatus::Cancelled.is_final());
    }
}
