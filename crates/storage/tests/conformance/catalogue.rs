//! The catalogue: look-ups, updates, paging and filters, reservations and the journal.

use std::collections::BTreeSet;
use std::sync::Arc;

use bookstore_inventory::{
    BookPage, BookPatch, BookQuery, CatalogueStore, InMemoryCatalogue, InventoryError, PageLimit,
    ReservedLine, Title,
};
use bookstore_types::{Isbn, QuantityError};
use chrono::{Duration, Utc};

use crate::harness::{
    Backend, Stores, book, fresh_reservation, isbn, join_all, line, stock_catalogue, stock_of, usd,
};

crate::conformance!(
    an_inserted_book_reads_back_and_a_second_insert_of_its_isbn_fails,
    an_update_changes_only_the_patched_fields,
    paging_visits_every_book_once_in_isbn_order,
    books_inserted_while_paging_are_neither_repeated_nor_skipped,
    filters_match_exactly_the_books_the_in_memory_store_matches,
    a_reservation_takes_every_line_or_none,
    the_first_failing_line_in_isbn_order_is_reported,
    releasing_gives_stock_back_all_or_nothing,
    the_journal_keeps_a_reservation_until_it_is_confirmed_or_cancelled,
    reservations_older_than_a_cutoff_are_listed_oldest_first,
    thirty_two_concurrent_reservations_of_a_stock_of_ten_let_exactly_ten_succeed,
    concurrent_cancels_of_one_reservation_give_the_stock_back_exactly_once,
    overlapping_reservations_in_every_order_never_deadlock_and_account_for_all_stock,
    concurrent_reservations_that_succeed_run_short_name_unknown_books_or_reuse_an_id_each_answer_as_alone,
    a_book_read_before_every_kind_of_write_reads_back_changed_after_it,
    a_write_to_one_book_leaves_the_others_as_they_read,
    loading_a_catalogue_adds_only_the_isbns_not_taken,
);

/// The SQLite cache drops only the books a write changes; the others must still read right.
async fn a_write_to_one_book_leaves_the_others_as_they_read(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "One", "Author", 1000, 10),
            book(2, "Two", "Author", 1000, 20),
        ],
    )
    .await;
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (10, 20)
    );
    stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(2, 5)])
        .await
        .unwrap();
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (10, 15)
    );
    stores.catalogue.release_all(&[line(1, 1)]).await.unwrap();
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (11, 15)
    );
}

/// `Database::insert_missing_books`, which loads the demo and benchmark catalogues.
async fn loading_a_catalogue_adds_only_the_isbns_not_taken(backend: Backend) {
    let stores = backend.stores().await;
    let Some(database) = stores.database.clone() else {
        return; // The in-memory store is loaded with `InMemoryCatalogue::with_books`.
    };
    let catalogue = database
        .stores(&bookstore_storage::events::Outbox::id_only())
        .catalogue;
    let first = book(1, "Kept", "Author", 1000, 10);
    catalogue.insert(first.clone()).await.unwrap();
    let load: Vec<_> = (1..=300)
        .map(|n| book(n, &format!("Loaded {n}"), "Loader", 500, 3))
        .collect();
    assert_eq!(database.insert_missing_books(&load).await.unwrap(), 299);
    assert_eq!(
        catalogue.get(&isbn(1)).await.unwrap(),
        first,
        "a taken ISBN is kept"
    );
    assert_eq!(catalogue.get(&isbn(300)).await.unwrap(), load[299]);
    let all = pages(
        &stores,
        BookQuery {
            limit: limit(100),
            ..BookQuery::default()
        },
    )
    .await;
    assert_eq!(isbns(&all).len(), 300);
    assert_eq!(
        database.insert_missing_books(&load).await.unwrap(),
        0,
        "loading again adds nothing"
    );
}

