//! The reservation journal of [`InMemoryCatalogue`]: what `reserve_all` records, and how
//! `confirm_reservation`, `cancel_reservation` and `reservations_older_than` use it.

use std::sync::Arc;

use chrono::Duration;

use super::*;
use crate::test_support::{book, fresh_reservation, isbn, line};

fn catalogue_of(books: impl IntoIterator<Item = Book>) -> InMemoryCatalogue {
    InMemoryCatalogue::with_books(books).unwrap()
}

async fn stock_of(catalogue: &InMemoryCatalogue, number: u32) -> u32 {
    catalogue.get(&isbn(number)).await.unwrap().stock
}

/// Every journaled reservation, whatever its age.
async fn journaled(catalogue: &InMemoryCatalogue) -> Vec<ReservationId> {
    catalogue
        .reservations_older_than(Utc::now() + Duration::days(1))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reservation_is_journaled_until_it_is_confirmed_and_confirming_keeps_the_stock_taken() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 5)]);
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(1, 2)])
        .await
        .unwrap();
    assert_eq!(journaled(&catalogue).await, vec![reservation]);

    catalogue.confirm_reservation(reservation).await.unwrap();
    assert_eq!(journaled(&catalogue).await, vec![]);
    assert_eq!(stock_of(&catalogue, 1).await, 3);

    // Confirming again, cancelling after the confirmation, and confirming an id never
    // journaled all succeed and change nothing.
    catalogue.confirm_reservation(reservation).await.unwrap();
    catalogue.cancel_reservation(reservation).await.unwrap();
    catalogue
        .confirm_reservation(fresh_reservation())
        .await
        .unwrap();
    assert_eq!(stock_of(&catalogue, 1).await, 3);
}

#[tokio::test]
async fn cancelling_a_reservation_gives_its_merged_lines_back_once_and_forgets_it() {
    let catalogue = catalogue_of([
        book(1, "One", "Author", 100, 5),
        book(2, "Two", "Author", 100, 5),
    ]);
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(2, 1), line(1, 2), line(2, 3)])
        .await
        .unwrap();
    assert_eq!(
        (stock_of(&catalogue, 1).await, stock_of(&catalogue, 2).await),
        (3, 1)
    );

    catalogue.cancel_reservation(reservation).await.unwrap();
    assert_eq!(
        (stock_of(&catalogue, 1).await, stock_of(&catalogue, 2).await),
        (5, 5)
    );
    assert_eq!(journaled(&catalogue).await, vec![]);

    catalogue.cancel_reservation(reservation).await.unwrap();
    catalogue
        .cancel_reservation(fresh_reservation())
        .await
        .unwrap();
    assert_eq!(
        (stock_of(&catalogue, 1).await, stock_of(&catalogue, 2).await),
        (5, 5)
    );
}

#[tokio::test]
async fn reusing_a_journaled_id_fails_and_takes_nothing() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 5)]);
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(1, 1)])
        .await
        .unwrap();
    // Even a line that could not be served reports the reused id first.
    for lines in [vec![line(1, 1)], vec![line(1, 50)], vec![line(9, 1)]] {
        let result = catalogue.reserve_all(reservation, &lines).await;
        assert!(
            matches!(result, Err(InventoryError::ReservationExists { reservation: r }) if r == reservation),
            "{result:?}"
        );
    }
    assert_eq!(stock_of(&catalogue, 1).await, 4);
    assert_eq!(journaled(&catalogue).await, vec![reservation]);
}

#[tokio::test]
async fn a_failed_reservation_journals_nothing() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 1)]);
    for lines in [
        vec![line(1, 2)],
        vec![line(2, 1)],
        vec![line(1, 60), line(1, 41)],
    ] {
        let reservation = fresh_reservation();
        assert!(catalogue.reserve_all(reservation, &lines).await.is_err());
        // The id is still free.
        catalogue.reserve_all(reservation, &[]).await.unwrap();
        catalogue.cancel_reservation(reservation).await.unwrap();
    }
    assert_eq!(journaled(&catalogue).await, vec![]);
    assert_eq!(stock_of(&catalogue, 1).await, 1);
}

#[tokio::test]
async fn reservations_older_than_a_cutoff_are_listed_oldest_first() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 10)]);
    let first = fresh_reservation();
    let second = fresh_reservation();
    catalogue.reserve_all(first, &[line(1, 1)]).await.unwrap();
    // The clock must move on between the two reservations for the order to be defined.
    let between = Utc::now();
    while Utc::now() == between {
        std::hint::spin_loop();
    }
    catalogue.reserve_all(second, &[line(1, 1)]).await.unwrap();

    let before_both = between - Duration::hours(1);
    assert_eq!(
        catalogue
            .reservations_older_than(before_both)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        catalogue.reservations_older_than(between).await.unwrap(),
        vec![first]
    );
    assert_eq!(journaled(&catalogue).await, vec![first, second]);

    catalogue.confirm_reservation(first).await.unwrap();
    assert_eq!(journaled(&catalogue).await, vec![second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_sixteen_concurrent_cancels_of_one_reservation_the_stock_comes_back_exactly_once() {
    let catalogue = Arc::new(catalogue_of([
        book(1, "One", "Author", 100, 10),
        book(2, "Two", "Author", 100, 10),
    ]));
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(1, 3), line(2, 4)])
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let cancels: Vec<_> = (0..16)
        .map(|_| {
            let catalogue = Arc::clone(&catalogue);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                catalogue.cancel_reservation(reservation).await
            })
        })
        .collect();
    for cancel in futures_util::future::join_all(cancels).await {
        cancel.unwrap().unwrap();
    }
    assert_eq!(stock_of(&catalogue, 1).await, 10);
    assert_eq!(stock_of(&catalogue, 2).await, 10);
    assert_eq!(journaled(&catalogue).await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirm_racing_a_cancel_either_keeps_or_returns_the_stock_never_both() {
    for _ in 0..50 {
        let catalogue = Arc::new(catalogue_of([book(1, "One", "Author", 100, 10)]));
        let reservation = fresh_reservation();
        catalogue
            .reserve_all(reservation, &[line(1, 3)])
            .await
            .unwrap();
        let confirming = {
            let catalogue = Arc::clone(&catalogue);
            tokio::spawn(async move { catalogue.confirm_reservation(reservation).await })
        };
        let cancelling = {
            let catalogue = Arc::clone(&catalogue);
            tokio::spawn(async move { catalogue.cancel_reservation(reservation).await })
        };
        confirming.await.unwrap().unwrap();
        cancelling.await.unwrap().unwrap();
        let stock = stock_of(&catalogue, 1).await;
        assert!(stock == 7 || stock == 10, "stock {stock}");
        assert_eq!(journaled(&catalogue).await, vec![]);
    }
}

#[tokio::test]
async fn a_cancel_that_would_overflow_a_stock_count_fails_and_keeps_the_record() {
    let catalogue = catalogue_of([book(1, "Title", "Author", 100, 5)]);
    let reservation = fresh_reservation();
    catalogue
        .reserve_all(reservation, &[line(1, 5)])
        .await
        .unwrap();
    let hoard = BookPatch {
        stock: Some(u32::MAX),
        ..BookPatch::default()
    };
    catalogue.update(&isbn(1), hoard).await.unwrap();
    let result = catalogue.cancel_reservation(reservation).await;
    assert!(
        matches!(result, Err(InventoryError::StockOverflow { .. })),
        "{result:?}"
    );
    assert_eq!(journaled(&catalogue).await, vec![reservation]);
    assert_eq!(stock_of(&catalogue, 1).await, u32::MAX);
}
