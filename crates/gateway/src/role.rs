//! What an API key may do: its [`Role`]. The HTTP layer (`http/auth.rs`) reads it from the
//! key's configuration; the workflow takes it as a plain input, so the rules that depend on
//! it (an admin reads any order) know nothing of headers or keys.

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Browse, order, and manage its own orders and deliveries.
    Customer,
    /// Everything a customer can, plus catalogue writes and reading any order.
    Admin,
    /// A warehouse system or a carrier integration: reads any delivery, lists the
    /// deliveries of a day and posts carrier updates (as admin can); otherwise it is a
    /// customer of its own.
    Fulfilment,
}

impl Role {
    /// The role a configuration entry names (`customer`, `admin`, `fulfilment`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            "fulfilment" => Some(Self::Fulfilment),
            _ => None,
        }
    }
}