/// Reads go through a cache on SQLite: every write must be visible to the next read.
async fn a_book_read_before_every_kind_of_write_reads_back_changed_after_it(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Cached", "Author", 1000, 10)]).await;
    assert_eq!(stock_of(&stores, 1).await, 10);

    let reservation = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 3)])
        .await
        .unwrap();
    assert_eq!(stock_of(&stores, 1).await, 7, "after a reservation");
    stores
        .catalogue
        .cancel_reservation(reservation)
        .await
        .unwrap();
    assert_eq!(stock_of(&stores, 1).await, 10, "after cancelling it");
    stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 2)])
        .await
        .unwrap();
    stores.catalogue.release_all(&[line(1, 1)]).await.unwrap();
    assert_eq!(stock_of(&stores, 1).await, 9, "after a release");
    let patch = BookPatch {
        title: Some(Title::parse("Renamed").unwrap()),
        stock: Some(42),
        ..BookPatch::default()
    };
    stores.catalogue.update(&isbn(1), patch).await.unwrap();
    let book = stores.catalogue.get(&isbn(1)).await.unwrap();
    assert_eq!(
        (book.title.as_str(), book.stock),
        ("Renamed", 42),
        "after an update"
    );
}

async fn pages(stores: &Stores, query: BookQuery) -> Vec<BookPage> {
    let mut pages = Vec::new();
    let mut query = query;
    loop {
        let page = stores.catalogue.list(&query).await.unwrap();
        let next_after = page.next_after;
        pages.push(page);
        match next_after {
            Some(after) => query.after = Some(after),
            None => return pages,
        }
    }
}

fn isbns(pages: &[BookPage]) -> Vec<Isbn> {
    pages
        .iter()
        .flat_map(|page| page.books.iter().map(|book| book.isbn))
        .collect()
}

fn limit(books: u64) -> PageLimit {
    PageLimit::new(books).unwrap()
}

async fn an_inserted_book_reads_back_and_a_second_insert_of_its_isbn_fails(backend: Backend) {
    let stores = backend.stores().await;
    let clean_code = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
    assert_eq!(
        stores.catalogue.insert(clean_code.clone()).await.unwrap(),
        clean_code
    );
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap(), clean_code);

    let impostor = stores
        .catalogue
        .insert(book(1, "Impostor", "X", 1, 1))
        .await;
    assert!(
        matches!(impostor, Err(InventoryError::AlreadyExists { isbn: i }) if i == isbn(1)),
        "{impostor:?}"
    );
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap(), clean_code);

    let unknown = stores.catalogue.get(&isbn(2)).await;
    assert!(
        matches!(unknown, Err(InventoryError::NotFound { isbn: i }) if i == isbn(2)),
        "{unknown:?}"
    );
    stores.catalogue.check_ready().await.unwrap();
}

