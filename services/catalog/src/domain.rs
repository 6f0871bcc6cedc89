//! The catalog's rules, pure and without I/O: what a valid product, price,
//! page request and watch request are.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::CatalogError;

/// Products on a page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The most products on one page.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The most products one call may name (WatchStock, BatchGetProducts).
pub const MAX_PRODUCTS_PER_CALL: usize = 100;
const MAX_QUERY_CHARS: usize = 100;
const PAGE_TOKEN_PREFIX: &str = "after-sku:";

/// An exact amount in a currency's minor unit, as ISO 4217 defines it for
/// that currency (its exponent: 2 for EUR, 0 for JPY, 3 for BHD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Money {
    pub currency_code: String,
    pub minor_units: i64,
}

impl Money {
    pub fn new(currency_code: &str, minor_units: i64) -> Result<Self, CatalogError> {
        // A currency with a minor unit, so clients know where its point is
        // (not XAU, XDR and the other units without one).
        let known = iso_currency::Currency::from_code(currency_code)
            .is_some_and(|currency| currency.exponent().is_some());
        if !known {
            return Err(CatalogError::invalid(
                "price.currency_code",
                format!(
                    "{:?} is not an ISO 4217 currency such as \"EUR\"",
                    currency_code.chars().take(16).collect::<String>()
                ),
            ));
        }
        if minor_units < 0 {
            return Err(CatalogError::invalid(
                "price.minor_units",
                "must not be negative",
            ));
        }
        Ok(Self {
            currency_code: currency_code.to_owned(),
            minor_units,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub stock_on_hand: i32,
}

/// A product about to be added, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProduct(Product);

impl NewProduct {
    pub fn new(
        id: impl Into<String>,
        sku: &str,
        name: &str,
        description: &str,
        price: Money,
        stock_on_hand: i32,
    ) -> Result<Self, CatalogError> {
        let id = id.into();
        if id.is_empty() || id.len() > 64 {
            return Err(CatalogError::invalid("id", "must be 1 to 64 characters"));
        }
        let sku_ok = !sku.is_empty()
            && sku.len() <= 32
            && sku
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !sku_ok {
            return Err(CatalogError::invalid(
                "sku",
                "must be 1 to 32 characters of A-Z, 0-9 and '-'",
            ));
        }
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(CatalogError::invalid("name", "must be 1 to 200 characters"));
        }
        if stock_on_hand < 0 {
            return Err(CatalogError::invalid(
                "stock_on_hand",
                "must not be negative",
            ));
        }
        Ok(Self(Product {
            id,
            sku: sku.to_owned(),
            name: name.trim().to_owned(),
            description: description.trim().to_owned(),
            price,
            stock_on_hand,
        }))
    }

    pub fn into_product(self) -> Product {
        self.0
    }
}

/// One page of ListProducts, checked: keyset pagination in SKU order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub after_sku: Option<String>,
    /// Lower-cased text to look for, if any.
    pub query: Option<String>,
}

impl PageRequest {
    pub fn parse(page_size: i32, page_token: &str, query: &str) -> Result<Self, CatalogError> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(CatalogError::invalid("page_size", "must not be negative")),
            n => u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let after_sku = if page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(page_token)?)
        };
        let query = query.trim();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(CatalogError::invalid(
                "query",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        Ok(Self {
            size,
            after_sku,
            query: (!query.is_empty()).then(|| query.to_lowercase()),
        })
    }
}

/// The opaque token that continues a listing after `sku`.
pub fn page_token_after(sku: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_PREFIX}{sku}"))
}

