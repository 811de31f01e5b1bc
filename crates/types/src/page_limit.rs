//! How many items one page of a listing may hold.

use std::fmt;

/// A page size: always within [`PageLimit::MIN`]..=[`PageLimit::MAX`].
///
/// Every listing (books, orders, deliveries) pages by this one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageLimit(u32);

/// A page size outside the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page limit must be between {min} and {max}, got {got}", min = PageLimit::MIN, max = PageLimit::MAX)]
pub struct PageLimitError {
    /// The rejected limit.
    pub got: u64,
}

impl PageLimit {
    /// The smallest page.
    pub const MIN: u32 = 1;
    /// The largest page.
    pub const MAX: u32 = 100;
    /// The page size when the client does not ask for one.
    pub const DEFAULT: u32 = 20;

    /// Checks that `limit` is within `MIN..=MAX`.
    pub fn new(limit: u64) -> Result<Self, PageLimitError> {
        match u32::try_from(limit) {
            Ok(value) if (Self::MIN..=Self::MAX).contains(&value) => Ok(Self(value)),
            _ => Err(PageLimitError { got: limit }),
        }
    }

    /// `limit` brought into range: smaller limits are raised to `MIN`, larger ones lowered
    /// to `MAX`. For stores whose callers pass a plain number.
    pub fn clamped(limit: u64) -> Self {
        // Lossless: the clamped value is at most `MAX`.
        Self(limit.clamp(u64::from(Self::MIN), u64::from(Self::MAX)) as u32)
    }

    /// The number of items.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    /// [`PageLimit::DEFAULT`] items.
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl fmt::Display for PageLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_outside_one_to_one_hundred_are_rejected() {
        for (limit, accepted) in [
            (0, false),
            (1, true),
            (20, true),
            (100, true),
            (101, false),
            (u64::from(u32::MAX) + 1, false),
            (u64::MAX, false),
        ] {
            match PageLimit::new(limit) {
                Ok(page_limit) => {
                    assert!(accepted, "limit {limit} was accepted");
                    assert_eq!(u64::from(page_limit.get()), limit);
                }
                Err(error) => {
                    assert!(!accepted, "limit {limit} was rejected");
                    assert_eq!(error, PageLimitError { got: limit });
                }
            }
        }
    }

    #[test]
    fn the_default_page_limit_is_twenty() {
        assert_eq!(PageLimit::default().get(), 20);
    }

    #[test]
    fn an_invalid_page_limit_names_the_allowed_range() {
        assert_eq!(
            PageLimit::new(0).unwrap_err().to_string(),
            "page limit must be between 1 and 100, got 0"
        );
    }

    #[test]
    fn clamping_raises_small_limits_lowers_large_ones_and_keeps_the_rest() {
        for (limit, clamped) in [
            (0, 1),
            (1, 1),
            (37, 37),
            (100, 100),
            (101, 100),
            (u64::MAX, 100),
        ] {
            assert_eq!(PageLimit::clamped(limit).get(), clamped, "limit {limit}");
        }
    }
}