async fn an_update_changes_only_the_patched_fields(backend: Backend) {
    let stores = backend.stores().await;
    let original = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
    stock_catalogue(&stores, [original.clone()]).await;

    let retitled = stores
        .catalogue
        .update(
            &isbn(1),
            BookPatch {
                title: Some(Title::parse("Clean Code, 2nd ed.").unwrap()),
                stock: Some(9),
                ..BookPatch::default()
            },
        )
        .await
        .unwrap();
    let expected = bookstore_inventory::Book {
        title: Title::parse("Clean Code, 2nd ed.").unwrap(),
        stock: 9,
        ..original
    };
    assert_eq!(retitled, expected);
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap(), expected);

    let repriced = stores
        .catalogue
        .update(
            &isbn(1),
            BookPatch {
                author: Some(bookstore_inventory::Author::parse("Uncle Bob").unwrap()),
                price: Some(usd(2999)),
                ..BookPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(repriced.author.as_str(), "Uncle Bob");
    assert_eq!(repriced.price, usd(2999));
    assert_eq!(repriced.title.as_str(), "Clean Code, 2nd ed.");
    assert_eq!(repriced.stock, 9);
    // The new author is what the filter finds.
    let by_author = stores
        .catalogue
        .list(&BookQuery {
            author: Some("uncle bob".to_owned()),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_author.books, vec![repriced]);

    let unknown = stores
        .catalogue
        .update(&isbn(2), BookPatch::default())
        .await;
    assert!(
        matches!(unknown, Err(InventoryError::NotFound { .. })),
        "{unknown:?}"
    );
}

async fn paging_visits_every_book_once_in_isbn_order(backend: Backend) {
    let stores = backend.stores().await;
    let empty = stores.catalogue.list(&BookQuery::default()).await.unwrap();
    assert!(empty.books.is_empty() && empty.next_after.is_none());

    // Inserted out of order on purpose.
    stock_catalogue(
        &stores,
        (0..25).map(|n| book((n * 7) % 25, "Title", "Author", 100, 1)),
    )
    .await;
    let pages = pages(
        &stores,
        BookQuery {
            limit: limit(10),
            ..BookQuery::default()
        },
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|page| page.books.len()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(pages[0].next_after, Some(isbn(9)));
    assert_eq!(pages[1].next_after, Some(isbn(19)));
    assert_eq!(isbns(&pages), (0..25).map(isbn).collect::<Vec<_>>());

    // A page that ends exactly at the last book has no next page.
    let exact = stores
        .catalogue
        .list(&BookQuery {
            after: Some(isbn(14)),
            limit: limit(10),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(exact.books.len(), 10);
    assert_eq!(exact.next_after, None);

    // A cursor that is not a book starts after where it would be.
    let between = stores
        .catalogue
        .list(&BookQuery {
            after: Some(isbn(1000)),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    assert!(between.books.is_empty());
}

async fn books_inserted_while_paging_are_neither_repeated_nor_skipped(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        (0..30).map(|n| book(n * 2, "Title", "Author", 100, 1)),
    )
    .await;
    let mut query = BookQuery {
        limit: limit(5),
        ..BookQuery::default()
    };
    let mut seen = Vec::new();
    let mut next_odd = 1;
    loop {
        let page = stores.catalogue.list(&query).await.unwrap();
        seen.extend(page.books.iter().map(|book| book.isbn));
        // One book before the cursor (never to be seen), one far after it (to be seen).
        stock_catalogue(
            &stores,
            [
                book(next_odd, "Early", "Author", 100, 1),
                book(next_odd + 40, "Late", "Author", 100, 1),
            ],
        )
        .await;
        next_odd += 2;
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    let distinct: BTreeSet<Isbn> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a book was listed twice");
    assert!(seen.is_sorted(), "books were listed out of order");
    assert!(
        (0..30).all(|n| distinct.contains(&isbn(n * 2))),
        "a book was skipped"
    );
    assert!(!distinct.contains(&isbn(1)));
    assert!(distinct.contains(&isbn(41)));
}

/// Authors and titles whose case folding goes beyond ASCII: Cyrillic, Greek with a final
/// sigma, German sharp s, Turkish dotted I, Kelvin sign, accented Latin.
fn unicode_books() -> Vec<bookstore_inventory::Book> {
    [
        ("Преступление и наказание", "Фёдор Достоевский"),
        ("ΟΔΥΣΣΕΙΑ", "ΟΜΗΡΟΣ"),
        ("Οδύσσεια", "Όμηρος"),
        ("Die Straße", "Groß Autor"),
        ("DIE STRASSE", "GROSS AUTOR"),
        ("İstanbul Hatırası", "Ahmet Ümit"),
        ("Absolute Zero at 0 \u{212a}", "Lord Kelvin"),
        ("Émile, ou De l'éducation", "Jean-Jacques Rousseau"),
        ("Pride and Prejudice", "Jane Austen"),
        ("Emma", "JANE AUSTEN"),
        (
            "The Rust Programming Language",
            "Steve Klabnik and Carol Nichols",
        ),
        ("Rust for Rustaceans", "Jon Gjengset"),
    ]
    .iter()
    .enumerate()
    .map(|(n, (title, author))| book(n as u32, title, author, 1000, 1))
    .collect()
}

async fn filters_match_exactly_the_books_the_in_memory_store_matches(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, unicode_books()).await;
    let reference = InMemoryCatalogue::with_books(unicode_books()).unwrap();

    let authors = [
        "фёдор достоевский",
        "ФЁДОР ДОСТОЕВСКИЙ",
        "  Фёдор Достоевский  ",
        "όμηρος",
        "ΟΜΗΡΟΣ",
        "ομηρος",
        "groß autor",
        "GROSS AUTOR",
        "ahmet ümit",
        "AHMET ÜMIT",
        "lord kelvin",
        "jane austen",
        "Jane",
        "",
    ];
    let texts = [
        "достоев",
        "НАКАЗАНИЕ",
        "σσεια",
        "ΣΣΕΙΑ",
        "οδύσσεια",
        "straße",
        "STRASSE",
        "strasse",
        "i̇stanbul",
        "istanbul",
        "İSTANBUL",
        "\u{212a}",
        "k",
        "ÉDUCATION",
        "rust",
        "AUSTEN",
        "",
        "no such text",
    ];
    let mut queries: Vec<BookQuery> = Vec::new();
    for author in authors {
        queries.push(BookQuery {
            author: Some(author.to_owned()),
            ..BookQuery::default()
        });
    }
    for text in texts {
        queries.push(BookQuery {
            text: Some(text.to_owned()),
            ..BookQuery::default()
        });
    }
    queries.push(BookQuery {
        author: Some("jane austen".to_owned()),
        text: Some("EMMA".to_owned()),
        ..BookQuery::default()
    });
    queries.push(BookQuery {
        author: Some("jane austen".to_owned()),
        text: Some("rust".to_owned()),
        ..BookQuery::default()
    });
    for query in queries {
        for page_size in [1, 2, 100] {
            let query = BookQuery {
                limit: limit(page_size),
                ..query.clone()
            };
            let expected = isbns(&pages_of(&reference, query.clone()).await);
            let listed = isbns(&pages(&stores, query.clone()).await);
            assert_eq!(listed, expected, "{query:?}");
        }
    }

    // And some plain expectations, so that the reference itself is pinned down.
    let by_author = |author: &str| BookQuery {
        author: Some(author.to_owned()),
        ..BookQuery::default()
    };
    let found = isbns(&pages(&stores, by_author("ФЁДОР ДОСТОЕВСКИЙ")).await);
    assert_eq!(found, vec![isbn(0)]);
    let found = isbns(&pages(&stores, by_author("jane austen")).await);
    assert_eq!(found, vec![isbn(8), isbn(9)]);
}

async fn pages_of(catalogue: &InMemoryCatalogue, query: BookQuery) -> Vec<BookPage> {
    let mut pages = Vec::new();
    let mut query = query;
    loop {
        let page = catalogue.list(&query).await.unwrap();
        let next_after = page.next_after;
        pages.push(page);
        match next_after {
            Some(after) => query.after = Some(after),
            None => return pages,
        }
    }
}

async fn a_reservation_takes_every_line_or_none(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "Plenty", "Author", 3999, 10),
            book(2, "Scarce", "Author", 4999, 1),
            book(3, "Plenty Too", "Author", 100, 10),
        ],
    )
    .await;

    let short = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 4), line(2, 2), line(3, 4)])
        .await;
    assert!(
        matches!(short, Err(InventoryError::OutOfStock { isbn: i, requested: 2, available: 1 }) if i == isbn(2)),
        "{short:?}"
    );
    let unknown = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 1), line(9, 1)])
        .await;
    assert!(
        matches!(unknown, Err(InventoryError::UnknownBook { isbn: i }) if i == isbn(9)),
        "{unknown:?}"
    );
    let too_many = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 60), line(1, 41)])
        .await;
    assert!(
        matches!(too_many, Err(InventoryError::QuantityTooLarge { isbn: i, error: QuantityError { got: 101 } }) if i == isbn(1)),
        "{too_many:?}"
    );
    let merged_short = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(2, 1), line(2, 1)])
        .await;
    assert!(
        matches!(
            merged_short,
            Err(InventoryError::OutOfStock {
                requested: 2,
                available: 1,
                ..
            })
        ),
        "{merged_short:?}"
    );
    for number in [1, 2, 3] {
        assert_eq!(
            stock_of(&stores, number).await,
            [10, 1, 10][number as usize - 1]
        );
    }
    assert_eq!(
        journaled(&stores).await.len(),
        0,
        "a failed reservation was journaled"
    );

    // Lines are merged, answered in ISBN order, with the title and price of the moment.
    let reserved = stores
        .catalogue
        .reserve_all(
            fresh_reservation(),
            &[line(3, 1), line(1, 2), line(2, 1), line(3, 2)],
        )
        .await
        .unwrap();
    stores
        .catalogue
        .update(
            &isbn(1),
            BookPatch {
                price: Some(usd(9999)),
                ..BookPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        reserved,
        vec![
            ReservedLine {
                isbn: isbn(1),
                title: Title::parse("Plenty").unwrap(),
                unit_price: usd(3999),
                quantity: line(1, 2).quantity,
            },
            ReservedLine {
                isbn: isbn(2),
                title: Title::parse("Scarce").unwrap(),
                unit_price: usd(4999),
                quantity: line(2, 1).quantity,
            },
            ReservedLine {
                isbn: isbn(3),
                title: Title::parse("Plenty Too").unwrap(),
                unit_price: usd(100),
                quantity: line(3, 3).quantity,
            },
        ]
    );
    assert_eq!(stock_of(&stores, 1).await, 8);
    assert_eq!(stock_of(&stores, 2).await, 0);
    assert_eq!(stock_of(&stores, 3).await, 7);

    let nothing = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[])
        .await
        .unwrap();
    assert_eq!(nothing, vec![]);
}

