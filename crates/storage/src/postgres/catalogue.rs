//! The catalogue's SQL for PostgreSQL.

const INSERT_BOOK: &str = "
    INSERT INTO books
        (isbn, title, author, author_key, title_text_key, author_text_key, price_cents, currency, stock)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (isbn) DO NOTHING";

const GET_BOOK: &str = "
    SELECT isbn, title, author, price_cents, currency, stock FROM books WHERE isbn = $1";

/// A NULL parameter leaves its column as it is.
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
    WHERE isbn = $1
    RETURNING isbn, title, author, price_cents, currency, stock";

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

/// The journal row; an id in the journal already is a unique violation.
const INSERT_RESERVATION: &str = "
    INSERT INTO reservations (id, lines, created_at, instance_id) VALUES ($1, $2, $3, $4)";

/// Takes $1 copies of $2 if that many are in stock; no row otherwise.
const TAKE_STOCK: &str = "
    UPDATE books SET stock = stock - $1
    WHERE isbn = $2 AND stock >= $1
    RETURNING isbn, title, price_cents, currency";

const STOCK_OF: &str = "SELECT stock FROM books WHERE isbn = $1";

/// Gives back $1 copies of $2 unless the count would exceed what a u32 holds.
const GIVE_BACK_STOCK: &str = "
    UPDATE books SET stock = stock + $1
    WHERE isbn = $2 AND stock <= 4294967295 - $1";

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

/// Journals `reservation`, then takes the stock of each line with its own conditional
/// update, in ISBN order (the order `lines` is merged in), so that two reservations lock
/// their rows in the same order and never deadlock; stops at the first line it cannot take.
async fn journal_and_take(
    connection: &mut sqlx::PgConnection,
    instance: InstanceId,
    reservation: ReservationId,
    lines: &[StockLine],
    now: super::DbTime,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query(INSERT_RESERVATION)
        .bind(reservation.as_uuid())
        .bind(codec::encode_lines(lines))
        .bind(now)
        .bind(instance.as_uuid())
        .execute(&mut *connection)
        .await?;
    let mut taken = Vec::with_capacity(lines.len());
    for line in lines {
        let row = sqlx::query(TAKE_STOCK)
            .bind(i64::from(line.quantity.get()))
            .bind(line.isbn.as_str())
            .fetch_optional(&mut *connection)
            .await?;
        match row {
            Some(row) => taken.push(row),
            None => break,
        }
    }
    Ok(taken)
}

crate::shared::catalogue_queries!();
