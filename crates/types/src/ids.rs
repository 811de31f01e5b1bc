//! Identifiers: UUID newtypes, one type per kind of id so that an order id can never be
//! passed where a delivery id is expected.
//!
//! [`uuid_id!`](crate::uuid_id) defines such a type; every domain uses it, so all ids behave
//! alike: `generate` (time-ordered UUID v7), `from_uuid`, `as_uuid`, `Display` as a
//! lowercase hyphenated UUID, and `FromStr`.

/// Defines a UUID newtype id: `uuid_id! { /// docs \n pub struct OrderId; }`.
///
/// The type gets `generate()` (a new, time-ordered UUID v7), `from_uuid`, `as_uuid`,
/// `Display` (lowercase hyphenated) and `FromStr`, and derives `Debug`, `Clone`, `Copy`,
/// `PartialEq`, `Eq`, `Hash`, `PartialOrd` and `Ord`.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$attribute:meta])* $visibility:vis struct $name:ident;) => {
        $(#[$attribute])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $visibility struct $name($crate::uuid::Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn generate() -> Self {
                Self($crate::uuid::Uuid::now_v7())
            }

            /// Wraps an existing UUID, e.g. one read from a URL or a database row.
            pub const fn from_uuid(uuid: $crate::uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> $crate::uuid::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id! {
    /// The id of an order. Sales creates it; delivery refers to it.
    pub struct OrderId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_render_as_lowercase_hyphenated_uuids() {
        let id: OrderId = "67E55044-10B1-426F-9247-BB680E5FE0C8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(OrderId::from_uuid(id.as_uuid()), id);
    }

    #[test]
    fn generated_order_ids_are_distinct_and_time_ordered() {
        let first = OrderId::generate();
        let second = OrderId::generate();
        assert_ne!(first, second);
        assert!(first < second);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        assert!("not-a-uuid".parse::<OrderId>().is_err());
    }
}
