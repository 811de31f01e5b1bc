//! [`SqlCatalogue`]: the catalogue and its reservation journal in SQL.

use bookstore_inventory::{
    Book, BookPage, BookPatch, BookQuery, CatalogueStore, InventoryError, Journal, ReservationId,
    ReservedLine, StockLine,
};
use bookstore_types::Isbn;
use chrono::{DateTime, Utc};

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;

use crate::database::dispatch;
use crate::failure::unavailable;
use crate::{BackendKind, Database};

/// A [`CatalogueStore`] in a SQL database.
///
/// Listing filters compare keys written beside each book by Rust
/// ([`bookstore_inventory::author_filter_key`], [`bookstore_inventory::text_filter_key`]),
/// so they match exactly the books the in-memory store would, Unicode case folding
/// included. A reservation is one transaction: the journal row, then one conditional update
/// per merged line in ISBN order; the first line that cannot be served rolls it all back.
///
/// On SQLite, which serves one process, books read by [`get`](CatalogueStore::get) are kept
/// in a read-through cache: a book page is the hottest read, and a cache hit skips the
/// round trip to SQLite's worker thread. Every write through this store drops the books it
/// may have changed (a reservation, the books of its lines); the cache holds at most 65,536
/// books, and a new one displaces an arbitrary other when it is full.
/// PostgreSQL is shared by several instances, so it is never cached.
#[derive(Debug, Clone)]
pub struct SqlCatalogue {
    database: Database,
    cache: Option<Arc<BookCache>>,
}

impl SqlCatalogue {
    /// The catalogue kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        let cache =
            (database.kind() == BackendKind::Sqlite).then(|| Arc::new(BookCache::default()));
        Self { database, cache }
    }

    /// Adds every book of `books` whose ISBN is not taken yet, in one transaction, and
    /// returns how many it added.
    ///
    /// This loads a whole catalogue (the demo books, or a generated one for a benchmark)
    /// much faster than one [`insert`](CatalogueStore::insert) per book, and is safe when
    /// another process loads the same books at the same moment. On an error nothing is
    /// added.
    pub async fn insert_missing(&self, books: &[Book]) -> Result<u64, InventoryError> {
        self.write(Touched::All, async {
            dispatch!(self.database, catalogue::insert_missing(books))
        })
        .await
    }

    /// Runs a write, then drops from the cache the books it may have changed, whatever the
    /// outcome (a failed write may still have committed before its error, e.g. a lost
    /// connection).
    async fn write<T>(&self, touched: Touched<'_>, write: impl Future<Output = T>) -> T {
        let result = write.await;
        if let Some(cache) = &self.cache {
            match touched {
                Touched::Books(isbns) => cache.forget(isbns),
                Touched::All => cache.clear(),
            }
        }
        result
    }
}

/// The books a write may change.
#[derive(Debug, Clone, Copy)]
enum Touched<'a> {
    /// Only these.
    Books(&'a [Isbn]),
    /// Any (the write does not say which).
    All,
}

/// Most books the SQLite cache holds (about 13 MiB of generated books).
const CACHE_CAPACITY: usize = 65_536;

/// Books read from SQLite, dropped by every write that may change them.
///
/// A read that raced with a write must not put the old book back after the write emptied
/// the cache: a read notes the generation before it queries, and stores its book only if no
/// write has begun clearing since. Filling and clearing hold `guard` so that the check and
/// the insert cannot straddle a clear.
#[derive(Debug, Default)]
struct BookCache {
    books: DashMap<Isbn, Book>,
    generation: AtomicU64,
    guard: Mutex<()>,
}

impl BookCache {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn fill(&self, generation: u64, book: &Book) {
        let _guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation() == generation {
            // Full: make room by dropping some other book, so memory stays bounded however
            // large the catalogue, and the cache stays full.
            if self.books.len() >= CACHE_CAPACITY {
                // The iterator's shard guard must be gone before `remove` locks the shard.
                let victim = self.books.iter().next().map(|entry| *entry.key());
                if let Some(victim) = victim {
                    self.books.remove(&victim);
                }
            }
            self.books.insert(book.isbn, book.clone());
        }
    }

    fn clear(&self) {
        let _guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.books.clear();
    }

    /// Drops these books only. Bumping the generation still stops *every* read that began
    /// before the write from filling the cache: such a read cannot tell whether it saw
    /// the old row of one of these books.
    fn forget(&self, isbns: &[Isbn]) {
        let _guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for isbn in isbns {
            self.books.remove(isbn);
        }
    }
}

#[async_trait::async_trait]
impl CatalogueStore for SqlCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        let isbn = [book.isbn];
        self.write(Touched::Books(&isbn), async {
            dispatch!(self.database, catalogue::insert(book))
        })
        .await
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        let Some(cache) = &self.cache else {
            return dispatch!(self.database, catalogue::get(isbn));
        };
        if let Some(book) = cache.books.get(isbn) {
            return Ok(book.clone());
        }
        let generation = cache.generation();
        let book = dispatch!(self.database, catalogue::get(isbn))?;
        cache.fill(generation, &book);
        Ok(book)
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        self.write(Touched::Books(std::slice::from_ref(isbn)), async {
            dispatch!(self.database, catalogue::update(isbn, patch))
        })
        .await
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        dispatch!(self.database, catalogue::list(query))
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        self.write(Touched::Books(&isbns), async {
            dispatch!(
                self.database,
                catalogue::reserve_all(self.database.instance(), reservation, lines)
            )
        })
        .await
    }

    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        dispatch!(self.database, catalogue::confirm_reservation(reservation))
    }

    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        // The journal, not the caller, knows which books get their stock back.
        self.write(Touched::All, async {
            dispatch!(self.database, catalogue::cancel_reservation(reservation))
        })
        .await
    }

    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        dispatch!(self.database, catalogue::reservations_older_than(cutoff))
    }

    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        dispatch!(
            self.database,
            catalogue::begin_return(self.database.instance(), id, lines)
        )
    }

    async fn complete_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        // The journal, not the caller, knows which books get their stock back.
        self.write(Touched::All, async {
            dispatch!(self.database, catalogue::complete_return(id))
        })
        .await
    }

    async fn abandon_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        dispatch!(self.database, catalogue::abandon_return(id))
    }

    async fn returns_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        dispatch!(self.database, catalogue::returns_older_than(cutoff))
    }

    async fn stopped_processes_journal(&self) -> Result<Journal, InventoryError> {
        dispatch!(self.database, catalogue::stopped_processes_journal())
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        self.write(Touched::Books(&isbns), async {
            dispatch!(self.database, catalogue::release_all(lines))
        })
        .await
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        self.database
            .check_ready()
            .await
            .map_err(unavailable::<InventoryError>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bookstore_inventory::generated_catalogue;

    #[test]
    fn a_full_cache_stays_full_and_keeps_the_newest_book() {
        let cache = BookCache::default();
        let books: Vec<Book> = generated_catalogue(CACHE_CAPACITY as u64 + 100).collect();
        for book in &books {
            cache.fill(cache.generation(), book);
        }
        assert_eq!(cache.books.len(), CACHE_CAPACITY);
        let newest = books.last().unwrap();
        assert_eq!(cache.books.get(&newest.isbn).as_deref(), Some(newest));
    }

    #[test]
    fn a_read_that_began_before_a_write_does_not_fill_the_cache() {
        let cache = BookCache::default();
        let book = generated_catalogue(1).next().unwrap();
        let before = cache.generation();
        cache.forget(&[book.isbn]);
        cache.fill(before, &book);
        assert!(cache.books.is_empty());
    }
}
