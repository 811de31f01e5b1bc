//! [`BookCache`]: the books read from SQLite, kept for the next read until a write may
//! change them.
//!
//! A book page is the hottest read, and a cache hit skips SQLite altogether. This is
//! correct because a SQLite file serves one process (see [`crate::connect`]) and every
//! catalogue write of that process drops the books it may change. The cache belongs to the
//! database handle, so every catalogue store on it shares it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bookstore_inventory::Book;
use bookstore_types::Isbn;
use dashmap::DashMap;

/// Most books the SQLite cache holds (about 13 MiB of generated books).
const CACHE_CAPACITY: usize = 65_536;

/// Books read from SQLite, dropped by every write that may change them.
///
/// A read that raced with a write must not put the old book back after the write emptied
/// the cache: a read notes the generation before it queries, and stores its book only if no
/// write has begun clearing since. Filling and clearing hold `guard` so that the check and
/// the insert cannot straddle a clear.
#[derive(Debug, Default)]
pub(crate) struct BookCache {
    books: DashMap<Isbn, Book>,
    generation: AtomicU64,
    guard: Mutex<()>,
}

impl BookCache {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn fill(&self, generation: u64, book: &Book) {
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

    pub(crate) fn clear(&self) {
        let _guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.books.clear();
    }

    /// Drops these books only. Bumping the generation still stops *every* read that began
    /// before the write from filling the cache: such a read cannot tell whether it saw
    /// the old row of one of these books.
    pub(crate) fn forget(&self, isbns: &[Isbn]) {
        let _guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for isbn in isbns {
            self.books.remove(isbn);
        }
    }
}

/// The books a write may change.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Touched<'a> {
    /// Only these.
    Books(&'a [Isbn]),
    /// Any (the write does not say which).
    All,
}

impl BookCache {
    /// A cached book.
    pub(crate) fn get(&self, isbn: &Isbn) -> Option<Book> {
        self.books.get(isbn).map(|book| book.clone())
    }

    /// Drops the books a write touched.
    pub(crate) fn drop_touched(&self, touched: Touched<'_>) {
        match touched {
            Touched::Books(isbns) => self.forget(isbns),
            Touched::All => self.clear(),
        }
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
