//! Single-task behaviour of [`InMemoryCatalogue`]: look-ups, updates, reservations and paging.

use std::collections::BTreeSet;

use bookstore_types::QuantityError;

use super::*;
use crate::test_support::{book, fresh_reservation, isbn, line, usd};
use crate::{Author, PageLimit, Title};

fn catalogue_of(books: impl IntoIterator<Item = Book>) -> InMemoryCatalogue {
    InMemoryCatalogue::with_books(books).unwrap()
}

async fn stock_of(catalogue: &InMemoryCatalogue, number: u32) -> u32 {
    catalogue.get(&isbn(number)).await.unwrap().stock
}

/// Follows `next_after` from the first page to the last and returns every page.
async fn all_pages(catalogue: &InMemoryCatalogue, query: BookQuery) -> Vec<BookPage> {
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

fn limit(books: u64) -> PageLimit {
    PageLimit::new(books).unwrap()
}

#[tokio::test]
async fn an_inserted_book_can_be_read_back() {
    let catalogue = InMemoryCatalogue::new();
    let clean_code = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
    assert_eq!(
        catalogue.insert(clean_code.clone()).await.unwrap(),
        clean_code
    );
    assert_eq!(catalogue.get(&isbn(1)).await.unwrap(), clean_code);
}

#[tokio::test]
async fn inserting_a_second_book_with_the_same_isbn_fails_and_keeps_the_first() {
    let catalogue = catalogue_of([book(1, "Clean Code", "Robert C. Martin", 3999, 5)]);
    let result = catalogue
        .insert(book(1, "Impostor", "Someone Else", 1, 1))
        .await;
    assert!(matches!(result, Err(InventoryError::AlreadyExists { isbn: i }) if i == isbn(1)));
    assert_eq!(
        catalogue.get(&isbn(1)).await.unwrap().title.as_str(),
        "Clean Code"
    );
}

#[test]
fn building_a_catalogue_from_books_with_a_repeated_isbn_fails() {
    let result = InMemoryCatalogue::with_books([
        book(1, "Clean Code", "Robert C. Martin", 3999, 5),
        book(1, "Clean Code", "Robert C. Martin", 3999, 5),
    ]);
    assert!(matches!(result, Err(InventoryError::AlreadyExists { .. })));
}

#[tokio::test]
async fn getting_an_unknown_isbn_fails_with_not_found() {
    let catalogue = InMemoryCatalogue::default();
    let result = catalogue.get(&isbn(7)).await;
    assert!(matches!(result, Err(InventoryError::NotFound { isbn: i }) if i == isbn(7)));
    assert_eq!(
        result.unwrap_err().to_string(),
        format!("no book with isbn {}", isbn(7))
    );
}

#[tokio::test]
async fn an_update_changes_only_the_fields_in_the_patch_and_returns_the_updated_book() {
    let original = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
    let catalogue = catalogue_of([original.clone()]);
    let patch = BookPatch {
        title: Some(
            Title::parse("Clean Code: A Handbook of Agile Software Craftsmanship").unwrap(),
        ),
        stock: Some(9),
        ..BookPatch::default()
    };
    let updated = catalogue.update(&isbn(1), patch).await.unwrap();
    let expected = Book {
        title: Title::parse("Clean Code: A Handbook of Agile Software Craftsmanship").unwrap(),
        stock: 9,
        ..original
    };
    assert_eq!(updated, expected);
    assert_eq!(catalogue.get(&isbn(1)).await.unwrap(), expected);

    let repriced = catalogue
        .update(
            &isbn(1),
            BookPatch {
                author: Some(Author::parse("Uncle Bob").unwrap()),
                price: Some(usd(2999)),
                ..BookPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(repriced.author.as_str(), "Uncle Bob");
    assert_eq!(repriced.price, usd(2999));
    assert_eq!(repriced.stock, 9);
}

#[tokio::test]
async fn updating_an_unknown_isbn_fails_with_not_found() {
    let catalogue = InMemoryCatalogue::new();
    let result = catalogue.update(&isbn(1), BookPatch::default()).await;
    assert!(matches!(result, Err(InventoryError::NotFound { .. })));
}

#[tokio::test]
async fn the_in_memory_catalogue_is_always_ready() {
    assert!(InMemoryCatalogue::new().check_ready().await.is_ok());
}

#[tokio::test]
async fn a_reservation_takes_the_stock_and_records_the_title_and_price_at_that_moment() {
    let catalogue = catalogue_of([
        book(1, "Clean Code", "Robert C. Martin", 3999, 5),
        book(2, "Refactoring", "Martin Fowler", 4999, 3),
    ]);
    let reserved = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 2), line(2, 3)])
        .await
        .unwrap();
    let price_rise = BookPatch {
        price: Some(usd(9999)),
        ..BookPatch::default()
    };
    catalogue.update(&isbn(1), price_rise).await.unwrap();

    assert_eq!(
        reserved,
        vec![
            ReservedLine {
                isbn: isbn(1),
                title: Title::parse("Clean Code").unwrap(),
                unit_price: usd(3999),
                quantity: line(1, 2).quantity,
            },
            ReservedLine {
                isbn: isbn(2),
                title: Title::parse("Refactoring").unwrap(),
                unit_price: usd(4999),
                quantity: line(2, 3).quantity,
            },
        ]
    );
    assert_eq!(stock_of(&catalogue, 1).await, 3);
    assert_eq!(stock_of(&catalogue, 2).await, 0);
}

