//! Who owns an order.

use std::fmt;

/// Who owns an order: an opaque, non-secret principal id chosen by the caller.
///
/// The gateway uses a hash of the API key, never the key itself. Two orders belong to the
/// same customer exactly when their ids are equal (byte for byte).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(String);

impl CustomerId {
    /// Wraps a principal id. The value must not be a secret: it is stored and may be logged.
    pub fn new(principal: impl Into<String>) -> Self {
        Self(principal.into())
    }

    /// The principal id as given to [`CustomerId::new`].
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_compare_by_their_exact_text() {
        assert_eq!(
            CustomerId::new("alice"),
            CustomerId::new(String::from("alice"))
        );
        assert_ne!(CustomerId::new("alice"), CustomerId::new("Alice"));
        assert_eq!(CustomerId::new("alice").as_str(), "alice");
    }
}
