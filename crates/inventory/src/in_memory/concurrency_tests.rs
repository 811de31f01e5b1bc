//! [`InMemoryCatalogue`] under real parallelism: no overselling, no deadlock, no lost stock,
//! consistent paging while books are inserted.
//!
//! Threads drive the store's futures with `now_or_never`: the in-memory store never waits
//! for anything, so its futures are ready on the first poll. Tests that could hang on a
//! deadlock wait for their threads with a deadline instead of joining them.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use proptest::prelude::*;

use super::*;
use crate::PageLimit;
use crate::test_support::{book, fresh_reservation, isbn, line};

/// Long enough for a slow CI machine, short enough that a deadlock fails the test.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a store future to completion; in-memory store futures never wait.
fn now<T>(future: impl Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("in-memory store futures are ready at once")
}

/// Spawns `worker(index)` on `threads` threads and returns their results in index order,
/// failing the test if they are not all finished by the deadline.
fn run_threads<T: Send + 'static>(
    threads: usize,
    worker: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let worker = Arc::new(worker);
    let (sender, receiver) = mpsc::channel();
    for index in 0..threads {
        let worker = Arc::clone(&worker);
        let sender = sender.clone();
        thread::spawn(move || {
            let _ = sender.send((index, worker(index)));
        });
    }
    drop(sender);
    let deadline = Instant::now() + DEADLINE;
    let mut results: Vec<(usize, T)> = (0..threads)
        .map(|finished| {
            let left = deadline.saturating_duration_since(Instant::now());
            receiver.recv_timeout(left).unwrap_or_else(|error| {
                panic!("only {finished} of {threads} threads finished ({error}): deadlock?")
            })
        })
        .collect();
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_parallel_reservations_of_one_copy_from_a_stock_of_ten_let_exactly_ten_succeed()
{
    let catalogue =
        Arc::new(InMemoryCatalogue::with_books([book(1, "Scarce", "Author", 100, 10)]).unwrap());
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let catalogue = Arc::clone(&catalogue);
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
    for task in tasks {
        match task.await.unwrap() {
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
    assert_eq!(catalogue.get(&isbn(1)).await.unwrap().stock, 0);
}

#[test]
fn overlapping_reservations_taken_in_every_order_never_deadlock_and_account_for_all_stock() {
    const BOOKS: u32 = 4;
    const INITIAL_STOCK: u32 = 400;
    const ROUNDS: usize = 300;
    // Overlapping line sets, each naming books in a different order.
    let line_sets: Vec<Vec<StockLine>> = vec![
        vec![line(0, 1), line(1, 1)],
        vec![line(1, 1), line(0, 1)],
        vec![line(2, 2), line(1, 1), line(0, 1)],
        vec![line(3, 1), line(0, 2)],
        vec![line(0, 1), line(3, 1), line(2, 1), line(1, 1)],
        vec![line(3, 1), line(2, 1), line(3, 1)],
    ];
    let catalogue = Arc::new(
        InMemoryCatalogue::with_books(
            (0..BOOKS).map(|n| book(n, "Title", "Author", 100, INITIAL_STOCK)),
        )
        .unwrap(),
    );
    let threads = 8;
    let start = Arc::new(Barrier::new(threads));

    let worker_catalogue = Arc::clone(&catalogue);
    let net_taken_per_thread = run_threads(threads, move |index| {
        start.wait();
        let mut net_taken = [0i64; BOOKS as usize];
        for round in 0..ROUNDS {
            let lines = &line_sets[(index + round) % line_sets.len()];
            if now(worker_catalogue.reserve_all(fresh_reservation(), lines)).is_ok() {
                for line in lines {
                    net_taken[line.isbn_number()] += i64::from(line.quantity.get());
                }
                // Give every third successful reservation back, in reverse order.
                if round % 3 == 0 {
                    let reversed: Vec<StockLine> = lines.iter().rev().copied().collect();
                    now(worker_catalogue.release_all(&reversed)).unwrap();
                    for line in lines {
                        net_taken[line.isbn_number()] -= i64::from(line.quantity.get());
                    }
                }
            }
        }
        net_taken
    });

    for n in 0..BOOKS {
        let taken: i64 = net_taken_per_thread
            .iter()
            .map(|taken| taken[n as usize])
            .sum();
        let stock = now(catalogue.get(&isbn(n))).unwrap().stock;
        assert_eq!(
            i64::from(stock),
            i64::from(INITIAL_STOCK) - taken,
            "book {n}"
        );
    }
    // Demand exceeds supply, so some reservations must have failed and some stock run out.
    assert!((0..BOOKS).any(|n| now(catalogue.get(&isbn(n))).unwrap().stock < 3));
}

#[test]
fn paging_while_other_threads_insert_lists_every_earlier_book_once_in_order() {
    let catalogue = Arc::new(
        InMemoryCatalogue::with_books((0..500).map(|n| book(n * 4, "Title", "Author", 100, 1)))
            .unwrap(),
    );
    let threads = 3;
    let start = Arc::new(Barrier::new(threads));

    let worker_catalogue = Arc::clone(&catalogue);
    let results = run_threads(threads, move |index| {
        start.wait();
        if index == 0 {
            // The reader: pages through the whole catalogue, three books at a time.
            let mut seen = Vec::new();
            let mut query = BookQuery {
                limit: PageLimit::new(3).unwrap(),
                ..BookQuery::default()
            };
            loop {
                let page = now(worker_catalogue.list(&query)).unwrap();
                seen.extend(page.books.iter().map(|book| book.isbn));
                match page.next_after {
                    Some(after) => query.after = Some(after),
                    None => return seen,
                }
            }
        }
        // The writers: insert books between the existing ones.
        for n in 0..500 {
            now(worker_catalogue.insert(book(n * 4 + index as u32, "New", "Author", 100, 1)))
                .unwrap();
        }
        Vec::new()
    });

    let seen = &results[0];
    let distinct: BTreeSet<Isbn> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a book was listed twice");
    assert!(seen.is_sorted(), "books were listed out of order");
    for n in 0..500 {
        assert!(
            distinct.contains(&isbn(n * 4)),
            "book {} was skipped",
            n * 4
        );
    }
}

/// The number that [`isbn`] turned into this line's ISBN.
trait IsbnNumber {
    fn isbn_number(&self) -> usize;
}

impl IsbnNumber for StockLine {
    fn isbn_number(&self) -> usize {
        self.isbn.as_str()[3..12].parse().unwrap()
    }
}

/// One step of the property test: reserve or release these `(book, quantity)` lines.
#[derive(Debug, Clone)]
enum Operation {
    Reserve(Vec<(u32, u32)>),
    Release(Vec<(u32, u32)>),
}

fn operation_strategy() -> impl Strategy<Value = Operation> {
    let lines = proptest::collection::vec((0u32..3, 1u32..=60), 1..4);
    prop_oneof![
        lines.clone().prop_map(Operation::Reserve),
        lines.prop_map(Operation::Release),
    ]
}

proptest! {
    #[test]
    fn stock_never_goes_negative_and_equals_initial_minus_reserved_plus_released(
        initial in proptest::collection::vec(0u32..80, 3),
        operations in proptest::collection::vec(operation_strategy(), 0..40),
    ) {
        let catalogue = InMemoryCatalogue::with_books(
            (0..3).map(|n| book(n, "Title", "Author", 100, initial[n as usize])),
        ).unwrap();
        let mut reserved = [0u64; 3];
        let mut released = [0u64; 3];

        for operation in operations {
            let (pairs, reserving) = match &operation {
                Operation::Reserve(pairs) => (pairs, true),
                Operation::Release(pairs) => (pairs, false),
            };
            let lines: Vec<StockLine> = pairs.iter().map(|&(n, quantity)| line(n, quantity)).collect();
            let mut merged = [0u64; 3];
            for &(n, quantity) in pairs {
                merged[n as usize] += u64::from(quantity);
            }
            let before: Vec<u64> = (0..3)
                .map(|n| u64::from(now(catalogue.get(&isbn(n))).unwrap().stock))
                .collect();
            let too_large = merged.iter().any(|&quantity| quantity > 100);
            let lacking = (0..3).any(|n| merged[n] > before[n]);

            if reserving {
                let result = now(catalogue.reserve_all(fresh_reservation(), &lines));
                if too_large {
                    prop_assert!(matches!(result, Err(InventoryError::QuantityTooLarge { .. })), "{:?}", result);
                } else if lacking {
                    prop_assert!(matches!(result, Err(InventoryError::OutOfStock { .. })), "{:?}", result);
                } else {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    for n in 0..3 { reserved[n] += merged[n]; }
                }
            } else {
                let result = now(catalogue.release_all(&lines));
                if too_large {
                    prop_assert!(matches!(result, Err(InventoryError::QuantityTooLarge { .. })), "{:?}", result);
                } else {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    for n in 0..3 { released[n] += merged[n]; }
                }
            }

            for n in 0..3u32 {
                let stock = i128::from(now(catalogue.get(&isbn(n))).unwrap().stock);
                let expected = i128::from(initial[n as usize]) - i128::from(reserved[n as usize])
                    + i128::from(released[n as usize]);
                prop_assert!(expected >= 0, "the model went negative for book {}", n);
                prop_assert_eq!(stock, expected, "book {}", n);
            }
        }
    }
}