#[tokio::test]
async fn reserved_lines_come_back_one_per_isbn_in_isbn_order() {
    let catalogue = catalogue_of((1..=3).map(|n| book(n, "Title", "Author", 100, 10)));
    let reserved = catalogue
        .reserve_all(
            fresh_reservation(),
            &[line(3, 1), line(1, 1), line(2, 1), line(3, 2)],
        )
        .await
        .unwrap();
    let summary: Vec<(Isbn, u32)> = reserved
        .iter()
        .map(|line| (line.isbn, line.quantity.get()))
        .collect();
    assert_eq!(summary, vec![(isbn(1), 1), (isbn(2), 1), (isbn(3), 3)]);
}

#[tokio::test]
async fn reserving_no_lines_takes_nothing_and_returns_nothing() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 10)]);
    assert_eq!(
        catalogue
            .reserve_all(fresh_reservation(), &[])
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(stock_of(&catalogue, 1).await, 10);
}

#[tokio::test]
async fn a_reservation_with_one_line_out_of_stock_takes_nothing_from_the_other_lines() {
    let catalogue = catalogue_of([
        book(1, "Plenty", "Author", 100, 10),
        book(2, "Scarce", "Author", 100, 1),
        book(3, "Plenty Too", "Author", 100, 10),
    ]);
    let result = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 4), line(2, 2), line(3, 4)])
        .await;
    assert!(
        matches!(
            result,
            Err(InventoryError::OutOfStock { isbn: i, requested: 2, available: 1 }) if i == isbn(2)
        ),
        "{result:?}"
    );
    assert_eq!(stock_of(&catalogue, 1).await, 10);
    assert_eq!(stock_of(&catalogue, 2).await, 1);
    assert_eq!(stock_of(&catalogue, 3).await, 10);
}

#[tokio::test]
async fn lines_for_the_same_isbn_are_merged_and_checked_as_their_sum() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 5)]);

    let too_many = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 3), line(1, 3)])
        .await;
    assert!(
        matches!(
            too_many,
            Err(InventoryError::OutOfStock {
                requested: 6,
                available: 5,
                ..
            })
        ),
        "{too_many:?}"
    );
    assert_eq!(stock_of(&catalogue, 1).await, 5);

    let reserved = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 2), line(1, 3)])
        .await
        .unwrap();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].quantity.get(), 5);
    assert_eq!(stock_of(&catalogue, 1).await, 0);
}

