//! The HTTP routes. Each handler parses its input, calls one domain or workflow function,
//! converts the result to a wire type and responds.

pub mod books;
pub mod deliveries;
pub mod events;
pub mod health;
pub mod orders;
pub mod webhooks;
