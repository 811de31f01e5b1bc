//! [`PgCatalogue`]: the catalogue and its reservation journal in PostgreSQL.

use async_trait::async_trait;
use bookstore_inventory::{
    Book, BookPage, BookPatch, BookQuery, CatalogueStore, InventoryError, Journal, ReservationId,
    ReservedLine, StockLine, Title, author_filter_key, merge_lines, text_filter_key,
};
use bookstore_types::Isbn;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

use super::events::{bind_event, record};
use super::reservations::Reserver;
use crate::InstanceId;
use crate::codec::{self, BookColumns};
use crate::events::{Fact, NewEvent, Outbox, update_events};
use crate::failure::{BoxError, CorruptRow, finish, unavailable};
use crate::instances::{STOPPED_RESERVATIONS, STOPPED_RETURNS};

const INSERT_BOOK: &str = "
    INSERT INTO books
        (isbn, title, author, author_key, title_text_key, author_text_key, price_cents, currency, stock)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (isbn) DO NOTHING";

/// `INSERT_BOOK` and, if it inserted the book, its `book.created` event ($10..$14, see
/// [`bind_event`]), in one statement: the event's row count says whether the book was added.
const INSERT_BOOK_RECORDING_EVENT: &str = "
    WITH created AS (
        INSERT INTO books
            (isbn, title, author, author_key, title_text_key, author_text_key, price_cents,
             currency, stock)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (isbn) DO NOTHING
        RETURNING isbn
    ), sequence AS (
        INSERT INTO event_sequences (resource_id, last) SELECT $12, 1 FROM created
        ON CONFLICT (resource_id) DO UPDATE SET last = event_sequences.last + 1
        RETURNING last
    )
    INSERT INTO events (id, type, resource_id, sequence, created_at, data)
    SELECT $10, $11, $12, sequence.last, $13, $14::json FROM sequence";

const GET_BOOK: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books WHERE isbn = $1";

/// A NULL parameter leaves its column as it is. `stock_before` is the stock the update
/// replaced: the row is locked by the subquery, so it is the latest committed stock, the
/// one the update changes (whether the stock crossed 0 decides the events).
const UPDATE_BOOK: &str = "
    UPDATE books SET
        title = coalesce($2, title),
        title_text_key = coalesce($3, title_text_key),
        author = coalesce($4, author),
        author_key = coalesce($5, author_key),
        author_text_key = coalesce($6, author_text_key),
        price_cents = coalesce($7, price_cents),
        currency = coalesce($8, currency),
        stock = coalesce($9, stock)
    FROM (SELECT stock AS stock_before FROM books WHERE isbn = $1 FOR UPDATE) AS locked
    WHERE isbn = $1
    RETURNING isbn, title, author, price_cents, currency, stock, stock_before";

/// $1 the ISBN after which to start, $2 the number of rows.
const LIST_BOOKS: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > $1
    ORDER BY isbn LIMIT $2";

/// $3 the author key.
const LIST_BOOKS_BY_AUTHOR: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > $1 AND author_key = $3
    ORDER BY isbn LIMIT $2";

/// $3 the text key; strpos() is an exact substring test, whatever the characters.
const LIST_BOOKS_BY_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > $1 AND (strpos(title_text_key, $3) > 0 OR strpos(author_text_key, $3) > 0)
    ORDER BY isbn LIMIT $2";

/// $3 the author key, $4 the text key.
const LIST_BOOKS_BY_AUTHOR_AND_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > $1 AND author_key = $3
        AND (strpos(title_text_key, $4) > 0 OR strpos(author_text_key, $4) > 0)
    ORDER BY isbn LIMIT $2";

