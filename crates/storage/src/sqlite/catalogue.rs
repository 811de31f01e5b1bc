//! The catalogue's SQL for SQLite.

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

/// ?1 the ISBN after which to start, ?2 the number of rows.
const LIST_BOOKS: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1
    ORDER BY isbn LIMIT ?2";

/// ?3 the author key.
const LIST_BOOKS_BY_AUTHOR: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND author_key = ?3
    ORDER BY isbn LIMIT ?2";

/// ?3 the text key; instr() is an exact substring test, whatever the characters.
const LIST_BOOKS_BY_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND (instr(title_text_key, ?3) > 0 OR instr(author_text_key, ?3) > 0)
    ORDER BY isbn LIMIT ?2";

/// ?3 the author key, ?4 the text key.
const LIST_BOOKS_BY_AUTHOR_AND_TEXT: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books
    WHERE isbn > ?1 AND author_key = ?3
        AND (instr(title_text_key, ?4) > 0 OR instr(author_text_key, ?4) > 0)
    ORDER BY isbn LIMIT ?2";

/// The journal row; an id in the journal already is a primary-key violation.
const INSERT_RESERVATION: &str = "
    INSERT INTO reservations (id, lines, created_at, instance_id) VALUES (?1, ?2, ?3, ?4)";

/// Takes the stock of every line at once: `(?5, ?6)`, `(?7, ?8)`, ... are the quantity and
/// ISBN of each line (see [`journal_and_take_sql`]). A line whose book lacks the stock, or
/// does not exist, is simply not updated, and returns no row.
const TAKE_STOCK_PREFIX: &str = "
    UPDATE books SET stock = stock - taken.quantity
    FROM (SELECT column1 AS quantity, column2 AS isbn FROM (VALUES";

const TAKE_STOCK_SUFFIX: &str = ")) AS taken
    WHERE books.isbn = taken.isbn AND books.stock >= taken.quantity
    RETURNING isbn, title, price_cents, currency";

const STOCK_OF: &str = "SELECT stock FROM books WHERE isbn = ?1";

/// Gives back ?1 copies of ?2 unless the count would exceed what a u32 holds.
const GIVE_BACK_STOCK: &str = "
    UPDATE books SET stock = stock + ?1
    WHERE isbn = ?2 AND stock <= 4294967295 - ?1";

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

/// [`INSERT_RESERVATION`] and the stock update for `lines` lines, as one batch.
fn journal_and_take_sql(lines: usize) -> String {
    let mut sql = String::from(INSERT_RESERVATION);
    if lines == 0 {
        return sql;
    }
    sql.push(';');
    sql.push_str(TAKE_STOCK_PREFIX);
    for line in 0..lines {
        let quantity = 5 + 2 * line;
        sql.push_str(&format!(
            "{}(?{quantity}, ?{})",
            if line == 0 { " " } else { ", " },
            quantity + 1
        ));
    }
    sql.push_str(TAKE_STOCK_SUFFIX);
    sql
}

/// Journals `reservation` and takes the stock of `lines` in one batch of two statements:
/// one round trip to SQLite's connection thread, inside the caller's transaction. SQLite has
/// one writer at a time, so the order in which rows are updated does not matter.
async fn journal_and_take(
    connection: &mut sqlx::SqliteConnection,
    instance: InstanceId,
    reservation: ReservationId,
    lines: &[StockLine],
    now: super::DbTime,
) -> Result<Vec<Row>, sqlx::Error> {
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(journal_and_take_sql(lines.len())))
        .bind(reservation.as_uuid())
        .bind(codec::encode_lines(lines))
        .bind(now)
        .bind(instance.as_uuid());
    for line in lines {
        statement = statement
            .bind(i64::from(line.quantity.get()))
            .bind(line.isbn.as_str());
    }
    statement.fetch_all(connection).await
}

crate::shared::catalogue_queries!();

use std::sync::Arc;

use bookstore_inventory::CatalogueStore;

use super::book_cache::{BookCache, Touched};

/// A [`CatalogueStore`] in SQLite.
///
/// Listing filters compare keys written beside each book by Rust ([`author_filter_key`],
/// [`text_filter_key`]), so they match exactly the books the in-memory store would, Unicode
/// case folding included. A reservation is one transaction: the journal row, then one
/// statement that takes the stock of every line at once; a line that cannot be served rolls
/// it all back. Books read by [`get`](CatalogueStore::get) are kept in the database's
/// [`BookCache`], and every write through this store drops the books it may have changed.
#[derive(Clone)]
pub(crate) struct SqliteCatalogue {
    handle: Handle,
    instance: InstanceId,
    cache: Arc<BookCache>,
}

impl std::fmt::Debug for SqliteCatalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalogue").finish_non_exhaustive()
    }
}

