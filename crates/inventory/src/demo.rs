//! A small catalogue of real books, for demos, the gateway's seed data and tests.

use bookstore_types::{Currency, Isbn, Money};

use crate::{Author, Book, Title};

/// One row of the demo catalogue, before validation.
struct DemoBook {
    isbn: &'static str,
    title: &'static str,
    author: &'static str,
    price_cents: i64,
    stock: u32,
}

/// Real books with their real ISBN-13s. Stock is varied on purpose: some titles are sold
/// out, some nearly so, some plentiful.
const DEMO_BOOKS: &[DemoBook] = &[
    DemoBook {
        isbn: "9780134685991",
        title: "Effective Java",
        author: "Joshua Bloch",
        price_cents: 4499,
        stock: 12,
    },
    DemoBook {
        isbn: "9781593278281",
        title: "The Rust Programming Language",
        author: "Steve Klabnik and Carol Nichols",
        price_cents: 3995,
        stock: 75,
    },
    DemoBook {
        isbn: "9781492052593",
        title: "Programming Rust",
        author: "Jim Blandy, Jason Orendorff and Leonora F. S. Tindall",
        price_cents: 5999,
        stock: 3,
    },
    DemoBook {
        isbn: "9781718501850",
        title: "Rust for Rustaceans",
        author: "Jon Gjengset",
        price_cents: 3999,
        stock: 8,
    },
    DemoBook {
        isbn: "9780262033848",
        title: "Introduction to Algorithms",
        author: "Thomas H. Cormen, Charles E. Leiserson, Ronald L. Rivest and Clifford Stein",
        price_cents: 9900,
        stock: 6,
    },
    DemoBook {
        isbn: "9780201633610",
        title: "Design Patterns: Elements of Reusable Object-Oriented Software",
        author: "Erich Gamma, Richard Helm, Ralph Johnson and John Vlissides",
        price_cents: 5499,
        stock: 0,
    },
    DemoBook {
        isbn: "9780132350884",
        title: "Clean Code",
        author: "Robert C. Martin",
        price_cents: 3999,
        stock: 60,
    },
    DemoBook {
        isbn: "9780135957059",
        title: "The Pragmatic Programmer",
        author: "David Thomas and Andrew Hunt",
        price_cents: 4999,
        stock: 2,
    },
    DemoBook {
        isbn: "9780131103627",
        title: "The C Programming Language",
        author: "Brian W. Kernighan and Dennis M. Ritchie",
        price_cents: 6700,
        stock: 1,
    },
    DemoBook {
        isbn: "9780262510875",
        title: "Structure and Interpretation of Computer Programs",
        author: "Harold Abelson and Gerald Jay Sussman",
        price_cents: 5500,
        stock: 0,
    },
    DemoBook {
        isbn: "9780201835953",
        title: "The Mythical Man-Month",
        author: "Frederick P. Brooks Jr.",
        price_cents: 3499,
        stock: 5,
    },
    DemoBook {
        isbn: "9780596517748",
        title: "JavaScript: The Good Parts",
        author: "Douglas Crockford",
        price_cents: 2999,
        stock: 0,
    },
    DemoBook {
        isbn: "9781449373320",
        title: "Designing Data-Intensive Applications",
        author: "Martin Kleppmann",
        price_cents: 5999,
        stock: 150,
    },
    DemoBook {
        isbn: "9780134190440",
        title: "The Go Programming Language",
        author: "Alan A. A. Donovan and Brian W. Kernighan",
        price_cents: 4499,
        stock: 20,
    },
    DemoBook {
        isbn: "9780321125217",
        title: "Domain-Driven Design",
        author: "Eric Evans",
        price_cents: 6499,
        stock: 3,
    },
    DemoBook {
        isbn: "9780134757599",
        title: "Refactoring",
        author: "Martin Fowler",
        price_cents: 4999,
        stock: 10,
    },
    DemoBook {
        isbn: "9780201896831",
        title: "The Art of Computer Programming, Volume 1",
        author: "Donald E. Knuth",
        price_cents: 7999,
        stock: 1,
    },
    DemoBook {
        isbn: "9780141439518",
        title: "Pride and Prejudice",
        author: "Jane Austen",
        price_cents: 999,
        stock: 80,
    },
    DemoBook {
        isbn: "9780451524935",
        title: "1984",
        author: "George Orwell",
        price_cents: 999,
        stock: 55,
    },
    DemoBook {
        isbn: "9780743273565",
        title: "The Great Gatsby",
        author: "F. Scott Fitzgerald",
        price_cents: 1700,
        stock: 0,
    },
    DemoBook {
        isbn: "9780061120084",
        title: "To Kill a Mockingbird",
        author: "Harper Lee",
        price_cents: 1899,
        stock: 2,
    },
    DemoBook {
        isbn: "9780486282114",
        title: "Frankenstein",
        author: "Mary Shelley",
        price_cents: 450,
        stock: 100,
    },
];