#[tokio::test]
async fn lines_for_one_isbn_adding_up_to_more_than_one_hundred_fail_and_take_nothing() {
    let catalogue = catalogue_of([
        book(1, "Other", "Author", 100, 500),
        book(2, "Title", "Author", 100, 500),
    ]);
    let result = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 1), line(2, 60), line(2, 41)])
        .await;
    assert!(
        matches!(
            result,
            Err(InventoryError::QuantityTooLarge { isbn: i, error: QuantityError { got: 101 } }) if i == isbn(2)
        ),
        "{result:?}"
    );
    assert_eq!(stock_of(&catalogue, 1).await, 500);
    assert_eq!(stock_of(&catalogue, 2).await, 500);
}

#[tokio::test]
async fn a_reservation_naming_an_unknown_book_fails_and_takes_nothing() {
    let catalogue = catalogue_of([book(1, "Known", "Author", 100, 10)]);
    let result = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 1), line(2, 1)])
        .await;
    assert!(
        matches!(result, Err(InventoryError::UnknownBook { isbn: i }) if i == isbn(2)),
        "{result:?}"
    );
    assert_eq!(stock_of(&catalogue, 1).await, 10);
}

#[tokio::test]
async fn releasing_gives_reserved_stock_back() {
    let catalogue = catalogue_of([
        book(1, "One", "Author", 100, 4),
        book(2, "Two", "Author", 100, 4),
    ]);
    let lines = [line(1, 3), line(2, 1), line(1, 1)];
    catalogue
        .reserve_all(fresh_reservation(), &lines)
        .await
        .unwrap();
    assert_eq!(stock_of(&catalogue, 1).await, 0);
    catalogue.release_all(&lines).await.unwrap();
    assert_eq!(stock_of(&catalogue, 1).await, 4);
    assert_eq!(stock_of(&catalogue, 2).await, 4);
}

#[tokio::test]
async fn releasing_to_an_unknown_book_fails_and_gives_nothing_back() {
    let catalogue = catalogue_of([book(1, "Known", "Author", 100, 0)]);
    let result = catalogue.release_all(&[line(1, 2), line(2, 2)]).await;
    assert!(matches!(result, Err(InventoryError::UnknownBook { isbn: i }) if i == isbn(2)));
    assert_eq!(stock_of(&catalogue, 1).await, 0);
}

#[tokio::test]
async fn releasing_past_the_largest_stock_count_fails_and_gives_nothing_back() {
    let catalogue = catalogue_of([
        book(1, "Ordinary", "Author", 100, 0),
        book(2, "Hoarded", "Author", 100, u32::MAX - 1),
    ]);
    let result = catalogue.release_all(&[line(1, 5), line(2, 2)]).await;
    assert!(
        matches!(result, Err(InventoryError::StockOverflow { isbn: i }) if i == isbn(2)),
        "{result:?}"
    );
    assert_eq!(stock_of(&catalogue, 1).await, 0);
    assert_eq!(stock_of(&catalogue, 2).await, u32::MAX - 1);
}

#[tokio::test]
async fn a_book_whose_lock_was_poisoned_can_still_be_read_and_reserved() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 3)]);
    let record = catalogue.record(&isbn(1)).unwrap();
    let panicked = std::thread::spawn(move || {
        let _guard = record.lock().unwrap();
        panic!("deliberate panic to poison the book's lock");
    })
    .join();
    assert!(panicked.is_err());
    assert!(catalogue.record(&isbn(1)).unwrap().is_poisoned());

    catalogue
        .reserve_all(fresh_reservation(), &[line(1, 2)])
        .await
        .unwrap();
    assert_eq!(stock_of(&catalogue, 1).await, 1);
}

#[tokio::test]
async fn listing_an_empty_catalogue_gives_an_empty_last_page() {
    let page = InMemoryCatalogue::new()
        .list(&BookQuery::default())
        .await
        .unwrap();
    assert!(page.books.is_empty());
    assert_eq!(page.next_after, None);
}

