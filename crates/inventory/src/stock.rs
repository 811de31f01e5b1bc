//! Taking and giving back stock: the [`StockLine`]s a reservation asks for and the
//! [`ReservedLine`]s it answers with.

use bookstore_types::{Isbn, Money, Quantity};

use crate::{InventoryError, Title};

/// A number of copies of one book, as asked for by an order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLine {
    /// The book.
    pub isbn: Isbn,
    /// How many copies.
    pub quantity: Quantity,
}

/// Copies of one book taken from stock, with the title and unit price they were taken at.
///
/// An order records these so that later changes to the catalogue do not change the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    /// The book.
    pub isbn: Isbn,
    /// The title when the stock was taken.
    pub title: Title,
    /// The price of one copy when the stock was taken.
    pub unit_price: Money,
    /// How many copies were taken, all lines for this ISBN together.
    pub quantity: Quantity,
}

/// Merges lines naming the same ISBN by adding their quantities; the result is sorted by
/// ISBN, one line per ISBN.
///
/// Fails with [`InventoryError::QuantityTooLarge`] when the lines for one ISBN add up to more
/// than [`Quantity::MAX`]. Every [`CatalogueStore`](crate::CatalogueStore) applies this rule
/// before taking or giving back stock; the sorted order is also the order in which stores
/// lock books, so two reservations never wait for each other.
pub fn merge_lines(lines: &[StockLine]) -> Result<Vec<StockLine>, InventoryError> {
    let mut sorted = lines.to_vec();
    sorted.sort_unstable_by_key(|line| line.isbn);
    let mut merged: Vec<StockLine> = Vec::with_capacity(sorted.len());
    for line in sorted {
        match merged.last_mut() {
            Some(last) if last.isbn == line.isbn => {
                last.quantity = last.quantity.checked_add(line.quantity).map_err(|error| {
                    InventoryError::QuantityTooLarge {
                        isbn: line.isbn,
                        error,
                    }
                })?;
            }
            _ => merged.push(line),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{isbn, line};
    use bookstore_types::QuantityError;

    #[test]
    fn merging_sorts_by_isbn_and_adds_quantities_of_the_same_isbn() {
        let merged =
            merge_lines(&[line(3, 1), line(1, 2), line(3, 4), line(2, 1), line(1, 5)]).unwrap();
        assert_eq!(merged, vec![line(1, 7), line(2, 1), line(3, 5)]);
    }

    #[test]
    fn merging_nothing_gives_nothing() {
        assert_eq!(merge_lines(&[]).unwrap(), vec![]);
    }

    #[test]
    fn merging_lines_past_one_hundred_copies_fails_with_the_merged_quantity() {
        let result = merge_lines(&[line(1, 60), line(2, 100), line(1, 30), line(1, 20)]);
        assert!(
            matches!(
                result,
                Err(InventoryError::QuantityTooLarge { isbn: bad, error: QuantityError { got: 110 } })
                    if bad == isbn(1)
            ),
            "{result:?}"
        );
    }
}
