//! The delivery domain: where an order goes, when, and what happens to the parcel.
//!
//! - [`Address`] is a checked postal address made from a client's [`AddressInput`]; every
//!   field problem is reported at once, and `Debug` never prints the address.
//! - [`DeliveryCalendar`] (and [`schedule_date`] for a shop open every weekday) is the
//!   scheduling rule: a business day after today, not a closed day, not before the
//!   customer's requested date.
//! - [`Delivery`] is one order's delivery. Its status follows the life-cycle table
//!   [`DeliveryStatus::next`]; carriers move it with [`CarrierUpdate`]s through
//!   [`Delivery::record`], which keeps every update in the history and never moves the status
//!   backwards; the shop cancels it with `cancelled` before dispatch.
//! - [`DeliveryStore`] keeps deliveries, at most one per order and at most a day's capacity
//!   per day; [`InMemoryDeliveryStore`] implements it in memory.
//!
//! This crate is an API boundary: it knows nothing of HTTP, of the gateway or of the other
//! domains, and refers to orders only by [`bookstore_types::OrderId`].

mod address;
mod country;
mod delivery;
mod error;
mod schedule;
mod store;
mod tracking;
mod update;

pub use address::{Address, AddressFieldError, AddressInput};
pub use country::CountryCode;
pub use delivery::{Delivery, DeliveryId, DeliveryStatus, MAX_HISTORY, Tracking};
pub use error::{AddressError, DeliveryError, UpdateFieldError};
pub use schedule::{DeliveryCalendar, schedule_date};
pub use store::{
    DeliveryObserver, DeliveryPage, DeliveryQuery, DeliveryStore, InMemoryDeliveryStore,
};
pub use tracking::TrackingNumber;
pub use update::{
    Carrier, CarrierTrackingNumber, CarrierUpdate, Location, Note, Recorded, TrackingEntry,
};