/// The journal row, unless the id is in the journal already (no row then).
const INSERT_RESERVATION: &str = "
    INSERT INTO reservations (id, lines, created_at, instance_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO NOTHING";

/// Takes $1 copies of $2 if that many are in stock; no row otherwise. The stock left tells
/// whether the book just ran out.
const TAKE_STOCK: &str = "
    UPDATE books SET stock = stock - $1
    WHERE isbn = $2 AND stock >= $1
    RETURNING isbn, title, author, price_cents, currency, stock";

const STOCK_OF: &str = "SELECT stock FROM books WHERE isbn = $1";

/// Gives back $1 copies of $2 unless the count would exceed what a u32 holds; no row
/// otherwise. The new stock tells whether the book was out of stock (new stock = $1).
const GIVE_BACK_STOCK: &str = "
    UPDATE books SET stock = stock + $1
    WHERE isbn = $2 AND stock <= 4294967295 - $1
    RETURNING isbn, title, author, price_cents, currency, stock";

const DELETE_RESERVATION: &str = "DELETE FROM reservations WHERE id = $1";

const TAKE_RESERVATION: &str = "DELETE FROM reservations WHERE id = $1 RETURNING lines";

const RESERVATIONS_BEFORE: &str = "
    SELECT id FROM reservations WHERE created_at < $1 ORDER BY created_at, id";

const INSERT_RETURN: &str = "
    INSERT INTO stock_returns (id, lines, created_at, instance_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO NOTHING";

const TAKE_RETURN: &str = "DELETE FROM stock_returns WHERE id = $1 RETURNING lines";

const DELETE_RETURN: &str = "DELETE FROM stock_returns WHERE id = $1";

const RETURNS_BEFORE: &str = "
    SELECT id FROM stock_returns WHERE created_at < $1 ORDER BY created_at, id";

/// A [`CatalogueStore`] in PostgreSQL.
///
/// Listing filters compare keys written beside each book by Rust ([`author_filter_key`],
/// [`text_filter_key`]), so they match exactly the books the in-memory store would, Unicode
/// case folding included. A reservation is one transaction: the journal row, then one
/// conditional update per merged line in ISBN order (so two reservations lock rows in the
/// same order and cannot deadlock); the first line that cannot be served rolls it all back.
/// Concurrent reservations share a transaction (see [`Reserver`]), each applied as it would
/// be alone. The database is shared by several instances, so nothing is cached.
///
/// Events are recorded in the change's statement (`book.created`, with the insert) or
/// transaction: `book.updated`, and `book.out_of_stock` / `book.back_in_stock` whenever a
/// change takes a book's stock to 0 or gives some back to a book that had none (the
/// statements' `RETURNING` says the new stock; an event costs a statement only when one is
/// due).
#[derive(Debug, Clone)]
pub(crate) struct PgCatalogue {
    pool: PgPool,
    instance: InstanceId,
    outbox: Outbox,
    reserver: Reserver,
}

impl PgCatalogue {
    pub(crate) fn new(pool: PgPool, instance: InstanceId, outbox: Outbox) -> Self {
        Self {
            reserver: Reserver::new(pool.clone(), instance, outbox.clone()),
            pool,
            instance,
            outbox,
        }
    }

    /// Adds every book of `books` whose ISBN is not taken yet, in one transaction, and
    /// returns how many it added. Seeding records no events (see
    /// [`crate::Database::insert_missing_books`]).
    pub(crate) async fn insert_missing(&self, books: &[Book]) -> Result<u64, InventoryError> {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let result = async {
            let mut inserted = 0;
            for book in books {
                let added = insert_book(&mut transaction, book).await;
                inserted += u64::from(added.map_err(unavailable)?);
            }
            Ok(inserted)
        }
        .await;
        finish(transaction, result).await
    }

    /// Deletes the journal record `take` names (so a concurrent call finds nothing) and
    /// gives its stock back, in one transaction; an id not in the journal gives nothing.
    async fn give_back_journaled(
        &self,
        take: &'static str,
        id: ReservationId,
    ) -> Result<(), InventoryError> {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let result = give_back_in_journal(&mut transaction, &self.outbox, take, id).await;
        finish(transaction, result).await
    }

    /// Deletes the journal record `delete` names, giving nothing back; an id not in the
    /// journal is `Ok`.
    async fn forget_journaled(
        &self,
        delete: &'static str,
        id: ReservationId,
    ) -> Result<(), InventoryError> {
        sqlx::query(delete)
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn ids_of(
        &self,
        select: &'static str,
        cutoff: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        let mut query = sqlx::query_scalar(select);
        if let Some(cutoff) = cutoff {
            query = query.bind(cutoff);
        }
        let ids: Vec<Uuid> = query.fetch_all(&self.pool).await.map_err(unavailable)?;
        Ok(ids.into_iter().map(ReservationId::from_uuid).collect())
    }
}

fn book_from_row(row: &PgRow) -> Result<Book, BoxError> {
    Ok(codec::book(BookColumns {
        isbn: row.try_get("isbn")?,
        title: row.try_get("title")?,
        author: row.try_get("author")?,
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        stock: row.try_get("stock")?,
    })?)
}

/// `INSERT_BOOK` with the columns of `book` bound; it inserts nothing when the ISBN is taken.
async fn insert_book(connection: &mut PgConnection, book: &Book) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(INSERT_BOOK)
        .bind(book.isbn.as_str())
        .bind(book.title.as_str())
        .bind(book.author.as_str())
        .bind(author_filter_key(book.author.as_str()))
        .bind(text_filter_key(book.title.as_str()))
        .bind(text_filter_key(book.author.as_str()))
        .bind(book.price.cents())
        .bind(book.price.currency().as_str())
        .bind(i64::from(book.stock))
        .execute(connection)
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Journals `reservation`, then takes the stock of its lines ([`take_lines`]). Answers the
/// reserved lines, or the error of the first line that could not be taken (the caller then
/// rolls back). Records `book.out_of_stock` for each book it took the last copies of.
pub(super) async fn reserve_in(
    connection: &mut PgConnection,
    outbox: &Outbox,
    instance: InstanceId,
    reservation: ReservationId,
    lines: &[StockLine],
) -> Result<Vec<ReservedLine>, InventoryError> {
    if !journal(connection, instance, reservation, lines)
        .await
        .map_err(unavailable)?
    {
        return Err(InventoryError::ReservationExists { reservation });
    }
    match take_lines(connection, lines).await? {
        Taken::All { reserved, emptied } => {
            let now = Utc::now();
            let events: Vec<NewEvent> = emptied
                .iter()
                .map(|book| outbox.event(Fact::BookOutOfStock(book), now))
                .collect();
            record_in(connection, &events).await?;
            Ok(reserved)
        }
        Taken::Refused { refusal, .. } => Err(refusal),
    }
}

/// Writes the journal row of `reservation`; `false` (and nothing written) if its id is in
/// the journal already.
pub(super) async fn journal(
    connection: &mut PgConnection,
    instance: InstanceId,
    reservation: ReservationId,
    lines: &[StockLine],
) -> Result<bool, sqlx::Error> {
    let journaled = sqlx::query(INSERT_RESERVATION)
        .bind(reservation.as_uuid())
        .bind(codec::encode_lines(lines))
        .bind(Utc::now())
        .bind(instance.as_uuid())
        .execute(connection)
        .await?;
    Ok(journaled.rows_affected() == 1)
}

/// What [`take_lines`] did.
pub(super) enum Taken {
    /// Every line was taken.
    All {
        /// The lines, with the title and price they were taken at.
        reserved: Vec<ReservedLine>,
        /// The books whose last copies were taken.
        emptied: Vec<Book>,
    },
    /// A line could not be taken; the lines before it were.
    Refused {
        /// How many lines were taken before it.
        taken: usize,
        /// Why: the book is unknown, or has too few copies.
        refusal: InventoryError,
    },
}

/// Takes the stock of each line with its own conditional update, in ISBN order (the order
/// `lines` is merged in), so that two reservations lock their rows in the same order and
/// never deadlock; stops at the first line it cannot take. The error is the database's
/// (`Unavailable`); a line that cannot be served is a [`Taken::Refused`].
pub(super) async fn take_lines(
    connection: &mut PgConnection,
    lines: &[StockLine],
) -> Result<Taken, InventoryError> {
    let mut reserved = Vec::with_capacity(lines.len());
    let mut emptied = Vec::new();
    for (taken, line) in lines.iter().enumerate() {
        let row = sqlx::query(TAKE_STOCK)
            .bind(i64::from(line.quantity.get()))
            .bind(line.isbn.as_str())
            .fetch_optional(&mut *connection)
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            // The first line (in ISBN order) that could not be taken is the answer.
            let refusal = match stock_of(connection, &line.isbn).await? {
                None => InventoryError::UnknownBook { isbn: line.isbn },
                Some(available) => InventoryError::OutOfStock {
                    isbn: line.isbn,
                    requested: line.quantity.get(),
                    available,
                },
            };
            return Ok(Taken::Refused { taken, refusal });
        };
        reserved.push(reserved_line(line, &row).map_err(unavailable)?);
        let stock: i64 = row.try_get("stock").map_err(unavailable)?;
        if stock == 0 {
            emptied.push(book_from_row(&row).map_err(unavailable)?);
        }
    }
    Ok(Taken::All { reserved, emptied })
}

/// Records `events` in the transaction of `connection`.
async fn record_in(
    connection: &mut PgConnection,
    events: &[NewEvent],
) -> Result<(), InventoryError> {
    record(connection, events).await.map_err(unavailable)
}

fn reserved_line(line: &StockLine, row: &PgRow) -> Result<ReservedLine, BoxError> {
    let title: String = row.try_get("title")?;
    Ok(ReservedLine {
        isbn: line.isbn,
        title: Title::parse(title).map_err(|_| CorruptRow { what: "title" })?,
        unit_price: codec::money(row.try_get("price_cents")?, row.try_get("currency")?)?,
        quantity: line.quantity,
    })
}

/// The stock of a book, or `None` if there is no such book.
async fn stock_of(
    connection: &mut PgConnection,
    isbn: &Isbn,
) -> Result<Option<u32>, InventoryError> {
    let stock: Option<i64> = sqlx::query_scalar(STOCK_OF)
        .bind(isbn.as_str())
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?;
    stock
        .map(|stock| codec::stock(stock).map_err(unavailable))
        .transpose()
}

/// Gives back the stock of each (merged, ISBN-ordered) line, recording `book.back_in_stock`
/// for each book that had none; the caller rolls everything back on an error.
async fn give_back_in(
    connection: &mut PgConnection,
    outbox: &Outbox,
    lines: &[StockLine],
) -> Result<(), InventoryError> {
    let mut events = Vec::new();
    for line in lines {
        let quantity = i64::from(line.quantity.get());
        let given = sqlx::query(GIVE_BACK_STOCK)
            .bind(quantity)
            .bind(line.isbn.as_str())
            .fetch_optional(&mut *connection)
            .await
            .map_err(unavailable)?;
        let Some(given) = given else {
            return Err(match stock_of(connection, &line.isbn).await? {
                None => InventoryError::UnknownBook { isbn: line.isbn },
                Some(_) => InventoryError::StockOverflow { isbn: line.isbn },
            });
        };
        // Back from 0 when the new stock is exactly what was given.
        let stock: i64 = given.try_get("stock").map_err(unavailable)?;
        if stock == quantity {
            let book = book_from_row(&given).map_err(unavailable)?;
            events.push(outbox.event(Fact::BookBackInStock(&book), Utc::now()));
        }
    }
    record_in(connection, &events).await
}

async fn give_back_in_journal(
    connection: &mut PgConnection,
    outbox: &Outbox,
    take: &'static str,
    id: ReservationId,
) -> Result<(), InventoryError> {
    let lines: Option<String> = sqlx::query_scalar(take)
        .bind(id.as_uuid())
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?;
    let Some(lines) = lines else {
        return Ok(());
    };
    let lines = codec::decode_lines(&lines).map_err(unavailable)?;
    give_back_in(connection, outbox, &lines).await
}

#[async_trait]
impl CatalogueStore for PgCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        let event = self.outbox.event(Fact::BookCreated(&book), Utc::now());
        let query = sqlx::query(INSERT_BOOK_RECORDING_EVENT)
            .bind(book.isbn.as_str())
            .bind(book.title.as_str())
            .bind(book.author.as_str())
            .bind(author_filter_key(book.author.as_str()))
            .bind(text_filter_key(book.title.as_str()))
            .bind(text_filter_key(book.author.as_str()))
            .bind(book.price.cents())
            .bind(book.price.currency().as_str())
            .bind(i64::from(book.stock));
        let recorded = bind_event(query, &event)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if recorded.rows_affected() == 0 {
            return Err(InventoryError::AlreadyExists { isbn: book.isbn });
        }
        Ok(book)
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        let row = sqlx::query(GET_BOOK)
            .bind(isbn.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or(InventoryError::NotFound { isbn: *isbn })?;
        book_from_row(&row).map_err(unavailable)
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        let BookPatch {
            title,
            author,
            price,
            stock,
        } = patch;
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let row = sqlx::query(UPDATE_BOOK)
            .bind(isbn.as_str())
            .bind(title.as_ref().map(Title::as_str))
            .bind(title.as_ref().map(|title| text_filter_key(title.as_str())))
            .bind(author.as_ref().map(|author| author.as_str()))
            .bind(
                author
                    .as_ref()
                    .map(|author| author_filter_key(author.as_str())),
            )
            .bind(
                author
                    .as_ref()
                    .map(|author| text_filter_key(author.as_str())),
            )
            .bind(price.map(|price| price.cents()))
            .bind(price.map(|price| price.currency().as_str().to_owned()))
            .bind(stock.map(i64::from))
            .fetch_optional(&mut *transaction)
            .await;
        let result = async {
            let row = row
                .map_err(unavailable)?
                .ok_or(InventoryError::NotFound { isbn: *isbn })?;
            let updated = book_from_row(&row).map_err(unavailable)?;
            let stock_before: i64 = row.try_get("stock_before").map_err(unavailable)?;
            let stock_before = codec::stock(stock_before).map_err(unavailable)?;
            let events = update_events(&self.outbox, stock.map(|_| stock_before), &updated);
            record_in(&mut transaction, &events).await?;
            Ok(updated)
        }
        .await;
        finish(transaction, result).await
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        let limit = query.limit.get() as usize;
        let author_key = query.author.as_deref().map(author_filter_key);
        let text_key = query.text.as_deref().map(text_filter_key);
        let sql = match (&author_key, &text_key) {
            (None, None) => LIST_BOOKS,
            (Some(_), None) => LIST_BOOKS_BY_AUTHOR,
            (None, Some(_)) => LIST_BOOKS_BY_TEXT,
            (Some(_), Some(_)) => LIST_BOOKS_BY_AUTHOR_AND_TEXT,
        };
        // "" sorts before every ISBN. One more row than a page tells whether more follow.
        let mut statement = sqlx::query(sql)
            .bind(
                query
                    .after
                    .map(|isbn| isbn.as_str().to_owned())
                    .unwrap_or_default(),
            )
            .bind(limit as i64 + 1);
        if let Some(author_key) = author_key {
            statement = statement.bind(author_key);
        }
        if let Some(text_key) = text_key {
            statement = statement.bind(text_key);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let books = rows
            .iter()
            .map(book_from_row)
            .collect::<Result<Vec<Book>, BoxError>>()
            .map_err(unavailable)?;
        Ok(codec::book_page(books, limit))
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let lines = merge_lines(lines)?;
        self.reserver.reserve(reservation, lines).await
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
        self.ids_of(RESERVATIONS_BEFORE, Some(cutoff)).await
    }

    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        let lines = merge_lines(lines)?;
        sqlx::query(INSERT_RETURN)
            .bind(id.as_uuid())
            .bind(codec::encode_lines(&lines))
            .bind(Utc::now())
            .bind(self.instance.as_uuid())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(unavailable)
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
        self.ids_of(RETURNS_BEFORE, Some(cutoff)).await
    }

    async fn stopped_processes_journal(&self) -> Result<Journal, InventoryError> {
        Ok(Journal {
            reservations: self.ids_of(STOPPED_RESERVATIONS, None).await?,
            returns: self.ids_of(STOPPED_RETURNS, None).await?,
        })
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        let lines = merge_lines(lines)?;
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let result = give_back_in(&mut transaction, &self.outbox, &lines).await;
        finish(transaction, result).await
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        super::check_ready(&self.pool).await.map_err(unavailable)
    }
}
