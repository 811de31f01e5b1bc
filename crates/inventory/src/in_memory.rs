//! [`InMemoryCatalogue`]: a [`CatalogueStore`] kept in process memory, safe under real
//! parallelism.
//!
//! # Design
//!
//! - Each book is a record `Arc<Mutex<Book>>` in a `DashMap` keyed by ISBN, so operations on
//!   different books rarely contend. A second structure, an ordered index
//!   `RwLock<BTreeMap<Isbn, record>>` holding the same records, serves cursor paging
//!   without a map look-up per book.
//! - A `DashMap` guard is never held while taking any other lock (its shard locks are not
//!   reentrant): records are cloned out of the map first, then locked.
//! - Operations that lock several records ([`reserve_all`](CatalogueStore::reserve_all),
//!   [`release_all`](CatalogueStore::release_all)) lock them in ascending ISBN order, so two
//!   of them can never wait for each other. They check every line before changing any, and
//!   change nothing that can panic, so a poisoned lock still guards a consistent book and is
//!   simply recovered.
//! - A book enters the map before the index and is never removed, so every ISBN in the index
//!   has a record.
//! - The reservation journal and the return journal are one `Mutex<HashMap>` each. Lock order: book records (ascending
//!   ISBN) first, the journal last; the journal lock is held only for short, non-blocking
//!   work. A reservation inserts its journal record while it holds the locks of its books,
//!   and a cancellation removes the record while it holds them, so the journal and the stock
//!   change together as far as any other operation can see. Completing a return is the same
//!   operation as cancelling a reservation, on the other map.

use std::collections::hash_map::Entry as JournalEntry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bookstore_types::Isbn;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::query::BookFilter;
use crate::stock::merge_lines;
use crate::{
    Book, BookPage, BookPatch, BookQuery, CatalogueStore, InventoryError, ReservationId,
    ReservedLine, StockLine,
};

/// How many records [`InMemoryCatalogue::list`](CatalogueStore::list) copies out of the index
/// per read lock, so that writers are never blocked for a whole scan.
const INDEX_BATCH: usize = 128;

/// One book, shared between the map and any operation that has looked it up.
type BookRecord = Arc<Mutex<Book>>;

/// One reservation (or return) in a journal: the merged lines it took (or gives back) and
/// when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JournalRecord {
    lines: Vec<StockLine>,
    created_at: DateTime<Utc>,
}

/// What a change did to a book, as told to a catalogue's [`CatalogueObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookChange {
    /// The book was added ([`CatalogueStore::insert`]).
    Created,
    /// The book was patched ([`CatalogueStore::update`]).
    Updated,
    /// The book's stock went down to 0.
    OutOfStock,
    /// The book's stock went up from 0.
    BackInStock,
}

/// Told of every change to a book, with the book as the change left it, while the book is
/// still locked: the calls for one book come in the order of its changes, and no reader sees
/// a change before its observer was told. It must not call back into the catalogue.
pub type CatalogueObserver = Arc<dyn Fn(BookChange, &Book) + Send + Sync>;

/// A catalogue held in memory; lost when the process ends.
pub struct InMemoryCatalogue {
    books: DashMap<Isbn, BookRecord>,
    isbn_index: RwLock<BTreeMap<Isbn, BookRecord>>,
    journal: Mutex<HashMap<ReservationId, JournalRecord>>,
    returns: Mutex<HashMap<ReservationId, JournalRecord>>,
    observer: Option<CatalogueObserver>,
}

impl InMemoryCatalogue {
    /// An empty catalogue.
    pub fn new() -> Self {
        Self {
            books: DashMap::new(),
            isbn_index: RwLock::new(BTreeMap::new()),
            journal: Mutex::new(HashMap::new()),
            returns: Mutex::new(HashMap::new()),
            observer: None,
        }
    }

