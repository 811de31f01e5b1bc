//! [`SqliteCatalogue`]: the catalogue and its reservation journal in SQLite.

use std::sync::Arc;

use async_trait::async_trait;
use bookstore_inventory::{
    Book, BookPage, BookPatch, BookQuery, CatalogueStore, InventoryError, Journal, ReservationId,
    ReservedLine, StockLine, Title, author_filter_key, merge_lines, text_filter_key,
};
use bookstore_types::Isbn;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::book_cache::{BookCache, Touched};
use super::events::record;
use super::{Handle, corrupt, to_db_time, uuid_at};
use crate::InstanceId;
use crate::codec::{self, BookColumns};
use crate::events::{Fact, NewEvent, Outbox, update_events};
use crate::failure::{CorruptRow, unavailable};
use crate::instances::{STOPPED_RESERVATIONS, STOPPED_RETURNS};

const INSERT_BOOK: &str = "
    INSERT INTO books
        (isbn, title, author, author_key, title_text_key, author_text_key, price_cents, currency, stock)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (isbn) DO NOTHING";

const GET_BOOK: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books WHERE isbn = ?1";

/// A NULL parameter leaves its column as it is.
const UPDATE_BOOK: &str = "
    UPDATE books SET
        title = coalesce(?2, title),
        title_text_key = coalesce(?3, title_text_key),
        author = coalesce(?4, author),
        author_key = coalesce(?5, author_key),
        author_text_key = coalesce(?6, author_text_key),
        price_cents = coalesce(?7, price_cents),
        currency = coalesce(?8, currency),
        stock = coalesce(?9, stock)
    WHERE isbn = ?1
    RETURNING isbn, title, author, price_cents, currency, stock";

/// ?1 the ISBN after which to start. Every list reads at most one row more than the
/// largest page and stops after the rows it needs: SQLite compiles a statement with a
/// bound `LIMIT` again on every run that binds it, even to the same value.
pub(super) const LIST_BOOKS: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1
    ORDER BY isbn LIMIT 101";

/// ?2 the author key.
pub(super) const LIST_BOOKS_BY_AUTHOR: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND author_key = ?2
    ORDER BY isbn LIMIT 101";

/// ?2 the text key; instr() is an exact substring test, whatever the characters.
pub(super) const LIST_BOOKS_BY_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND (instr(title_text_key, ?2) > 0 OR instr(author_text_key, ?2) > 0)
    ORDER BY isbn LIMIT 101";

/// ?2 the author key, ?3 the text key.
pub(super) const LIST_BOOKS_BY_AUTHOR_AND_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND author_key = ?2
        AND (instr(title_text_key, ?3) > 0 OR instr(author_text_key, ?3) > 0)
    ORDER BY isbn LIMIT 101";

/// The journal row; an id in the journal already is a primary-key violation.
const INSERT_RESERVATION: &str = "
    INSERT INTO reservations (id, lines, created_at, instance_id) VALUES (?1, ?2, ?3, ?4)";

/// Takes ?1 copies of ?2 if that many are in stock; no row otherwise. The stock left tells
/// whether the book just ran out.
const TAKE_STOCK: &str = "
    UPDATE books SET stock = stock - ?1
    WHERE isbn = ?2 AND stock >= ?1
    RETURNING isbn, title, author, price_cents, currency, stock";

const STOCK_OF: &str = "SELECT stock FROM books WHERE isbn = ?1";

/// Gives back ?1 copies of ?2 unless the count would exceed what a u32 holds; no row
/// otherwise. The new stock tells whether the book was out of stock (new stock = ?1).
const GIVE_BACK_STOCK: &str = "
    UPDATE books SET stock = stock + ?1
    WHERE isbn = ?2 AND stock <= 4294967295 - ?1
    RETURNING isbn, title, author, price_cents, currency, stock";

const DELETE_RESERVATION: &str = "DELETE FROM reservations WHERE id = ?1";

const TAKE_RESERVATION: &str = "DELETE FROM reservations WHERE id = ?1 RETURNING lines";