fn decode_page_token(token: &str) -> Result<String, CatalogError> {
    let invalid = || CatalogError::PageTokenNotIssued;
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(PAGE_TOKEN_PREFIX)
        .filter(|sku| !sku.is_empty())
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// The product ids of a call naming several (WatchStock,
/// BatchGetProducts), checked and de-duplicated in order.
pub fn product_ids(ids: &[String]) -> Result<Vec<String>, CatalogError> {
    if ids.is_empty() {
        return Err(CatalogError::invalid(
            "product_ids",
            "name at least one product",
        ));
    }
    if ids.len() > MAX_PRODUCTS_PER_CALL {
        return Err(CatalogError::invalid(
            "product_ids",
            format!("at most {MAX_PRODUCTS_PER_CALL} products per call"),
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if id.is_empty() {
            return Err(CatalogError::invalid("product_ids", "contains an empty id"));
        }
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    Ok(unique)
}

/// The product id of a GetProduct call.
pub fn product_id(id: &str) -> Result<&str, CatalogError> {
    if id.is_empty() {
        return Err(CatalogError::invalid("id", "is required"));
    }
    Ok(id)
}

/// The most lines in one reservation, and units of one product in it.
pub const MAX_RESERVATION_ITEMS: usize = 100;
pub const MAX_RESERVED_QUANTITY: i32 = 1000;

/// Where a stock reservation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservationStatus {
    Reserved,
    Released,
    Committed,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Released => "released",
            Self::Committed => "committed",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Reserved, Self::Released, Self::Committed]
            .into_iter()
            .find(|status| status.as_str() == stored)
    }
}

/// A reservation id chosen by the caller.
pub fn reservation_id(id: &str) -> Result<&str, CatalogError> {
    if id.is_empty() || id.len() > 100 {
        return Err(CatalogError::invalid(
            "reservation_id",
            "must be 1 to 100 characters",
        ));
    }
    Ok(id)
}

/// The lines of a reservation, checked, with repeated products merged.
pub fn stock_items(lines: &[(String, i32)]) -> Result<Vec<(String, i32)>, CatalogError> {
    if lines.is_empty() || lines.len() > MAX_RESERVATION_ITEMS {
        return Err(CatalogError::invalid(
            "items",
            format!("name 1 to {MAX_RESERVATION_ITEMS} products"),
        ));
    }
    let mut merged: Vec<(String, i32)> = Vec::with_capacity(lines.len());
    for (product_id, quantity) in lines {
        if product_id.is_empty() {
            return Err(CatalogError::invalid("items.product_id", "is required"));
        }
        if !(1..=MAX_RESERVED_QUANTITY).contains(quantity) {
            return Err(CatalogError::invalid(
                "items.quantity",
                format!("must be 1 to {MAX_RESERVED_QUANTITY}"),
            ));
        }
        match merged.iter_mut().find(|(id, _)| id == product_id) {
            Some((_, total)) => {
                *total = total
                    .saturating_add(*quantity)
                    .min(MAX_RESERVED_QUANTITY + 1)
            }
            None => merged.push((product_id.clone(), *quantity)),
        }
    }
    if merged
        .iter()
        .any(|(_, quantity)| *quantity > MAX_RESERVED_QUANTITY)
    {
        return Err(CatalogError::invalid(
            "items.quantity",
            format!("must be 1 to {MAX_RESERVED_QUANTITY} per product"),
        ));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_reservation_statuses_are_known_or_refused() {
        for status in [
            ReservationStatus::Reserved,
            ReservationStatus::Released,
            ReservationStatus::Committed,
        ] {
            assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ReservationStatus::parse("refunded"), None);
    }

    fn field_of(error: CatalogError) -> &'static str {
        match error {
            CatalogError::InvalidArgument { field, .. } => field,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn page_size_defaults_caps_and_refuses_negatives() {
        assert_eq!(
            PageRequest::parse(0, "", "").map(|p| p.size).ok(),
            Some(DEFAULT_PAGE_SIZE)
        );
        assert_eq!(
            PageRequest::parse(5000, "", "").map(|p| p.size).ok(),
            Some(MAX_PAGE_SIZE)
        );
        assert_eq!(
            field_of(PageRequest::parse(-1, "", "").expect_err("must be refused")),
            "page_size"
        );
    }

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        let token = page_token_after("MUG-001");
        let page = PageRequest::parse(10, &token, "").expect("valid token");
        assert_eq!(page.after_sku.as_deref(), Some("MUG-001"));
        assert!(matches!(
            PageRequest::parse(10, "not-a-token!", ""),
            Err(CatalogError::PageTokenNotIssued)
        ));
        let foreign = URL_SAFE_NO_PAD.encode("offset:10");
        assert!(matches!(
            PageRequest::parse(10, &foreign, ""),
            Err(CatalogError::PageTokenNotIssued)
        ));
    }

    #[test]
    fn query_is_trimmed_and_lower_cased() {
        let page = PageRequest::parse(0, "", "  Coffee ").expect("valid");
        assert_eq!(page.query.as_deref(), Some("coffee"));
        assert_eq!(PageRequest::parse(0, "", "   ").expect("valid").query, None);
        assert_eq!(
            field_of(PageRequest::parse(0, "", &"x".repeat(101)).expect_err("must be refused")),
            "query"
        );
    }

    #[test]
    fn money_is_an_iso_code_and_a_non_negative_integer() {
        for code in ["EUR", "JPY", "BHD", "USD"] {
            assert!(Money::new(code, 1999).is_ok(), "{code}");
        }
        // Not ISO 4217, or without a minor unit to count in.
        for code in ["eur", "XYZ", "XAU", ""] {
            assert_eq!(
                field_of(Money::new(code, 1).expect_err("must be refused")),
                "price.currency_code",
                "{code}"
            );
        }
        assert_eq!(
            field_of(Money::new("EURO", 1).expect_err("must be refused")),
            "price.currency_code"
        );
        assert_eq!(
            field_of(Money::new("EUR", -1).expect_err("must be refused")),
            "price.minor_units"
        );
    }

    #[test]
    fn new_products_are_checked() {
        let price = Money::new("EUR", 100).expect("price");
        assert!(NewProduct::new("p1", "MUG-001", "Mug", "", price.clone(), 3).is_ok());
        let bad_sku = NewProduct::new("p1", "mug 1", "Mug", "", price.clone(), 3)
            .expect_err("must be refused");
        assert_eq!(field_of(bad_sku), "sku");
        let no_name = NewProduct::new("p1", "MUG-001", " ", "", price.clone(), 3)
            .expect_err("must be refused");
        assert_eq!(field_of(no_name), "name");
        let negative =
            NewProduct::new("p1", "MUG-001", "Mug", "", price, -1).expect_err("must be refused");
        assert_eq!(field_of(negative), "stock_on_hand");
    }

    #[test]
    fn reservation_lines_are_checked_and_merged() {
        let lines =
            stock_items(&[("a".into(), 2), ("b".into(), 1), ("a".into(), 3)]).expect("valid");
        assert_eq!(lines, vec![("a".to_owned(), 5), ("b".to_owned(), 1)]);
        assert_eq!(
            field_of(stock_items(&[]).expect_err("must be refused")),
            "items"
        );
        assert_eq!(
            field_of(stock_items(&[("a".into(), 0)]).expect_err("must be refused")),
            "items.quantity"
        );
        assert_eq!(
            field_of(stock_items(&[("".into(), 1)]).expect_err("must be refused")),
            "items.product_id"
        );
        let too_many = [("a".to_owned(), 600), ("a".to_owned(), 600)];
        assert_eq!(
            field_of(stock_items(&too_many).expect_err("must be refused")),
            "items.quantity"
        );
        assert_eq!(
            field_of(reservation_id("").expect_err("must be refused")),
            "reservation_id"
        );
    }

    #[test]
    fn watch_requests_need_one_to_a_hundred_distinct_ids() {
        assert_eq!(
            field_of(product_ids(&[]).expect_err("must be refused")),
            "product_ids"
        );
        let many: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
        assert_eq!(
            field_of(product_ids(&many).expect_err("must be refused")),
            "product_ids"
        );
        let ids = product_ids(&["a".into(), "b".into(), "a".into()]).expect("valid");
        assert_eq!(ids, vec!["a".to_owned(), "b".to_owned()]);
    }
}