    /// This catalogue, telling `observer` of every later change (the books it already holds
    /// are not announced).
    pub fn observed_by(mut self, observer: CatalogueObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn tell(&self, change: BookChange, book: &Book) {
        if let Some(observer) = &self.observer {
            observer(change, book);
        }
    }

    /// Tells of the stock of `book` moving from `before` to its current count.
    fn tell_stock_move(&self, before: u32, book: &Book) {
        if before > 0 && book.stock == 0 {
            self.tell(BookChange::OutOfStock, book);
        } else if before == 0 && book.stock > 0 {
            self.tell(BookChange::BackInStock, book);
        }
    }

    /// A catalogue holding `books`, e.g. [`demo_catalogue`](crate::demo_catalogue)`()`.
    ///
    /// Fails with [`InventoryError::AlreadyExists`] if two books share an ISBN.
    pub fn with_books(books: impl IntoIterator<Item = Book>) -> Result<Self, InventoryError> {
        let catalogue = Self::new();
        for book in books {
            catalogue.insert_book(book)?;
        }
        Ok(catalogue)
    }

    fn insert_book(&self, book: Book) -> Result<Book, InventoryError> {
        let isbn = book.isbn;
        let record = Arc::new(Mutex::new(book.clone()));
        {
            // Locked (uncontended: nobody else has it yet) until the observer was told, so
            // that a change made as soon as it is in the map is told after its creation.
            let locked = lock_book(&record);
            match self.books.entry(isbn) {
                Entry::Occupied(_) => return Err(InventoryError::AlreadyExists { isbn }),
                Entry::Vacant(vacant) => {
                    vacant.insert(Arc::clone(&record));
                }
            }
            self.tell(BookChange::Created, &locked);
        }
        // The shard guard is gone: a map guard is never held while taking another lock.
        self.isbn_index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(isbn, record);
        Ok(book)
    }

    /// The record of a book, cloned out of the map so that no map guard outlives this call.
    fn record(&self, isbn: &Isbn) -> Option<BookRecord> {
        self.books.get(isbn).map(|entry| Arc::clone(entry.value()))
    }

    fn get_book(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        let record = self
            .record(isbn)
            .ok_or(InventoryError::NotFound { isbn: *isbn })?;
        let book = lock_book(&record).clone();
        Ok(book)
    }

    fn update_book(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        let record = self
            .record(isbn)
            .ok_or(InventoryError::NotFound { isbn: *isbn })?;
        let mut book = lock_book(&record);
        let before = book.stock;
        patch.apply_to(&mut book);
        self.tell(BookChange::Updated, &book);
        self.tell_stock_move(before, &book);
        Ok(book.clone())
    }

    fn list_books(&self, query: &BookQuery) -> BookPage {
        let filter = BookFilter::new(query);
        let limit = query.limit.get() as usize;
        // One more than a page, to learn whether another page follows.
        let wanted = limit + 1;
        let mut books: Vec<Book> = Vec::with_capacity(wanted);
        // Without a filter every book matches: copy out just the records of one page.
        let batch_size = if filter.matches_everything() {
            wanted
        } else {
            INDEX_BATCH
        };
        let mut cursor = query.after;
        'scan: loop {
            let batch = self.records_after(cursor, batch_size);
            let Some((last, _)) = batch.last() else {
                break;
            };
            cursor = Some(*last);
            for (_, record) in &batch {
                let book = lock_book(record);
                if filter.matches_everything() || filter.matches(&book) {
                    books.push(book.clone());
                    if books.len() == wanted {
                        break 'scan;
                    }
                }
            }
        }
        let next_after = if books.len() > limit {
            books.truncate(limit);
            books.last().map(|book| book.isbn)
        } else {
            None
        };
        BookPage { books, next_after }
    }

    /// Up to `count` records strictly after `cursor`, in ISBN order, copied out of the
    /// index (so that the index lock is held only while copying).
    fn records_after(&self, cursor: Option<Isbn>, count: usize) -> Vec<(Isbn, BookRecord)> {
        let index = self
            .isbn_index
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let lower = match cursor {
            Some(isbn) => Bound::Excluded(isbn),
            None => Bound::Unbounded,
        };
        index
            .range((lower, Bound::Unbounded))
            .take(count)
            .map(|(isbn, record)| (*isbn, Arc::clone(record)))
            .collect()
    }

    /// The records of `lines` (merged, so sorted by ISBN and distinct); `None` for a line
    /// whose book is not in the catalogue.
    fn records_for(&self, lines: &[StockLine]) -> Vec<Option<BookRecord>> {
        lines.iter().map(|line| self.record(&line.isbn)).collect()
    }

