//! Taking and giving back stock: the [`StockLine`]s a reservation asks for and the
//! [`ReservedLine`]s it answers with.

use std::collections::HashMap;

use bookstore_types::{Isbn, Money, Quantity, QuantityError};

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

/// The rule for lines naming the same ISBN: they count as one line asking for the sum of
/// their quantities, which must still be a [`Quantity`].
///
/// Answers one entry per ISBN, in the order each ISBN is first named: the ISBN and the sum,
/// or the [`QuantityError`] holding the whole sum when it exceeds [`Quantity::MAX`]. Every
/// ISBN is added up, so a caller can report each one whose lines ask for too many copies.
/// [`merge_lines`] applies this rule for the stores; the gateway applies it to an order
/// request, keeping the order in which the buyer named the books.
pub fn sum_quantities_per_isbn(
    lines: &[StockLine],
) -> Vec<(Isbn, Result<Quantity, QuantityError>)> {
    let mut sums: Vec<(Isbn, u64)> = Vec::with_capacity(lines.len());
    let mut position_of: HashMap<Isbn, usize> = HashMap::with_capacity(lines.len());
    for line in lines {
        let position = *position_of.entry(line.isbn).or_insert_with(|| {
            sums.push((line.isbn, 0));
            sums.len() - 1
        });
        sums[position].1 = sums[position]
            .1
            .saturating_add(u64::from(line.quantity.get()));
    }
    sums.into_iter()
        .map(|(isbn, sum)| (isbn, Quantity::new(sum)))
        .collect()
}

/// Merges lines naming the same ISBN by adding their quantities
/// ([`sum_quantities_per_isbn`]); the result is sorted by ISBN, one line per ISBN.
///
/// Fails with [`InventoryError::QuantityTooLarge`] for the first ISBN (in ISBN order) whose
/// lines add up to more than [`Quantity::MAX`]. Every [`CatalogueStore`](crate::CatalogueStore)
/// applies this rule before taking or giving back stock; the sorted order is also the order
/// in which stores lock books, so two reservations never wait for each other.
pub fn merge_lines(lines: &[StockLine]) -> Result<Vec<StockLine>, InventoryError> {
    let mut sorted = lines.to_vec();
    sorted.sort_unstable_by_key(|line| line.isbn);
    sum_quantities_per_isbn(&sorted)
        .into_iter()
        .map(|(isbn, sum)| match sum {
            Ok(quantity) => Ok(StockLine { isbn, quantity }),
            Err(error) => Err(InventoryError::QuantityTooLarge { isbn, error }),
        })
        .collect()
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
    fn quantities_are_summed_per_isbn_in_the_order_each_isbn_is_first_named() {
        let sums = sum_quantities_per_isbn(&[
            line(3, 60),
            line(1, 2),
            line(3, 50),
            line(2, 100),
            line(1, 5),
            line(3, 30),
        ]);
        assert_eq!(
            sums,
            vec![
                (isbn(3), Err(QuantityError { got: 140 })),
                (isbn(1), Quantity::new(7)),
                (isbn(2), Quantity::new(100)),
            ]
        );
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