/// About twenty real books with real ISBN-13s, priced in US cents, with varied stock.
///
/// Every row is checked by this crate's tests, so building the books cannot fail.
pub fn demo_catalogue() -> Vec<Book> {
    DEMO_BOOKS
        .iter()
        .map(|row| Book {
            isbn: Isbn::parse(row.isbn).expect("demo catalogue ISBNs are tested to be valid"),
            title: Title::parse(row.title).expect("demo catalogue titles are tested to be valid"),
            author: Author::parse(row.author)
                .expect("demo catalogue authors are tested to be valid"),
            price: Money::from_cents(row.price_cents, Currency::USD)
                .expect("demo catalogue prices are tested to be non-negative"),
            stock: row.stock,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{CatalogueStore, InMemoryCatalogue};

    #[test]
    fn every_demo_isbn_is_a_valid_isbn13_written_in_its_bare_form() {
        for row in DEMO_BOOKS {
            let isbn =
                Isbn::parse(row.isbn).unwrap_or_else(|error| panic!("{}: {error}", row.isbn));
            assert_eq!(isbn.as_str(), row.isbn);
        }
    }

    #[test]
    fn every_demo_row_has_a_valid_title_author_and_price() {
        for row in DEMO_BOOKS {
            assert!(Title::parse(row.title).is_ok(), "{}", row.title);
            assert!(Author::parse(row.author).is_ok(), "{}", row.author);
            assert!(row.price_cents > 0, "{}", row.title);
        }
    }

    #[test]
    fn the_demo_catalogue_has_about_twenty_books_with_distinct_isbns() {
        let books = demo_catalogue();
        assert!((18..=25).contains(&books.len()), "{} books", books.len());
        let isbns: BTreeSet<Isbn> = books.iter().map(|book| book.isbn).collect();
        assert_eq!(isbns.len(), books.len());
        assert!(
            books
                .iter()
                .all(|book| book.price.currency() == Currency::USD)
        );
    }

    #[test]
    fn the_demo_catalogue_has_sold_out_scarce_and_plentiful_books() {
        let stocks: Vec<u32> = demo_catalogue().iter().map(|book| book.stock).collect();
        assert!(stocks.iter().filter(|&&stock| stock == 0).count() >= 2);
        assert!(
            stocks
                .iter()
                .filter(|&&stock| (1..=3).contains(&stock))
                .count()
                >= 2
        );
        assert!(stocks.iter().filter(|&&stock| stock >= 50).count() >= 2);
    }

    #[test]
    fn the_demo_catalogue_includes_effective_java_and_the_rust_book() {
        let books = demo_catalogue();
        let find = |isbn: &str| {
            books
                .iter()
                .find(|book| book.isbn.as_str() == isbn)
                .unwrap_or_else(|| panic!("{isbn} is missing"))
        };
        let effective_java = find("9780134685991");
        assert_eq!(effective_java.title.as_str(), "Effective Java");
        assert_eq!(effective_java.author.as_str(), "Joshua Bloch");
        assert_eq!(
            effective_java.price,
            Money::from_cents(4499, Currency::USD).unwrap()
        );
        let rust_book = find("9781593278281");
        assert_eq!(rust_book.title.as_str(), "The Rust Programming Language");
        assert_eq!(rust_book.author.as_str(), "Steve Klabnik and Carol Nichols");
    }

    #[tokio::test]
    async fn the_demo_catalogue_loads_into_an_in_memory_catalogue() {
        let catalogue = InMemoryCatalogue::with_books(demo_catalogue()).unwrap();
        let effective_java = catalogue
            .get(&Isbn::parse("9780134685991").unwrap())
            .await
            .unwrap();
        assert_eq!(effective_java.title.as_str(), "Effective Java");
    }
}
