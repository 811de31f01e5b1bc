//! Money as an integer number of minor units in one currency.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// A string that is not a three-letter currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a currency is a three-letter ISO 4217 code such as USD")]
pub struct CurrencyError;

impl Currency {
    /// United States dollars, the currency of the demo catalogue.
    pub const USD: Currency = Currency(*b"USD");

    /// Parses a code such as `USD` (case-insensitive; stored upper-case).
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CurrencyError);
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// A non-negative amount of money: whole minor units (cents) of one currency.
///
/// Arithmetic is checked: adding amounts of different currencies or overflowing is an
/// error, never a wrong total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    cents: i64,
    currency: Currency,
}

/// Why an amount of money could not be built or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Amounts are never negative.
    #[error("an amount of money cannot be negative, got {cents}")]
    Negative {
        /// The rejected amount.
        cents: i64,
    },
    /// The result does not fit in 64 bits.
    #[error("the amount is too large")]
    Overflow,
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} and {right}")]
    CurrencyMismatch {
        /// The currency of the left operand.
        left: Currency,
        /// The currency of the right operand.
        right: Currency,
    },
}

impl Money {
    /// An amount of `cents` minor units; fails if negative.
    pub fn from_cents(cents: i64, currency: Currency) -> Result<Self, MoneyError> {
        if cents < 0 {
            return Err(MoneyError::Negative { cents });
        }
        Ok(Self { cents, currency })
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self { cents: 0, currency }
    }

    /// The amount in minor units.
    pub const fn cents(&self) -> i64 {
        self.cents
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// `self + other`, if both are in one currency and the sum fits.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        let cents = self
            .cents
            .checked_add(other.cents)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            cents,
            currency: self.currency,
        })
    }

    /// `self × factor`, if the product fits.
    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        let cents = self
            .cents
            .checked_mul(i64::from(factor))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            cents,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cents, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(cents: i64) -> Money {
        Money::from_cents(cents, Currency::USD).unwrap()
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert_eq!(
            Money::from_cents(-1, Currency::USD),
            Err(MoneyError::Negative { cents: -1 })
        );
        assert_eq!(usd(0), Money::zero(Currency::USD));
    }

    #[test]
    fn amounts_in_different_currencies_cannot_be_added() {
        let eur = Money::from_cents(100, Currency::parse("eur").unwrap()).unwrap();
        assert!(matches!(
            usd(100).checked_add(eur),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        for bad in ["", "US", "USDX", "U$D", "12A"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn checked_add_matches_integer_addition_or_reports_overflow(a in 0i64.., b in 0i64..) {
            match a.checked_add(b) {
                Some(sum) => prop_assert_eq!(usd(a).checked_add(usd(b)).unwrap().cents(), sum),
                None => prop_assert_eq!(usd(a).checked_add(usd(b)), Err(MoneyError::Overflow)),
            }
        }

        #[test]
        fn checked_mul_matches_integer_multiplication_or_reports_overflow(a in 0i64.., k in 0u32..) {
            match a.checked_mul(i64::from(k)) {
                Some(product) => prop_assert_eq!(usd(a).checked_mul(k).unwrap().cents(), product),
                None => prop_assert_eq!(usd(a).checked_mul(k), Err(MoneyError::Overflow)),
            }
        }

        #[test]
        fn addition_is_commutative(a in 0i64..i64::MAX / 2, b in 0i64..i64::MAX / 2) {
            prop_assert_eq!(usd(a).checked_add(usd(b)), usd(b).checked_add(usd(a)));
        }
    }
}