    fn lock_journal(&self) -> MutexGuard<'_, HashMap<ReservationId, JournalRecord>> {
        lock_map(&self.journal)
    }

    fn begin_return_of(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        let lines = merge_lines(lines)?;
        lock_map(&self.returns)
            .entry(id)
            .or_insert_with(|| JournalRecord {
                lines,
                created_at: Utc::now(),
            });
        Ok(())
    }

    fn reserve_lines(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let lines = merge_lines(lines)?;
        // A reused id is reported before any line is looked at, as the SQL stores do; the
        // check is repeated below, under the locks, where it counts.
        if self.lock_journal().contains_key(&reservation) {
            return Err(InventoryError::ReservationExists { reservation });
        }
        let records = self.records_for(&lines);
        // `lines` is sorted by ISBN, so the locks are taken in ascending ISBN order.
        let mut books: Vec<Option<MutexGuard<'_, Book>>> = records
            .iter()
            .map(|record| record.as_deref().map(lock_book))
            .collect();
        for (line, book) in lines.iter().zip(&books) {
            let Some(book) = book else {
                return Err(InventoryError::UnknownBook { isbn: line.isbn });
            };
            let requested = line.quantity.get();
            if book.stock < requested {
                return Err(InventoryError::OutOfStock {
                    isbn: line.isbn,
                    requested,
                    available: book.stock,
                });
            }
        }
        let mut books: Vec<MutexGuard<'_, Book>> = books.drain(..).flatten().collect();
        let mut journal = self.lock_journal();
        match journal.entry(reservation) {
            JournalEntry::Occupied(_) => {
                return Err(InventoryError::ReservationExists { reservation });
            }
            JournalEntry::Vacant(vacant) => {
                vacant.insert(JournalRecord {
                    lines: lines.clone(),
                    created_at: Utc::now(),
                });
            }
        }
        let reserved = lines
            .iter()
            .zip(&books)
            .map(|(line, book)| ReservedLine {
                isbn: line.isbn,
                title: book.title.clone(),
                unit_price: book.price,
                quantity: line.quantity,
            })
            .collect();
        // Nothing below can fail or panic: every line was checked above.
        for (line, book) in lines.iter().zip(&mut books) {
            book.stock -= line.quantity.get();
            if book.stock == 0 {
                self.tell(BookChange::OutOfStock, book);
            }
        }
        Ok(reserved)
    }

    /// Locks the books of `lines` (merged) and checks that `lines` can be given back: every
    /// book exists and no stock count would overflow. Returns the locked books and their new
    /// stock counts, to be written by the caller.
    fn lock_for_release<'a>(
        &self,
        lines: &[StockLine],
        records: &'a [Option<BookRecord>],
    ) -> Result<Vec<(MutexGuard<'a, Book>, u32)>, InventoryError> {
        // `lines` is sorted by ISBN, so the locks are taken in ascending ISBN order.
        let books: Vec<Option<MutexGuard<'a, Book>>> = records
            .iter()
            .map(|record| record.as_deref().map(lock_book))
            .collect();
        lines
            .iter()
            .zip(books)
            .map(|(line, book)| {
                let book = book.ok_or(InventoryError::UnknownBook { isbn: line.isbn })?;
                let stock = book
                    .stock
                    .checked_add(line.quantity.get())
                    .ok_or(InventoryError::StockOverflow { isbn: line.isbn })?;
                Ok((book, stock))
            })
            .collect()
    }

    fn release_lines(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        let lines = merge_lines(lines)?;
        let records = self.records_for(&lines);
        for (mut book, stock) in self.lock_for_release(&lines, &records)? {
            let before = book.stock;
            book.stock = stock;
            self.tell_stock_move(before, &book);
        }
        Ok(())
    }

    /// Gives back the stock of the record `reservation` in `journal` and removes the record,
    /// as one step for any other operation.
    fn give_back_record(
        &self,
        journal: &Mutex<HashMap<ReservationId, JournalRecord>>,
        reservation: ReservationId,
    ) -> Result<(), InventoryError> {
        loop {
            let Some(seen) = lock_map(journal).get(&reservation).cloned() else {
                return Ok(());
            };
            let records = self.records_for(&seen.lines);
            let books = self.lock_for_release(&seen.lines, &records)?;
            let mut journal = lock_map(journal);
            match journal.get(&reservation) {
                // Confirmed or cancelled by someone else meanwhile: nothing to give back.
                None => return Ok(()),
                // Cancelled and reserved again under the same id meanwhile: start over with
                // the new record's lines.
                Some(current) if *current != seen => continue,
                Some(_) => {
                    journal.remove(&reservation);
                    for (mut book, stock) in books {
                        let before = book.stock;
                        book.stock = stock;
                        self.tell_stock_move(before, &book);
                    }
                    return Ok(());
                }
            }
        }
    }

    fn journaled_before(
        journal: &Mutex<HashMap<ReservationId, JournalRecord>>,
        cutoff: DateTime<Utc>,
    ) -> Vec<ReservationId> {
        let mut found: Vec<(DateTime<Utc>, ReservationId)> = lock_map(journal)
            .iter()
            .filter(|(_, record)| record.created_at < cutoff)
            .map(|(id, record)| (record.created_at, *id))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, id)| id).collect()
    }
}

/// Locks a journal. Nothing that holds this lock can leave the map half-changed, so a
/// poisoned lock is simply recovered.
fn lock_map(
    journal: &Mutex<HashMap<ReservationId, JournalRecord>>,
) -> MutexGuard<'_, HashMap<ReservationId, JournalRecord>> {
    journal.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks a book, recovering it if a thread panicked while holding the lock: no code that
/// holds this lock leaves a book half-changed, so the value is still consistent.
fn lock_book(record: &Mutex<Book>) -> MutexGuard<'_, Book> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for InMemoryCatalogue {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InMemoryCatalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCatalogue")
            .field("books", &self.books.len())
            .field("reservations", &self.lock_journal().len())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl CatalogueStore for InMemoryCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        self.insert_book(book)
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        self.get_book(isbn)
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        self.update_book(isbn, patch)
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        Ok(self.list_books(query))
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        self.reserve_lines(reservation, lines)
    }

    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        self.lock_journal().remove(&reservation);
        Ok(())
    }

    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        self.give_back_record(&self.journal, reservation)
    }

    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        Ok(Self::journaled_before(&self.journal, cutoff))
    }

    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        self.begin_return_of(id, lines)
    }

    async fn complete_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        self.give_back_record(&self.returns, id)
    }

    async fn abandon_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        lock_map(&self.returns).remove(&id);
        Ok(())
    }

    async fn returns_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        Ok(Self::journaled_before(&self.returns, cutoff))
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        self.release_lines(lines)
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod concurrency_tests;

#[cfg(test)]
mod journal_tests;