const RESERVATIONS_BEFORE: &str = "
    SELECT id FROM reservations WHERE created_at < ?1 ORDER BY created_at, id";

const INSERT_RETURN: &str = "
    INSERT INTO stock_returns (id, lines, created_at, instance_id) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (id) DO NOTHING";

const TAKE_RETURN: &str = "DELETE FROM stock_returns WHERE id = ?1 RETURNING lines";

const DELETE_RETURN: &str = "DELETE FROM stock_returns WHERE id = ?1";

const RETURNS_BEFORE: &str = "
    SELECT id FROM stock_returns WHERE created_at < ?1 ORDER BY created_at, id";

/// A [`CatalogueStore`] in SQLite.
///
/// Listing filters compare keys written beside each book by Rust ([`author_filter_key`],
/// [`text_filter_key`]), so they match exactly the books the in-memory store would, Unicode
/// case folding included. A reservation is one write job: the journal row, then one
/// conditional update per merged line; the first line that cannot be served rolls the job
/// back. Books read by [`get`](CatalogueStore::get) are kept in the database's
/// [`BookCache`], and every write through this store drops the books it may have changed.
///
/// Events are recorded in the write job of their change: `book.created`, `book.updated`,
/// and `book.out_of_stock` / `book.back_in_stock` whenever a write takes a book's stock to
/// 0 or gives some back to a book that had none (the statements' `RETURNING` says the new
/// stock, so this costs no extra query).
#[derive(Clone)]
pub(crate) struct SqliteCatalogue {
    handle: Handle,
    instance: InstanceId,
    cache: Arc<BookCache>,
    outbox: Outbox,
}

impl std::fmt::Debug for SqliteCatalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalogue").finish_non_exhaustive()
    }
}

impl SqliteCatalogue {
    pub(crate) fn new(handle: Handle, instance: InstanceId, outbox: Outbox) -> Self {
        let cache = handle.book_cache();
        Self {
            handle,
            instance,
            cache,
            outbox,
        }
    }

    /// Adds every book of `books` whose ISBN is not taken yet, in one write job, and
    /// returns how many it added. Seeding records no events (see
    /// [`crate::Database::insert_missing_books`]).
    pub(crate) async fn insert_missing(&self, books: &[Book]) -> Result<u64, InventoryError> {
        let books = books.to_vec();
        self.write(Touched::All, move |connection| {
            let mut inserted = 0;
            for book in &books {
                inserted += u64::from(insert_book(connection, book).map_err(unavailable)?);
            }
            Ok(inserted)
        })
        .await
    }

    /// Runs `job` as one write job, then drops from the cache the books it may have
    /// changed, whatever the outcome (a failed write may still have committed before its
    /// error, e.g. a failed answer).
    async fn write<T, F>(&self, touched: Touched<'_>, job: F) -> Result<T, InventoryError>
    where
        F: FnOnce(&Connection) -> Result<T, InventoryError> + Send + 'static,
        T: Send + 'static,
    {
        let result = self.handle.write(job).await;
        self.cache.drop_touched(touched);
        result
    }

    /// The ids one of the journal's `select`s lists, with `cutoff` bound if given.
    fn ids_of(
        &self,
        select: &'static str,
        cutoff: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        let cutoff = cutoff.map(to_db_time);
        self.handle.read(|connection| {
            let mut statement = connection.prepare_cached(select)?;
            let id = |row: &Row<'_>| uuid_at(row, "id").map(ReservationId::from_uuid);
            match cutoff {
                Some(cutoff) => statement.query_map([cutoff], id)?.collect(),
                None => statement.query_map([], id)?.collect(),
            }
        })
    }

    /// Deletes the journal record `take` names (so a concurrent call finds nothing) and
    /// gives its stock back, in one write job; an id not in the journal gives nothing.
    async fn give_back_journaled(
        &self,
        take: &'static str,
        id: ReservationId,
    ) -> Result<(), InventoryError> {
        // The journal, not the caller, knows which books get their stock back.
        let outbox = self.outbox.clone();
        self.write(Touched::All, move |connection| {
            let lines: Option<String> = connection
                .prepare_cached(take)
                .and_then(|mut statement| {
                    statement
                        .query_row([id.as_uuid().as_bytes()], |row| row.get(0))
                        .optional()
                })
                .map_err(unavailable)?;
            let Some(lines) = lines else {
                return Ok(());
            };
            let lines = codec::decode_lines(&lines).map_err(unavailable)?;
            give_back(connection, &outbox, &lines)
        })
        .await
    }

    /// Deletes the journal record `delete` names, giving nothing back; an id not in the
    /// journal is `Ok`.
    async fn forget_journaled(
        &self,
        delete: &'static str,
        id: ReservationId,
    ) -> Result<(), InventoryError> {
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(delete)
                    .and_then(|mut statement| statement.execute([id.as_uuid().as_bytes()]))
                    .map(drop)
                    .map_err(unavailable)
            })
            .await
    }
}