async fn the_first_failing_line_in_isbn_order_is_reported(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Scarce", "Author", 100, 1)]).await;
    // Book 1 lacks stock and book 2 does not exist: book 1 comes first.
    let result = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(2, 1), line(1, 5)])
        .await;
    assert!(
        matches!(result, Err(InventoryError::OutOfStock { isbn: i, .. }) if i == isbn(1)),
        "{result:?}"
    );
    // A reused id is reported before any line.
    let reservation = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 1)])
        .await
        .unwrap();
    for lines in [vec![line(1, 1)], vec![line(2, 1)], vec![line(1, 50)]] {
        let reused = stores.catalogue.reserve_all(reservation, &lines).await;
        assert!(
            matches!(reused, Err(InventoryError::ReservationExists { reservation: r }) if r == reservation),
            "{reused:?}"
        );
    }
    assert_eq!(stock_of(&stores, 1).await, 0);
}

async fn releasing_gives_stock_back_all_or_nothing(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "Ordinary", "Author", 100, 4),
            book(2, "Hoarded", "Author", 100, u32::MAX - 1),
        ],
    )
    .await;
    stores
        .catalogue
        .release_all(&[line(1, 3), line(1, 1)])
        .await
        .unwrap();
    assert_eq!(stock_of(&stores, 1).await, 8);

    let overflow = stores
        .catalogue
        .release_all(&[line(1, 5), line(2, 2)])
        .await;
    assert!(
        matches!(overflow, Err(InventoryError::StockOverflow { isbn: i }) if i == isbn(2)),
        "{overflow:?}"
    );
    let unknown = stores
        .catalogue
        .release_all(&[line(1, 5), line(3, 2)])
        .await;
    assert!(
        matches!(unknown, Err(InventoryError::UnknownBook { isbn: i }) if i == isbn(3)),
        "{unknown:?}"
    );
    assert_eq!(stock_of(&stores, 1).await, 8);
    assert_eq!(stock_of(&stores, 2).await, u32::MAX - 1);
    stores.catalogue.release_all(&[line(2, 1)]).await.unwrap();
    assert_eq!(stock_of(&stores, 2).await, u32::MAX);
}

