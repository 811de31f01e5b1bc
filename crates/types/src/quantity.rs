//! How many copies of one book a line asks for.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A number of copies on one order line: always within [`Quantity::MIN`]..=[`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

/// A quantity outside the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be between {min} and {max}, got {got}", min = Quantity::MIN, max = Quantity::MAX)]
pub struct QuantityError {
    /// The rejected value.
    pub got: u64,
}

impl Quantity {
    /// The smallest quantity a line may ask for.
    pub const MIN: u32 = 1;
    /// The largest quantity a line may ask for (after merging lines for the same ISBN).
    pub const MAX: u32 = 100;

    /// Checks that `value` is within `MIN..=MAX`.
    pub fn new(value: u64) -> Result<Self, QuantityError> {
        match u32::try_from(value) {
            Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(Self(v)),
            _ => Err(QuantityError { got: value }),
        }
    }

    /// The number of copies.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The sum of two quantities, if it is still within range (used when merging lines).
    pub fn checked_add(self, other: Quantity) -> Result<Self, QuantityError> {
        Self::new(u64::from(self.0) + u64::from(other.0))
    }
}

impl TryFrom<u32> for Quantity {
    type Error = QuantityError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(u64::from(value))
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_outside_one_to_one_hundred_are_rejected() {
        for (value, ok) in [
            (0, false),
            (1, true),
            (50, true),
            (100, true),
            (101, false),
            (u64::MAX, false),
        ] {
            assert_eq!(Quantity::new(value).is_ok(), ok, "quantity {value}");
        }
    }

    #[test]
    fn merging_quantities_past_the_maximum_fails() {
        let sixty = Quantity::new(60).unwrap();
        assert_eq!(
            sixty.checked_add(Quantity::new(40).unwrap()).unwrap().get(),
            100
        );
        assert_eq!(sixty.checked_add(sixty), Err(QuantityError { got: 120 }));
    }
}
