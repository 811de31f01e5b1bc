//! A generated catalogue of any size, for load tests and benchmarks.

use bookstore_types::{Currency, Isbn, Money};

use crate::{Author, Book, Title};

/// The stock of every generated book: enough that a benchmark never sells one out.
pub const GENERATED_STOCK: u32 = 1_000_000;

/// The ISBN of generated book number `serial`: `978`, the serial in nine digits, and the
/// ISBN-13 check digit. Serials `0..count` give `count` distinct ISBNs in ascending order.
///
/// # Panics
///
/// If `serial` has more than nine digits (there are 10⁹ generated ISBNs).
pub fn generated_isbn(serial: u64) -> Isbn {
    assert!(serial < 1_000_000_000, "a generated serial has nine digits");
    Isbn::from_first_twelve_digits(&format!("978{serial:09}"))
        .expect("978 and nine digits are the first twelve digits of an ISBN")
}

/// `count` generated books in ISBN order: book `n` has [`generated_isbn`]`(n)`, the title
/// "Generated Book n", one of 1,000 authors, a price between $9.99 and $58.99, and
/// [`GENERATED_STOCK`] copies.
///
/// # Panics
///
/// If `count` exceeds 10⁹.
pub fn generated_catalogue(count: u64) -> impl Iterator<Item = Book> {
    (0..count).map(|serial| Book {
        isbn: generated_isbn(serial),
        title: Title::parse(format!("Generated Book {serial}")).expect("a valid title"),
        author: Author::parse(format!("Generated Author {}", serial % 1000))
            .expect("a valid author"),
        price: Money::from_cents(999 + 100 * (serial % 50) as i64, Currency::USD)
            .expect("a valid price"),
        stock: GENERATED_STOCK,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BookQuery, CatalogueStore, InMemoryCatalogue, PageLimit};

    #[test]
    fn generated_isbns_are_valid_distinct_and_ascending() {
        let isbns: Vec<Isbn> = (0..2_000).map(generated_isbn).collect();
        assert_eq!(isbns[0].as_str(), "9780000000002");
        assert_eq!(generated_isbn(30_640_615).as_str(), "9780306406157");
        assert!(isbns.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[tokio::test]
    async fn a_generated_catalogue_loads_and_pages_in_serial_order() {
        let catalogue = InMemoryCatalogue::with_books(generated_catalogue(250)).unwrap();
        let page = catalogue
            .list(&BookQuery {
                after: Some(generated_isbn(99)),
                limit: PageLimit::new(3).unwrap(),
                ..BookQuery::default()
            })
            .await
            .unwrap();
        let titles: Vec<&str> = page.books.iter().map(|book| book.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Generated Book 100",
                "Generated Book 101",
                "Generated Book 102"
            ]
        );
        assert_eq!(page.books[0].author.as_str(), "Generated Author 100");
        assert_eq!(page.books[0].stock, GENERATED_STOCK);
    }
}