#[tokio::test]
async fn twenty_five_books_in_pages_of_ten_come_in_three_pages_each_book_once_in_isbn_order() {
    // Inserted out of order on purpose.
    let catalogue = catalogue_of((0..25).map(|n| book((n * 7) % 25, "Title", "Author", 100, 1)));
    let pages = all_pages(
        &catalogue,
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
    assert_eq!(pages[2].next_after, None);
    let seen: Vec<Isbn> = pages
        .iter()
        .flat_map(|page| page.books.iter().map(|book| book.isbn))
        .collect();
    assert_eq!(seen, (0..25).map(isbn).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_last_book_has_no_next_page() {
    let catalogue = catalogue_of((0..20).map(|n| book(n, "Title", "Author", 100, 1)));
    let pages = all_pages(
        &catalogue,
        BookQuery {
            limit: limit(10),
            ..BookQuery::default()
        },
    )
    .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[1].books.len(), 10);
    assert_eq!(pages[1].next_after, None);
}

#[tokio::test]
async fn a_cursor_that_is_not_in_the_catalogue_starts_after_where_it_would_be() {
    let catalogue = catalogue_of([0, 10, 20].map(|n| book(n, "Title", "Author", 100, 1)));
    let page = catalogue
        .list(&BookQuery {
            after: Some(isbn(5)),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    let seen: Vec<Isbn> = page.books.iter().map(|book| book.isbn).collect();
    assert_eq!(seen, vec![isbn(10), isbn(20)]);
}

#[tokio::test]
async fn filters_combine_with_paging_and_every_match_is_listed_once() {
    // 300 books, more than one index batch; every third is by Jane Austen, every fifth
    // has "Rust" in its title.
    let catalogue = catalogue_of((0..300).map(|n| {
        let author = if n % 3 == 0 {
            "Jane Austen"
        } else {
            "Someone Else"
        };
        let title = if n % 5 == 0 {
            "The Rust Book"
        } else {
            "Another Book"
        };
        book(n, title, author, 100, 1)
    }));
    let listed = |pages: Vec<BookPage>| -> Vec<Isbn> {
        pages
            .iter()
            .flat_map(|page| page.books.iter().map(|book| book.isbn))
            .collect()
    };

    let by_author = listed(
        all_pages(
            &catalogue,
            BookQuery {
                limit: limit(7),
                author: Some("JANE austen".to_owned()),
                ..BookQuery::default()
            },
        )
        .await,
    );
    assert_eq!(
        by_author,
        (0..300)
            .filter(|n| n % 3 == 0)
            .map(isbn)
            .collect::<Vec<_>>()
    );

    let by_text = listed(
        all_pages(
            &catalogue,
            BookQuery {
                limit: limit(7),
                text: Some("rUsT".to_owned()),
                ..BookQuery::default()
            },
        )
        .await,
    );
    assert_eq!(
        by_text,
        (0..300)
            .filter(|n| n % 5 == 0)
            .map(isbn)
            .collect::<Vec<_>>()
    );

    let by_text_in_author = listed(
        all_pages(
            &catalogue,
            BookQuery {
                limit: limit(100),
                text: Some("austen".to_owned()),
                ..BookQuery::default()
            },
        )
        .await,
    );
    assert_eq!(by_text_in_author, by_author);

    let by_both = listed(
        all_pages(
            &catalogue,
            BookQuery {
                limit: limit(3),
                author: Some("jane austen".to_owned()),
                text: Some("RUST".to_owned()),
                ..BookQuery::default()
            },
        )
        .await,
    );
    assert_eq!(
        by_both,
        (0..300)
            .filter(|n| n % 15 == 0)
            .map(isbn)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_last_page_of_a_filtered_listing_has_no_next_page_even_if_other_books_follow() {
    let catalogue = catalogue_of([
        book(1, "Match", "A", 100, 1),
        book(2, "Match", "A", 100, 1),
        book(3, "Other", "B", 100, 1),
    ]);
    let page = catalogue
        .list(&BookQuery {
            limit: limit(2),
            text: Some("match".to_owned()),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.books.len(), 2);
    assert_eq!(page.next_after, None);
}

#[tokio::test]
async fn books_inserted_during_paging_cause_no_repeats_and_no_skips() {
    // Even numbers exist from the start; odd numbers are inserted between pages.
    let catalogue = catalogue_of((0..30).map(|n| book(n * 2, "Title", "Author", 100, 1)));
    let mut query = BookQuery {
        limit: limit(5),
        ..BookQuery::default()
    };
    let mut seen = Vec::new();
    let mut next_odd = 1;
    loop {
        let page = catalogue.list(&query).await.unwrap();
        seen.extend(page.books.iter().map(|book| book.isbn));
        // One book before the cursor (never to be seen), one far after it (to be seen).
        catalogue
            .insert(book(next_odd, "Early", "Author", 100, 1))
            .await
            .unwrap();
        catalogue
            .insert(book(next_odd + 40, "Late", "Author", 100, 1))
            .await
            .unwrap();
        next_odd += 2;
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }

    let distinct: BTreeSet<Isbn> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a book was listed twice");
    assert!(seen.is_sorted(), "books were listed out of order");
    for n in 0..30 {
        assert!(
            distinct.contains(&isbn(n * 2)),
            "book {} was skipped",
            n * 2
        );
    }
    assert!(
        !distinct.contains(&isbn(1)),
        "a book inserted before the cursor was listed"
    );
    assert!(
        distinct.contains(&isbn(41)),
        "a book inserted after the cursor was not listed"
    );
}

/// What an observer was told, in order: the change, the book's number and its stock.
type Told = Arc<Mutex<Vec<(BookChange, u32, u32)>>>;

/// A catalogue of `books` whose observer's calls are collected, in order.
fn observed_catalogue(books: impl IntoIterator<Item = Book>) -> (InMemoryCatalogue, Told) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let observer: CatalogueObserver = {
        let told = Arc::clone(&told);
        Arc::new(move |change, book: &Book| {
            let number = (book.isbn.as_str()[3..12]).parse::<u32>().unwrap();
            told.lock().unwrap().push((change, number, book.stock));
        })
    };
    (catalogue_of(books).observed_by(observer), told)
}

#[tokio::test]
async fn the_observer_is_told_of_creations_and_updates_but_not_of_the_books_it_started_with() {
    let (catalogue, told) = observed_catalogue([book(1, "A", "B", 100, 3)]);
    catalogue.insert(book(2, "C", "D", 200, 0)).await.unwrap();
    let patch = BookPatch {
        stock: Some(5),
        ..BookPatch::default()
    };
    catalogue.update(&isbn(2), patch).await.unwrap();
    let patch = BookPatch {
        price: Some(usd(150)),
        ..BookPatch::default()
    };
    catalogue.update(&isbn(1), patch).await.unwrap();
    assert_eq!(
        *told.lock().unwrap(),
        vec![
            (BookChange::Created, 2, 0),
            (BookChange::Updated, 2, 5),
            (BookChange::BackInStock, 2, 5),
            (BookChange::Updated, 1, 3),
        ]
    );
}

#[tokio::test]
async fn taking_the_last_copies_is_told_once_and_giving_them_back_once() {
    let (catalogue, told) =
        observed_catalogue([book(1, "A", "B", 100, 2), book(2, "C", "D", 100, 5)]);
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(1, 2), line(2, 1)])
        .await
        .unwrap();
    assert_eq!(*told.lock().unwrap(), vec![(BookChange::OutOfStock, 1, 0)]);
    catalogue.cancel_reservation(reservation).await.unwrap();
    assert_eq!(
        *told.lock().unwrap(),
        vec![
            (BookChange::OutOfStock, 1, 0),
            (BookChange::BackInStock, 1, 2)
        ]
    );
    // A refused reservation changes nothing and tells nothing.
    let refused = catalogue
        .reserve_all(fresh_reservation(), &[line(1, 3)])
        .await;
    assert!(matches!(refused, Err(InventoryError::OutOfStock { .. })));
    assert_eq!(told.lock().unwrap().len(), 2);
}
