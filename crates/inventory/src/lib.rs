//! The bookshop's catalogue: which books exist, what they cost and how many copies are in stock.
//!
//! This crate is an API boundary for other teams. It knows nothing about HTTP or about the
//! other domains; the gateway converts its types to wire types at the edge.
//!
//! - [`Book`], [`Title`], [`Author`] and [`BookPatch`] describe catalogue records
//!   (`book` module).
//! - [`BookQuery`] and [`BookPage`] describe cursor paging (`query` module); its page size is
//!   the [`PageLimit`] that every listing shares (re-exported from `bookstore-types`).
//! - [`StockLine`] and [`ReservedLine`] are the input and output of reservations
//!   (`stock` module); [`sum_quantities_per_isbn`] is the rule for lines naming one ISBN,
//!   and [`merge_lines`] applies it the way every store does first.
//! - [`ReservationId`] names one reservation in the reservation journal.
//! - [`CatalogueStore`] is the storage interface; [`InMemoryCatalogue`] implements it. SQL
//!   implementations live in a separate crate (`bookstore-storage`), so that this crate builds
//!   without any database driver.
//! - [`author_filter_key`] and [`text_filter_key`] define what the listing filters compare,
//!   so that every store filters exactly alike.
//! - [`demo_catalogue`] is a small catalogue of real books for demos and tests;
//!   [`generated_catalogue`] makes one of any size for load tests and benchmarks.
//!
//! Invariants every store upholds:
//! - stock is never negative and never oversold: [`CatalogueStore::reserve_all`] takes the
//!   stock of every line or of none;
//! - paging by ISBN cursor visits every book that existed when paging started exactly once;
//! - every reservation is journaled together with the stock it took, in one atomic step, and
//!   stays in the journal until it is confirmed (the stock stays taken) or cancelled (the
//!   stock is given back, exactly once).

mod book;
mod demo;
mod error;
mod generated;
mod in_memory;
mod query;
mod reservation;
mod stock;
mod store;

#[cfg(test)]
mod test_support;

pub use book::{Author, Book, BookPatch, Title};
pub use bookstore_types::PageLimit;
pub use demo::demo_catalogue;
pub use error::InventoryError;
pub use generated::{GENERATED_STOCK, generated_catalogue, generated_isbn};
pub use in_memory::{BookChange, CatalogueObserver, InMemoryCatalogue};
pub use query::{BookPage, BookQuery, author_filter_key, text_filter_key};
pub use reservation::ReservationId;
pub use stock::{ReservedLine, StockLine, merge_lines, sum_quantities_per_isbn};
pub use store::{CatalogueStore, Journal};
