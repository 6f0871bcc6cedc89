//! Why an order was cancelled: a reason programs branch on, and words for
//! the customer beside it.

use shop_kit::db::StorageError;

use crate::error::OrdersError;

/// The reasons an order is cancelled for (proto `CancelReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The catalog had too few of a product.
    OutOfStock,
    /// A product left the catalog.
    NotInCatalog,
    CardDeclined,
    /// The processor refused the payment otherwise.
    PaymentRefused,
    /// The customer asked (CancelOrder).
    CustomerRequest,
    /// The shop's services could not complete it before its deadline.
    TimedOut,
    /// The stock set aside for it was lost before it was sold.
    StockLost,
}

impl CancelReason {
    const ALL: [Self; 7] = [
        Self::OutOfStock,
        Self::NotInCatalog,
        Self::CardDeclined,
        Self::PaymentRefused,
        Self::CustomerRequest,
        Self::TimedOut,
        Self::StockLost,
    ];

    /// As stored and published.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::NotInCatalog => "not_in_catalog",
            Self::CardDeclined => "card_declined",
            Self::PaymentRefused => "payment_refused",
            Self::CustomerRequest => "customer_request",
            Self::TimedOut => "timed_out",
            Self::StockLost => "stock_lost",
        }
    }

    /// A stored (or published) reason; anything else is a corrupt record.
    pub fn parse(stored: &str) -> Result<Self, OrdersError> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == stored)
            .ok_or_else(|| StorageError::unknown("cancel_reason", stored).into())
    }

    /// The reason behind the words an order was cancelled with before
    /// reasons were stored apart (the words this service used to write,
    /// each beginning its own way); `None` for words it never wrote.
    pub fn of_legacy_words(words: &str) -> Option<Self> {
        LEGACY_WORDS
            .iter()
            .find(|(start, _)| words.starts_with(start))
            .map(|&(_, reason)| reason)
            .or_else(|| {
                words
                    .ends_with("was unavailable until the order's time ran out")
                    .then_some(Self::TimedOut)
            })
    }
}

/// How the words of each reason began, before reasons were stored apart
/// (the orders migration `m20261123_000005_cancel_reasons` reads the same).
pub const LEGACY_WORDS: [(&str, CancelReason); 9] = [
    ("out of stock", CancelReason::OutOfStock),
    ("no longer in the catalog", CancelReason::NotInCatalog),
    ("your card was declined", CancelReason::CardDeclined),
    ("the payment was refused", CancelReason::PaymentRefused),
    ("the payment was voided", CancelReason::PaymentRefused),
    ("cancelled at your request", CancelReason::CustomerRequest),
    ("not completed in time", CancelReason::TimedOut),
    (
        "the stock reservation was released",
        CancelReason::StockLost,
    ),
    (
        "the stock set aside for it was lost",
        CancelReason::StockLost,
    ),
];

/// Why an order was cancelled, and the same in words for the customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: CancelReason,
    pub message: String,
}

impl Cancellation {
    pub fn new(reason: CancelReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The customer's own request.
    pub fn requested() -> Self {
        Self::new(CancelReason::CustomerRequest, "cancelled at your request")
    }

    /// From its stored columns: both empty (not cancelled), or a known
    /// reason with its words.
    pub fn from_stored(reason: &str, message: &str) -> Result<Option<Self>, OrdersError> {
        if reason.is_empty() {
            return if message.is_empty() {
                Ok(None)
            } else {
                Err(StorageError::unknown("cancel_reason", reason).into())
            };
        }
        Ok(Some(Self::new(CancelReason::parse(reason)?, message)))
    }

    /// Its stored columns: (reason, message), both empty for none.
    pub fn to_stored(cancellation: Option<&Self>) -> (&'static str, String) {
        cancellation.map_or(("", String::new()), |c| {
            (c.reason.as_str(), c.message.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_unknown_ones_are_refused() {
        for reason in CancelReason::ALL {
            assert_eq!(CancelReason::parse(reason.as_str()).ok(), Some(reason));
        }
        for unknown in ["", "OUT_OF_STOCK", "out of stock", "fraud"] {
            assert!(CancelReason::parse(unknown).is_err(), "{unknown}");
        }
        assert_eq!(Cancellation::from_stored("", "").ok(), Some(None));
        assert!(Cancellation::from_stored("", "words without a reason").is_err());
        let declined = Cancellation::new(CancelReason::CardDeclined, "your card was declined");
        let (reason, message) = Cancellation::to_stored(Some(&declined));
        assert_eq!(
            Cancellation::from_stored(reason, &message).ok(),
            Some(Some(declined))
        );
    }

    #[test]
    fn the_words_of_earlier_versions_have_their_reasons() {
        for (words, reason) in [
            (
                "out of stock: p1 (2 wanted, 1 left)",
                CancelReason::OutOfStock,
            ),
            (
                "no longer in the catalog: ghost",
                CancelReason::NotInCatalog,
            ),
            ("your card was declined", CancelReason::CardDeclined),
            (
                "the payment was refused: bad token",
                CancelReason::PaymentRefused,
            ),
            ("the payment was voided", CancelReason::PaymentRefused),
            ("cancelled at your request", CancelReason::CustomerRequest),
            (
                "not completed in time: the shop's services were too slow",
                CancelReason::TimedOut,
            ),
            (
                "the payment service was unavailable until the order's time ran out",
                CancelReason::TimedOut,
            ),
            (
                "the stock reservation was released",
                CancelReason::StockLost,
            ),
            (
                "the stock set aside for it was lost",
                CancelReason::StockLost,
            ),
        ] {
            assert_eq!(
                CancelReason::of_legacy_words(words),
                Some(reason),
                "{words}"
            );
        }
        assert_eq!(CancelReason::of_legacy_words("a meteor"), None);
    }
}
