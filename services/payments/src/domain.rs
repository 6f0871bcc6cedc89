//! The payments rules, pure: what a valid charge is, and how the fake
//! processor answers (deterministically, from the payment token).

use shop_kit::db::StorageError;

use crate::error::PaymentsError;

/// An amount to charge: a positive integer of the currency's minor unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount {
    pub currency_code: String,
    pub minor_units: i64,
}

impl Amount {
    pub fn new(currency_code: &str, minor_units: i64) -> Result<Self, PaymentsError> {
        if currency_code.len() != 3 || !currency_code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PaymentsError::invalid(
                "amount.currency_code",
                format!("{currency_code:?} is not an ISO 4217 code such as \"EUR\""),
            ));
        }
        if minor_units <= 0 {
            return Err(PaymentsError::invalid(
                "amount.minor_units",
                "must be positive",
            ));
        }
        Ok(Self {
            currency_code: currency_code.to_owned(),
            minor_units,
        })
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.minor_units, self.currency_code)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    Captured,
    Refunded,
    /// A key refunded before any charge was made with it: none will be.
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
        }
    }

    /// A stored status; anything else is a corrupt record, never a guess.
    pub fn parse(stored: &str) -> Result<Self, PaymentsError> {
        match stored {
            "captured" => Ok(Self::Captured),
            "refunded" => Ok(Self::Refunded),
            "voided" => Ok(Self::Voided),
            other => Err(StorageError::unknown("status", other).into()),
        }
    }
}

/// Who made a charge, and so who may undo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payer {
    /// The customer, for themself.
    Customer,
    /// One of the shop's services on the customer's behalf (the orders
    /// saga's charge for an order): only a service may refund or void it.
    Service,
}

impl Payer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Service => "service",
        }
    }

    pub fn parse(stored: &str) -> Result<Self, PaymentsError> {
        match stored {
            "customer" => Ok(Self::Customer),
            "service" => Ok(Self::Service),
            other => Err(StorageError::unknown("charged_by", other).into()),
        }
    }

    /// Whether a caller who is `self` may refund or void what `made_by` charged.
    pub fn may_undo(self, made_by: Payer) -> bool {
        self == Self::Service || made_by == Self::Customer
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub user_id: String,
    pub reference: String,
    pub amount: Amount,
    pub status: PaymentStatus,
    pub charged_by: Payer,
}

/// A charge as asked for, unchecked.
#[derive(Clone, Copy, Debug)]
pub struct Charge<'a> {
    pub customer: &'a str,
    pub payer: Payer,
    pub idempotency_key: &'a str,
    pub reference: &'a str,
    pub currency_code: &'a str,
    pub minor_units: i64,
    pub payment_token: &'a str,
}

/// An idempotency key chosen by the caller.
pub fn idempotency_key(key: &str) -> Result<&str, PaymentsError> {
    if key.is_empty() || key.len() > 100 {
        return Err(PaymentsError::invalid(
            "idempotency_key",
            "must be 1 to 100 characters",
        ));
    }
    Ok(key)
}

/// The tokens the fake processor issued.
const ISSUED_TOKENS: [&str; 3] = ["tok_visa", "tok_declined", "tok_unavailable"];

/// Whether the processor issued `payment_token` (whatever it would answer
/// to a charge).
pub fn recognize(payment_token: &str) -> Result<(), PaymentsError> {
    match payment_token {
        "" => Err(PaymentsError::invalid("payment_token", "is required")),
        token if ISSUED_TOKENS.contains(&token) => Ok(()),
        other => Err(PaymentsError::UnknownToken {
            token: other.chars().take(64).collect(),
        }),
    }
}

/// The fake processor: `tok_visa` is accepted, `tok_declined` declined,
/// `tok_unavailable` the processor being down; other tokens are unknown.
pub fn authorize(payment_token: &str) -> Result<(), PaymentsError> {
    recognize(payment_token)?;
    match payment_token {
        "tok_declined" => Err(PaymentsError::Declined {
            reason: "CARD_DECLINED",
        }),
        "tok_unavailable" => Err(PaymentsError::ProcessorUnavailable),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_processor_answers_by_token() {
        assert!(authorize("tok_visa").is_ok());
        assert!(matches!(
            authorize("tok_declined"),
            Err(PaymentsError::Declined { .. })
        ));
        assert!(matches!(
            authorize("tok_unavailable"),
            Err(PaymentsError::ProcessorUnavailable)
        ));
        assert!(matches!(
            authorize("tok_other"),
            Err(PaymentsError::UnknownToken { .. })
        ));
        assert!(matches!(
            authorize(""),
            Err(PaymentsError::InvalidArgument {
                field: "payment_token",
                ..
            })
        ));
        // Every issued token is recognized, whatever a charge would say.
        for token in ISSUED_TOKENS {
            assert!(recognize(token).is_ok(), "{token}");
        }
    }

    #[test]
    fn stored_values_are_read_strictly() {
        assert_eq!(
            PaymentStatus::parse("voided").ok(),
            Some(PaymentStatus::Voided)
        );
        assert_eq!(Payer::parse("customer").ok(), Some(Payer::Customer));
        for unknown in ["", "Captured", "chargeback"] {
            assert!(matches!(
                PaymentStatus::parse(unknown),
                Err(PaymentsError::Storage(StorageError::CorruptRecord(_)))
            ));
            assert!(Payer::parse(unknown).is_err());
        }
    }

    #[test]
    fn only_the_shop_undoes_the_shops_charges() {
        assert!(Payer::Service.may_undo(Payer::Service));
        assert!(Payer::Service.may_undo(Payer::Customer));
        assert!(Payer::Customer.may_undo(Payer::Customer));
        assert!(!Payer::Customer.may_undo(Payer::Service));
    }

    #[test]
    fn amounts_are_positive_integers_in_an_iso_currency() {
        assert!(Amount::new("EUR", 1).is_ok());
        assert!(Amount::new("EUR", 0).is_err());
        assert!(Amount::new("eur", 10).is_err());
    }
}