/// The book of a row of `isbn, title, author, price_cents, currency, stock`, the columns
/// every statement that reads a book selects or returns, in this order. They are read by
/// position (a read by name scans the statement's column names for each value) and the
/// ISBN and currency borrowed from the row.
fn book_from_row(row: &Row<'_>) -> rusqlite::Result<Book> {
    let text = |index: usize| {
        row.get_ref(index)?.as_str().map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
        })
    };
    codec::book(BookColumns {
        isbn: text(0)?,
        title: row.get(1)?,
        author: row.get(2)?,
        price_cents: row.get(3)?,
        currency: text(4)?,
        stock: row.get(5)?,
    })
    .map_err(corrupt)
}

/// `INSERT_BOOK` with the columns of `book` bound; it inserts nothing when the ISBN is taken.
fn insert_book(connection: &Connection, book: &Book) -> rusqlite::Result<bool> {
    let inserted = connection.prepare_cached(INSERT_BOOK)?.execute(params![
        book.isbn.as_str(),
        book.title.as_str(),
        book.author.as_str(),
        author_filter_key(book.author.as_str()),
        text_filter_key(book.title.as_str()),
        text_filter_key(book.author.as_str()),
        book.price.cents(),
        book.price.currency().as_str(),
        i64::from(book.stock),
    ])?;
    Ok(inserted == 1)
}