/// Every journaled reservation, whatever its age.
async fn journaled(stores: &Stores) -> Vec<bookstore_inventory::ReservationId> {
    stores
        .catalogue
        .reservations_older_than(Utc::now() + Duration::days(1))
        .await
        .unwrap()
}

async fn the_journal_keeps_a_reservation_until_it_is_confirmed_or_cancelled(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "One", "Author", 100, 5),
            book(2, "Two", "Author", 100, 5),
        ],
    )
    .await;
    let confirmed = fresh_reservation();
    let cancelled = fresh_reservation();
    stores
        .catalogue
        .reserve_all(confirmed, &[line(1, 2)])
        .await
        .unwrap();
    stores
        .catalogue
        .reserve_all(cancelled, &[line(2, 1), line(1, 1), line(2, 2)])
        .await
        .unwrap();
    assert_eq!(
        journaled(&stores)
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([confirmed, cancelled])
    );
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (2, 2)
    );

    stores
        .catalogue
        .confirm_reservation(confirmed)
        .await
        .unwrap();
    stores
        .catalogue
        .cancel_reservation(cancelled)
        .await
        .unwrap();
    assert_eq!(journaled(&stores).await, vec![]);
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (3, 5)
    );

    // Both are idempotent, in any combination, and unknown ids are fine.
    for id in [confirmed, cancelled, fresh_reservation()] {
        stores.catalogue.confirm_reservation(id).await.unwrap();
        stores.catalogue.cancel_reservation(id).await.unwrap();
    }
    assert_eq!(
        (stock_of(&stores, 1).await, stock_of(&stores, 2).await),
        (3, 5)
    );

    // A cancel that cannot give the stock back fails and keeps the record.
    let hoarded = fresh_reservation();
    stores
        .catalogue
        .reserve_all(hoarded, &[line(1, 3)])
        .await
        .unwrap();
    stores
        .catalogue
        .update(
            &isbn(1),
            BookPatch {
                stock: Some(u32::MAX),
                ..BookPatch::default()
            },
        )
        .await
        .unwrap();
    let overflow = stores.catalogue.cancel_reservation(hoarded).await;
    assert!(
        matches!(overflow, Err(InventoryError::StockOverflow { .. })),
        "{overflow:?}"
    );
    assert_eq!(journaled(&stores).await, vec![hoarded]);
}