impl SqliteCatalogue {
    pub(crate) fn new(handle: Handle, instance: InstanceId) -> Self {
        let cache = handle.book_cache();
        Self {
            handle,
            instance,
            cache,
        }
    }

    /// Adds every book of `books` whose ISBN is not taken yet, in one transaction, and
    /// returns how many it added.
    pub(crate) async fn insert_missing(&self, books: &[Book]) -> Result<u64, InventoryError> {
        let result = insert_missing(&self.handle, books).await;
        self.cache.drop_touched(Touched::All);
        result
    }

    /// Runs a write, then drops from the cache the books it may have changed, whatever the
    /// outcome (a failed write may still have committed before its error).
    async fn write<T>(
        &self,
        touched: Touched<'_>,
        write: impl std::future::Future<Output = T>,
    ) -> T {
        let result = write.await;
        self.cache.drop_touched(touched);
        result
    }
}

#[async_trait::async_trait]
impl CatalogueStore for SqliteCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        let isbn = [book.isbn];
        self.write(Touched::Books(&isbn), insert(&self.handle, book))
            .await
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        if let Some(book) = self.cache.get(isbn) {
            return Ok(book);
        }
        let generation = self.cache.generation();
        let book = get(&self.handle, isbn).await?;
        self.cache.fill(generation, &book);
        Ok(book)
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        self.write(
            Touched::Books(std::slice::from_ref(isbn)),
            update(&self.handle, isbn, patch),
        )
        .await
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        list(&self.handle, query).await
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        self.write(
            Touched::Books(&isbns),
            reserve_all(&self.handle, self.instance, reservation, lines),
        )
        .await
    }

    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        confirm_reservation(&self.handle, reservation).await
    }

    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        // The journal, not the caller, knows which books get their stock back.
        self.write(Touched::All, cancel_reservation(&self.handle, reservation))
            .await
    }

    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        reservations_older_than(&self.handle, cutoff).await
    }

    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError> {
        begin_return(&self.handle, self.instance, id, lines).await
    }

    async fn complete_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        // The journal, not the caller, knows which books get their stock back.
        self.write(Touched::All, complete_return(&self.handle, id))
            .await
    }

    async fn abandon_return(&self, id: ReservationId) -> Result<(), InventoryError> {
        abandon_return(&self.handle, id).await
    }

    async fn returns_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        returns_older_than(&self.handle, cutoff).await
    }

    async fn stopped_processes_journal(&self) -> Result<Journal, InventoryError> {
        stopped_processes_journal(&self.handle).await
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        let isbns: Vec<Isbn> = lines.iter().map(|line| line.isbn).collect();
        self.write(Touched::Books(&isbns), release_all(&self.handle, lines))
            .await
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_numbers_the_parameters_of_each_line() {
        assert!(journal_and_take_sql(0).ends_with("VALUES (?1, ?2, ?3, ?4)"));
        let two = journal_and_take_sql(2);
        assert!(two.contains("(VALUES (?5, ?6), (?7, ?8)))"), "{two}");
    }
}