/// The stock of a book, or `None` if there is no such book.
fn stock_of(connection: &Connection, isbn: &Isbn) -> Result<Option<u32>, InventoryError> {
    let stock: Option<i64> = connection
        .prepare_cached(STOCK_OF)
        .and_then(|mut statement| {
            statement
                .query_row([isbn.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    stock
        .map(|stock| codec::stock(stock).map_err(unavailable))
        .transpose()
}

/// Records `events` in the write job; a failure is the job's `Unavailable` error.
fn record_in(connection: &Connection, events: &[NewEvent]) -> Result<(), InventoryError> {
    record(connection, events).map_err(unavailable)
}

/// Journals `reservation` and takes the stock of each (merged) line; the first line that
/// cannot be taken is the error, and the job's changes are rolled back. Records
/// `book.out_of_stock` for each book it took the last copies of.
fn reserve(
    connection: &Connection,
    outbox: &Outbox,
    instance: InstanceId,
    reservation: ReservationId,
    lines: &[StockLine],
) -> Result<Vec<ReservedLine>, InventoryError> {
    let journaled = connection
        .prepare_cached(INSERT_RESERVATION)
        .and_then(|mut statement| {
            statement.execute(params![
                reservation.as_uuid().as_bytes(),
                codec::encode_lines(lines),
                to_db_time(Utc::now()),
                instance.as_uuid().as_bytes(),
            ])
        });
    match journaled {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(InventoryError::ReservationExists { reservation });
        }
        Err(error) => return Err(unavailable(error)),
    }
    let mut take = connection.prepare_cached(TAKE_STOCK).map_err(unavailable)?;
    let mut reserved = Vec::with_capacity(lines.len());
    let mut events = Vec::new();
    for line in lines {
        let taken = take
            .query_row(
                params![i64::from(line.quantity.get()), line.isbn.as_str()],
                |row| {
                    let stock: i64 = row.get("stock")?;
                    // The whole book only when its event needs it.
                    let sold_out = if stock == 0 {
                        Some(book_from_row(row)?)
                    } else {
                        None
                    };
                    Ok((
                        row.get::<_, String>("title")?,
                        row.get::<_, i64>("price_cents")?,
                        row.get::<_, String>("currency")?,
                        sold_out,
                    ))
                },
            )
            .optional()
            .map_err(unavailable)?;
        let Some((title, price_cents, currency, sold_out)) = taken else {
            // The first line (in ISBN order) that could not be taken is the answer.
            return Err(match stock_of(connection, &line.isbn)? {
                None => InventoryError::UnknownBook { isbn: line.isbn },
                Some(available) => InventoryError::OutOfStock {
                    isbn: line.isbn,
                    requested: line.quantity.get(),
                    available,
                },
            });
        };
        reserved.push(ReservedLine {
            isbn: line.isbn,
            title: Title::parse(title).map_err(|_| unavailable(CorruptRow { what: "title" }))?,
            unit_price: codec::money(price_cents, &currency).map_err(unavailable)?,
            quantity: line.quantity,
        });
        if let Some(book) = sold_out {
            events.push(outbox.event(Fact::BookOutOfStock(&book), Utc::now()));
        }
    }
    drop(take);
    record_in(connection, &events)?;
    Ok(reserved)
}

/// Gives back the stock of each (merged) line, recording `book.back_in_stock` for each book
/// that had none; the job is rolled back on an error.
fn give_back(
    connection: &Connection,
    outbox: &Outbox,
    lines: &[StockLine],
) -> Result<(), InventoryError> {
    let mut give = connection
        .prepare_cached(GIVE_BACK_STOCK)
        .map_err(unavailable)?;
    let mut events = Vec::new();
    for line in lines {
        let quantity = i64::from(line.quantity.get());
        let given = give
            .query_row(params![quantity, line.isbn.as_str()], |row| {
                let stock: i64 = row.get("stock")?;
                // Back from 0 when the new stock is exactly what was given.
                if stock == quantity {
                    book_from_row(row).map(Some)
                } else {
                    Ok(None)
                }
            })
            .optional()
            .map_err(unavailable)?;
        let Some(back_in_stock) = given else {
            return Err(match stock_of(connection, &line.isbn)? {
                None => InventoryError::UnknownBook { isbn: line.isbn },
                Some(_) => InventoryError::StockOverflow { isbn: line.isbn },
            });
        };
        if let Some(book) = back_in_stock {
            events.push(outbox.event(Fact::BookBackInStock(&book), Utc::now()));
        }
    }
    drop(give);
    record_in(connection, &events)
}

#[async_trait]
impl CatalogueStore for SqliteCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        let isbn = [book.isbn];
        // Rendered before the job, so that the writer thread only writes it.
        let event = self.outbox.event(Fact::BookCreated(&book), Utc::now());
        self.write(Touched::Books(&isbn), move |connection| {
            if insert_book(connection, &book).map_err(unavailable)? {
                record_in(connection, &[event])?;
                Ok(book)
            } else {
                Err(InventoryError::AlreadyExists { isbn: book.isbn })
            }
        })
        .await
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        if let Some(book) = self.cache.get(isbn) {
            return Ok(book);
        }
        let generation = self.cache.generation();
        let book = self
            .handle
            .read(|connection| {
                connection
                    .prepare_cached(GET_BOOK)?
                    .query_row([isbn.as_str()], book_from_row)
                    .optional()
            })?
            .ok_or(InventoryError::NotFound { isbn: *isbn })?;
        self.cache.fill(generation, &book);
        Ok(book)
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        let isbn = *isbn;
        let outbox = self.outbox.clone();
        self.write(Touched::Books(&[isbn]), move |connection| {
            let BookPatch {
                title,
                author,
                price,
                stock,
            } = patch;
            // One writer: the stock read here is the stock the update replaces.
            let stock_before = match stock {
                Some(_) => stock_of(connection, &isbn)?,
                None => None,
            };
            let updated = connection
                .prepare_cached(UPDATE_BOOK)
                .and_then(|mut statement| {
                    statement
                        .query_row(
                            params![
                                isbn.as_str(),
                                title.as_ref().map(Title::as_str),
                                title.as_ref().map(|title| text_filter_key(title.as_str())),
                                author.as_ref().map(|author| author.as_str()),
                                author
                                    .as_ref()
                                    .map(|author| author_filter_key(author.as_str())),
                                author
                                    .as_ref()
                                    .map(|author| text_filter_key(author.as_str())),
                                price.map(|price| price.cents()),
                                price.map(|price| price.currency().as_str().to_owned()),
                                stock.map(i64::from),
                            ],
                            book_from_row,
                        )
                        .optional()
                })
                .map_err(unavailable)?
                .ok_or(InventoryError::NotFound { isbn })?;
            record_in(connection, &update_events(&outbox, stock_before, &updated))?;
            Ok(updated)
        })
        .await
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        let limit = query.limit.get() as usize;
        let author_key = query.author.as_deref().map(author_filter_key);
        let text_key = query.text.as_deref().map(text_filter_key);
        // "" sorts before every ISBN. One more row than a page tells whether more follow.
        let after = query
            .after
            .map(|isbn| isbn.as_str().to_owned())
            .unwrap_or_default();
        let rows = limit + 1;
        let books = self.handle.read(|connection| {
            let (sql, keys): (&str, Vec<&str>) = match (&author_key, &text_key) {
                (None, None) => (LIST_BOOKS, vec![]),
                (Some(author), None) => (LIST_BOOKS_BY_AUTHOR, vec![author]),
                (None, Some(text)) => (LIST_BOOKS_BY_TEXT, vec![text]),
                (Some(author), Some(text)) => (LIST_BOOKS_BY_AUTHOR_AND_TEXT, vec![author, text]),
            };
            let mut statement = connection.prepare_cached(sql)?;
            let mut parameters: Vec<&dyn rusqlite::ToSql> = vec![&after];
            parameters.extend(keys.iter().map(|key| key as &dyn rusqlite::ToSql));
            statement
                .query_map(parameters.as_slice(), book_from_row)?
                .take(rows)
                .collect::<rusqlite::Result<Vec<Book>>>()
        })?;
        Ok(codec::book_page(books, limit))
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let lines = merge_lines(lines)?;
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        let instance = self.instance;
        let outbox = self.outbox.clone();
        self.write(Touched::Books(&isbns), move |connection| {
            reserve(connection, &outbox, instance, reservation, &lines)
        })
        .await
    }

    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        self.forget_journaled(DELETE_RESERVATION, reservation).await
    }

    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        self.give_back_journaled(TAKE_RESERVATION, reservation)
            .await
    }

    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        self.ids_of(RESERVATIONS_BEFORE, Some(cutoff))
    }

    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        let lines = codec::encode_lines(&merge_lines(lines)?);
        let instance = self.instance;
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(INSERT_RETURN)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            id.as_uuid().as_bytes(),
                            lines,
                            to_db_time(Utc::now()),
                            instance.as_uuid().as_bytes(),
                        ])
                    })
                    .map(drop)
                    .map_err(unavailable)
            })
            .await
    }

    async fn complete_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        self.give_back_journaled(TAKE_RETURN, id).await
    }

    async fn abandon_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        self.forget_journaled(DELETE_RETURN, id).await
    }

    async fn returns_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        self.ids_of(RETURNS_BEFORE, Some(cutoff))
    }

    async fn stopped_processes_journal(&self) -> Result<Journal, InventoryError> {
        Ok(Journal {
            reservations: self.ids_of(STOPPED_RESERVATIONS, None)?,
            returns: self.ids_of(STOPPED_RETURNS, None)?,
        })
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        let lines = merge_lines(lines)?;
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        let outbox = self.outbox.clone();
        self.write(Touched::Books(&isbns), move |connection| {
            give_back(connection, &outbox, &lines)
        })
        .await
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}
