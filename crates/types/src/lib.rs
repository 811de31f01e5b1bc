//! Value types shared by the bookstore domains.
//!
//! Only types that more than one domain crate needs live here: [`Isbn`], [`Money`] and
//! [`Currency`], [`Quantity`], [`PageLimit`] and [`OrderId`]. Each type can only hold a valid value: it is
//! built with a `parse`/`new` function that returns a `Result`, and its fields are private.
//! The crate has no knowledge of HTTP, storage or any one domain.

mod ids;
mod isbn;
mod money;
mod page_limit;
mod quantity;

pub use ids::OrderId;
pub use isbn::{Isbn, IsbnError};
pub use money::{Currency, CurrencyError, Money, MoneyError};
pub use page_limit::{PageLimit, PageLimitError};
pub use quantity::{Quantity, QuantityError};

/// Re-exported for [`uuid_id!`], so that crates using the macro need no `uuid` dependency of
/// their own.
pub use uuid;