async fn reservations_older_than_a_cutoff_are_listed_oldest_first(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Title", "Author", 100, 10)]).await;
    let first = fresh_reservation();
    let second = fresh_reservation();
    stores
        .catalogue
        .reserve_all(first, &[line(1, 1)])
        .await
        .unwrap();
    // Stores keep microseconds: let the clock move past the first reservation's.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let between = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    stores
        .catalogue
        .reserve_all(second, &[line(1, 1)])
        .await
        .unwrap();

    let before_both = between - Duration::hours(1);
    assert_eq!(
        stores
            .catalogue
            .reservations_older_than(before_both)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        stores
            .catalogue
            .reservations_older_than(between)
            .await
            .unwrap(),
        vec![first]
    );
    assert_eq!(journaled(&stores).await, vec![first, second]);
    stores.catalogue.confirm_reservation(first).await.unwrap();
    assert_eq!(journaled(&stores).await, vec![second]);
}

async fn thirty_two_concurrent_reservations_of_a_stock_of_ten_let_exactly_ten_succeed(
    backend: Backend,
) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Scarce", "Author", 100, 10)]).await;
    let start = Arc::new(tokio::sync::Barrier::new(32));
    let tasks = (0..32)
        .map(|_| {
            let catalogue: Arc<dyn CatalogueStore> = Arc::clone(&stores.catalogue);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                catalogue
                    .reserve_all(fresh_reservation(), &[line(1, 1)])
                    .await
            })
        })
        .collect();
    let mut succeeded = 0;
    for result in join_all(tasks).await {
        match result {
            Ok(_) => succeeded += 1,
            Err(InventoryError::OutOfStock {
                requested: 1,
                available: 0,
                ..
            }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(succeeded, 10);
    assert_eq!(stock_of(&stores, 1).await, 0);
    assert_eq!(journaled(&stores).await.len(), 10);
}

async fn concurrent_cancels_of_one_reservation_give_the_stock_back_exactly_once(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "One", "Author", 100, 10),
            book(2, "Two", "Author", 100, 10),
        ],
    )
    .await;
    let reservation = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 3), line(2, 4)])
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|index| {
            let catalogue: Arc<dyn CatalogueStore> = Arc::clone(&stores.catalogue);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                // A confirm racing the cancels must not change the outcome's shape: the
                // stock is either all back or all taken, never twice back.
                if index == 0 {
                    catalogue.confirm_reservation(reservation).await
                } else {
                    catalogue.cancel_reservation(reservation).await
                }
            })
        })
        .collect();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    let stocks = (stock_of(&stores, 1).await, stock_of(&stores, 2).await);
    assert!(stocks == (10, 10) || stocks == (7, 6), "{stocks:?}");
    assert_eq!(journaled(&stores).await, vec![]);
}

