//! Using `bookstore-inventory` on its own, without the HTTP gateway: the example shown in
//! the README. Run it with `cargo run -p bookstore-inventory --example standalone_catalogue`.

use bookstore_inventory::{
    Author, Book, BookQuery, CatalogueStore, InMemoryCatalogue, InventoryError, ReservationId,
    StockLine, Title, demo_catalogue,
};
use bookstore_types::{Currency, Isbn, Money, Quantity};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalogue = InMemoryCatalogue::with_books(demo_catalogue())?;

    // Add a book: every field is a checked type, so an invalid book cannot be built.
    let rust_in_action = Isbn::parse("978-1-61729-455-6")?;
    catalogue
        .insert(Book {
            isbn: rust_in_action,
            title: Title::parse("Rust in Action")?,
            author: Author::parse("Tim McNamara")?,
            price: Money::from_cents(4999, Currency::USD)?,
            stock: 3,
        })
        .await?;

    // Take stock for several lines: all of them, or none.
    let effective_java = Isbn::parse("0-13-468599-7")?; // an ISBN-10, kept as its ISBN-13
    let lines = [
        StockLine {
            isbn: effective_java,
            quantity: Quantity::new(2)?,
        },
        StockLine {
            isbn: rust_in_action,
            quantity: Quantity::new(5)?,
        },
    ];
    let reservation = ReservationId::generate();
    match catalogue.reserve_all(reservation, &lines).await {
        Err(InventoryError::OutOfStock {
            isbn,
            requested,
            available,
        }) => println!("{isbn}: requested {requested}, available {available}"),
        other => panic!("expected a stock conflict, got {other:?}"),
    }
    assert_eq!(catalogue.get(&effective_java).await?.stock, 12); // nothing was taken

    // The first page of books whose title or author mentions "rust".
    let query = BookQuery {
        text: Some("rust".to_owned()),
        ..BookQuery::default()
    };
    for book in catalogue.list(&query).await?.books {
        println!("{} {} ({} in stock)", book.isbn, book.title, book.stock);
    }
    Ok(())
}
