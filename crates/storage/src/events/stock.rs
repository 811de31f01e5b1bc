//! Which events a change of a book's stock records, the same rule for every backend.

use bookstore_inventory::Book;
use chrono::Utc;

use super::{Fact, NewEvent, Outbox};

/// The events of an update (a `PATCH` of the book) that left `updated`: `book.updated`, then
/// `book.out_of_stock` if it took the stock from more than 0 to 0, or `book.back_in_stock`
/// if from 0 to more. `stock_before` is `None` when the update did not set the stock.
pub(crate) fn update_events(
    outbox: &Outbox,
    stock_before: Option<u32>,
    updated: &Book,
) -> Vec<NewEvent> {
    let now = Utc::now();
    let mut events = vec![outbox.event(Fact::BookUpdated(updated), now)];
    match (stock_before, updated.stock) {
        (Some(before), 0) if before > 0 => {
            events.push(outbox.event(Fact::BookOutOfStock(updated), now));
        }
        (Some(0), after) if after > 0 => {
            events.push(outbox.event(Fact::BookBackInStock(updated), now));
        }
        _ => {}
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use bookstore_inventory::generated_catalogue;

    fn types_after(stock_before: Option<u32>, stock_after: u32) -> Vec<EventType> {
        let mut book = generated_catalogue(1).next().unwrap();
        book.stock = stock_after;
        update_events(&Outbox::id_only(), stock_before, &book)
            .iter()
            .map(|event| event.event_type)
            .collect()
    }

    #[test]
    fn an_update_announces_a_stock_crossing_zero_after_the_update_itself() {
        use EventType::{BookBackInStock, BookOutOfStock, BookUpdated};
        assert_eq!(types_after(None, 0), vec![BookUpdated]);
        assert_eq!(types_after(Some(3), 5), vec![BookUpdated]);
        assert_eq!(types_after(Some(0), 0), vec![BookUpdated]);
        assert_eq!(types_after(Some(3), 0), vec![BookUpdated, BookOutOfStock]);
        assert_eq!(types_after(Some(0), 2), vec![BookUpdated, BookBackInStock]);
    }
}