async fn overlapping_reservations_in_every_order_never_deadlock_and_account_for_all_stock(
    backend: Backend,
) {
    let stores = backend.stores().await;
    const INITIAL_STOCK: u32 = 60;
    stock_catalogue(
        &stores,
        (0..4).map(|n| book(n, "Title", "Author", 100, INITIAL_STOCK)),
    )
    .await;
    let line_sets: Vec<Vec<bookstore_inventory::StockLine>> = vec![
        vec![line(0, 1), line(1, 1)],
        vec![line(1, 1), line(0, 1)],
        vec![line(2, 2), line(1, 1), line(0, 1)],
        vec![line(3, 1), line(0, 2)],
        vec![line(0, 1), line(3, 1), line(2, 1), line(1, 1)],
        vec![line(3, 1), line(2, 1), line(3, 1)],
    ];
    let line_sets = Arc::new(line_sets);
    let tasks = (0..8)
        .map(|worker| {
            let catalogue: Arc<dyn CatalogueStore> = Arc::clone(&stores.catalogue);
            let line_sets = Arc::clone(&line_sets);
            tokio::spawn(async move {
                let mut taken = [0i64; 4];
                for round in 0..12 {
                    let lines = &line_sets[(worker + round) % line_sets.len()];
                    let reservation = fresh_reservation();
                    if catalogue.reserve_all(reservation, lines).await.is_err() {
                        continue;
                    }
                    if round % 3 == 0 {
                        catalogue.cancel_reservation(reservation).await.unwrap();
                    } else {
                        catalogue.confirm_reservation(reservation).await.unwrap();
                        for line in lines {
                            let number: usize = line.isbn.as_str()[3..12].parse().unwrap();
                            taken[number] += i64::from(line.quantity.get());
                        }
                    }
                }
                taken
            })
        })
        .collect();
    let deadline = std::time::Duration::from_secs(120);
    let taken = tokio::time::timeout(deadline, join_all(tasks))
        .await
        .expect("reservations finish: no deadlock");
    for n in 0..4u32 {
        let total: i64 = taken.iter().map(|taken| taken[n as usize]).sum();
        assert_eq!(
            i64::from(stock_of(&stores, n).await),
            i64::from(INITIAL_STOCK) - total,
            "book {n}"
        );
    }
    assert_eq!(journaled(&stores).await, vec![]);
}

/// Concurrent reservations may share a transaction (PostgreSQL commits them together): each
/// must answer exactly what it would alone, and the refused ones change nothing.
async fn concurrent_reservations_that_succeed_run_short_name_unknown_books_or_reuse_an_id_each_answer_as_alone(
    backend: Backend,
) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "Scarce", "Author", 100, 5),
            book(2, "Plenty", "Author", 250, 100),
        ],
    )
    .await;
    let reused = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reused, &[line(2, 1)])
        .await
        .unwrap();

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Scarce,
        UnknownAfterPlenty,
        ReusedId,
        Plenty,
    }
    let kinds = [
        Kind::Scarce,
        Kind::UnknownAfterPlenty,
        Kind::ReusedId,
        Kind::Plenty,
    ];
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let tasks = (0..40)
        .map(|index| {
            let catalogue: Arc<dyn CatalogueStore> = Arc::clone(&stores.catalogue);
            let start = Arc::clone(&start);
            let kind = kinds[index % kinds.len()];
            tokio::spawn(async move {
                let (reservation, lines) = match kind {
                    Kind::Scarce => (fresh_reservation(), vec![line(1, 1)]),
                    Kind::UnknownAfterPlenty => (fresh_reservation(), vec![line(9, 1), line(2, 3)]),
                    Kind::ReusedId => (reused, vec![line(2, 1)]),
                    Kind::Plenty => (fresh_reservation(), vec![line(2, 2)]),
                };
                start.wait().await;
                (kind, catalogue.reserve_all(reservation, &lines).await)
            })
        })
        .collect();
    let mut scarce_taken = 0;
    for (kind, result) in join_all(tasks).await {
        match (kind, result) {
            (Kind::Scarce, Ok(lines)) => {
                assert_eq!(lines.len(), 1);
                assert_eq!(lines[0].quantity.get(), 1);
                scarce_taken += 1;
            }
            (
                Kind::Scarce,
                Err(InventoryError::OutOfStock {
                    isbn: i,
                    requested: 1,
                    available: 0,
                }),
            ) if i == isbn(1) => {}
            (Kind::UnknownAfterPlenty, Err(InventoryError::UnknownBook { isbn: i }))
                if i == isbn(9) => {}
            (Kind::ReusedId, Err(InventoryError::ReservationExists { reservation }))
                if reservation == reused => {}
            (Kind::Plenty, Ok(lines)) => assert_eq!(
                lines,
                vec![ReservedLine {
                    isbn: isbn(2),
                    title: Title::parse("Plenty").unwrap(),
                    unit_price: usd(250),
                    quantity: line(2, 2).quantity,
                }]
            ),
            (kind, other) => panic!("{kind:?} answered {other:?}"),
        }
    }
    assert_eq!(scarce_taken, 5);
    assert_eq!(stock_of(&stores, 1).await, 0);
    // 1 for the reused id, 2 for each of the ten plenty reservations; the refused took none.
    assert_eq!(stock_of(&stores, 2).await, 100 - 1 - 20);
    // The reused id, five scarce and ten plenty reservations: no journal row of a refusal.
    assert_eq!(journaled(&stores).await.len(), 16);
}
