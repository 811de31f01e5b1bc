//! The Rust that runs each store's SQL, written once for both backends.
//!
//! Each macro here expands, in a backend's store module (`sqlite::catalogue`,
//! `postgres::orders`, ...), into the functions the public stores call. The expansion uses
//! what that module and its backend define:
//!
//! - the store's SQL, as `const`s named in the macro's documentation, with numbered
//!   parameters (`?1` on SQLite, `$1` on PostgreSQL) bound in the same order on both;
//! - from the backend: `Db` (the sqlx database), `Handle` (its connections),
//!   `read_connection(&Handle)` and `write_connection(&Handle)` (a connection to use, given
//!   back when dropped), `begin_write(&mut connection)`, and `DbTime` with `to_db_time` and
//!   `from_db_time`.
//!
//! So the SQL of each backend reads on its own, and the logic around it (ordering, retries,
//! error mapping) cannot drift between backends. Everything that does not touch a
//! connection lives in ordinary functions ([`crate::codec`], [`crate::failure`]).

/// The catalogue: books, stock and the reservation journal.
///
/// SQL: `INSERT_BOOK`, `GET_BOOK`, `UPDATE_BOOK`, `LIST_BOOKS`, `LIST_BOOKS_BY_AUTHOR`,
/// `LIST_BOOKS_BY_TEXT`, `LIST_BOOKS_BY_AUTHOR_AND_TEXT`, `STOCK_OF`, `GIVE_BACK_STOCK`,
/// `DELETE_RESERVATION`, `TAKE_RESERVATION`, `RESERVATIONS_BEFORE`, `INSERT_RETURN` (an id
/// taken already inserts nothing), `TAKE_RETURN`, `DELETE_RETURN`, `RETURNS_BEFORE`,
/// and, from [`crate::instances`] (the same on both backends), `STOPPED_RESERVATIONS` and
/// `STOPPED_RETURNS` (the records whose instance has no row); and a
/// function `journal_and_take(connection, instance, reservation, lines, now)` that inserts
/// the journal row
/// (failing with a unique violation if the id is taken) and takes the stock of the merged
/// lines with conditional updates, returning a row (`isbn`, `title`, `price_cents`,
/// `currency`) for each line it could take; how many statements that is differs by
/// backend.
macro_rules! catalogue_queries {
    () => {
        use bookstore_inventory::{
            Book, BookPage, BookPatch, BookQuery, InventoryError, Journal, ReservationId,
            ReservedLine, StockLine, Title, author_filter_key, merge_lines, text_filter_key,
        };

        use crate::InstanceId;
        use crate::instances::{STOPPED_RESERVATIONS, STOPPED_RETURNS};
        use bookstore_types::Isbn;
        use chrono::{DateTime, Utc};
        use sqlx::Row as _;
        use uuid::Uuid;

        use super::{Db, Handle, begin_write, read_connection, to_db_time, write_connection};
        use crate::codec::{self, BookColumns};
        use crate::failure::{BoxError, CorruptRow, finish, unavailable};

        type Connection = <Db as sqlx::Database>::Connection;
        type Row = <Db as sqlx::Database>::Row;

        fn book_from_row(row: &Row) -> Result<Book, BoxError> {
            Ok(codec::book(BookColumns {
                isbn: row.try_get("isbn")?,
                title: row.try_get("title")?,
                author: row.try_get("author")?,
                price_cents: row.try_get("price_cents")?,
                currency: row.try_get("currency")?,
                stock: row.try_get("stock")?,
            })?)
        }

        /// `INSERT_BOOK` with the columns of `book` bound; it inserts nothing when the ISBN
        /// is taken.
        async fn insert_book(
            connection: &mut Connection,
            book: &Book,
        ) -> Result<bool, sqlx::Error> {
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

        pub(crate) async fn insert(handle: &Handle, book: Book) -> Result<Book, InventoryError> {
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            if !insert_book(&mut connection, &book)
                .await
                .map_err(unavailable)?
            {
                return Err(InventoryError::AlreadyExists { isbn: book.isbn });
            }
            Ok(book)
        }

        /// Inserts `books` in one transaction, skipping every ISBN that is already taken;
        /// returns how many were inserted.
        pub(crate) async fn insert_missing(
            handle: &Handle,
            books: &[Book],
        ) -> Result<u64, InventoryError> {
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
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

        pub(crate) async fn get(handle: &Handle, isbn: &Isbn) -> Result<Book, InventoryError> {
            let row = sqlx::query(GET_BOOK)
                .bind(isbn.as_str())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?
                .ok_or(InventoryError::NotFound { isbn: *isbn })?;
            book_from_row(&row).map_err(unavailable)
        }

        pub(crate) async fn update(
            handle: &Handle,
            isbn: &Isbn,
            patch: BookPatch,
        ) -> Result<Book, InventoryError> {
            let BookPatch {
                title,
                author,
                price,
                stock,
            } = patch;
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
                .fetch_optional(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?
                .ok_or(InventoryError::NotFound { isbn: *isbn })?;
            book_from_row(&row).map_err(unavailable)
        }

        pub(crate) async fn list(
            handle: &Handle,
            query: &BookQuery,
        ) -> Result<BookPage, InventoryError> {
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
            let rows = statement
                .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            let mut books = rows
                .iter()
                .map(book_from_row)
                .collect::<Result<Vec<Book>, BoxError>>()
                .map_err(unavailable)?;
            let next_after = if books.len() > limit {
                books.truncate(limit);
                books.last().map(|book| book.isbn)
            } else {
                None
            };
            Ok(BookPage { books, next_after })
        }

        pub(crate) async fn reserve_all(
            handle: &Handle,
            instance: InstanceId,
            reservation: ReservationId,
            lines: &[StockLine],
        ) -> Result<Vec<ReservedLine>, InventoryError> {
            let lines = merge_lines(lines)?;
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
            let result = reserve_in(&mut transaction, instance, reservation, &lines).await;
            finish(transaction, result).await
        }

        /// Journals the reservation and takes the stock of each (merged, ISBN-ordered) line;
        /// on an error the caller rolls everything back.
        async fn reserve_in(
            connection: &mut Connection,
            instance: InstanceId,
            reservation: ReservationId,
            lines: &[StockLine],
        ) -> Result<Vec<ReservedLine>, InventoryError> {
            let taken = match journal_and_take(
                connection,
                instance,
                reservation,
                lines,
                to_db_time(Utc::now()),
            )
            .await
            {
                Ok(taken) => taken,
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    return Err(InventoryError::ReservationExists { reservation });
                }
                Err(error) => return Err(unavailable(error)),
            };
            let mut reserved = Vec::with_capacity(lines.len());
            for line in lines {
                let row = taken
                    .iter()
                    .find(|row| row.try_get::<&str, _>("isbn").ok() == Some(line.isbn.as_str()));
                let Some(row) = row else {
                    // The first line (in ISBN order) that could not be taken is the answer.
                    return Err(match stock_of(connection, &line.isbn).await? {
                        None => InventoryError::UnknownBook { isbn: line.isbn },
                        Some(available) => InventoryError::OutOfStock {
                            isbn: line.isbn,
                            requested: line.quantity.get(),
                            available,
                        },
                    });
                };
                reserved.push(reserved_line(line, row).map_err(unavailable)?);
            }
            Ok(reserved)
        }

        fn reserved_line(line: &StockLine, row: &Row) -> Result<ReservedLine, BoxError> {
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
            connection: &mut Connection,
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

        /// Gives back the stock of each (merged, ISBN-ordered) line; the caller rolls
        /// everything back on an error.
        async fn give_back_in(
            connection: &mut Connection,
            lines: &[StockLine],
        ) -> Result<(), InventoryError> {
            for line in lines {
                let given = sqlx::query(GIVE_BACK_STOCK)
                    .bind(i64::from(line.quantity.get()))
                    .bind(line.isbn.as_str())
                    .execute(&mut *connection)
                    .await
                    .map_err(unavailable)?;
                if given.rows_affected() == 0 {
                    return Err(match stock_of(connection, &line.isbn).await? {
                        None => InventoryError::UnknownBook { isbn: line.isbn },
                        Some(_) => InventoryError::StockOverflow { isbn: line.isbn },
                    });
                }
            }
            Ok(())
        }

        pub(crate) async fn release_all(
            handle: &Handle,
            lines: &[StockLine],
        ) -> Result<(), InventoryError> {
            let lines = merge_lines(lines)?;
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
            let result = give_back_in(&mut transaction, &lines).await;
            finish(transaction, result).await
        }

        pub(crate) async fn confirm_reservation(
            handle: &Handle,
            reservation: ReservationId,
        ) -> Result<(), InventoryError> {
            forget_journaled(handle, DELETE_RESERVATION, reservation).await
        }

        /// Deletes the journal record `delete` names, giving nothing back; an id not in the
        /// journal is `Ok`.
        async fn forget_journaled(
            handle: &Handle,
            delete: &'static str,
            id: ReservationId,
        ) -> Result<(), InventoryError> {
            sqlx::query(delete)
                .bind(id.as_uuid())
                .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map(drop)
                .map_err(unavailable)
        }

        pub(crate) async fn cancel_reservation(
            handle: &Handle,
            reservation: ReservationId,
        ) -> Result<(), InventoryError> {
            give_back_journaled(handle, TAKE_RESERVATION, reservation).await
        }

        /// Deletes the journal record `take` names (so a concurrent call finds nothing) and
        /// gives its stock back, in one transaction; an id not in the journal gives nothing.
        async fn give_back_journaled(
            handle: &Handle,
            take: &'static str,
            id: ReservationId,
        ) -> Result<(), InventoryError> {
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
            let result = give_back_in_journal(&mut transaction, take, id).await;
            finish(transaction, result).await
        }

        async fn give_back_in_journal(
            connection: &mut Connection,
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
            give_back_in(connection, &lines).await
        }

        pub(crate) async fn begin_return(
            handle: &Handle,
            instance: InstanceId,
            id: ReservationId,
            lines: &[StockLine],
        ) -> Result<(), InventoryError> {
            let lines = merge_lines(lines)?;
            sqlx::query(INSERT_RETURN)
                .bind(id.as_uuid())
                .bind(codec::encode_lines(&lines))
                .bind(to_db_time(Utc::now()))
                .bind(instance.as_uuid())
                .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map(drop)
                .map_err(unavailable)
        }

        pub(crate) async fn complete_return(
            handle: &Handle,
            id: ReservationId,
        ) -> Result<(), InventoryError> {
            give_back_journaled(handle, TAKE_RETURN, id).await
        }

        pub(crate) async fn abandon_return(
            handle: &Handle,
            id: ReservationId,
        ) -> Result<(), InventoryError> {
            forget_journaled(handle, DELETE_RETURN, id).await
        }

        pub(crate) async fn returns_older_than(
            handle: &Handle,
            cutoff: DateTime<Utc>,
        ) -> Result<Vec<ReservationId>, InventoryError> {
            ids_before(handle, RETURNS_BEFORE, cutoff).await
        }

        pub(crate) async fn stopped_processes_journal(
            handle: &Handle,
        ) -> Result<Journal, InventoryError> {
            Ok(Journal {
                reservations: ids_of(handle, STOPPED_RESERVATIONS).await?,
                returns: ids_of(handle, STOPPED_RETURNS).await?,
            })
        }

        async fn ids_of(
            handle: &Handle,
            select: &'static str,
        ) -> Result<Vec<ReservationId>, InventoryError> {
            let ids: Vec<Uuid> = sqlx::query_scalar(select)
                .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Ok(ids.into_iter().map(ReservationId::from_uuid).collect())
        }

        async fn ids_before(
            handle: &Handle,
            select: &'static str,
            cutoff: DateTime<Utc>,
        ) -> Result<Vec<ReservationId>, InventoryError> {
            let ids: Vec<Uuid> = sqlx::query_scalar(select)
                .bind(to_db_time(cutoff))
                .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Ok(ids.into_iter().map(ReservationId::from_uuid).collect())
        }

        pub(crate) async fn reservations_older_than(
            handle: &Handle,
            cutoff: DateTime<Utc>,
        ) -> Result<Vec<ReservationId>, InventoryError> {
            ids_before(handle, RESERVATIONS_BEFORE, cutoff).await
        }
    };
}

pub(crate) use catalogue_queries;

/// Orders, their lines kept as JSON in the order's row.
///
/// SQL: `INSERT_ORDER` (a conflicting id does nothing), `GET_ORDER`, `LIST_ORDERS` (?1
/// owner, ?2 rows), `LIST_ORDERS_BEFORE` (?3 the cursor), `CANCEL_ORDER` (only a confirmed
/// order; returns the row), `ORDER_STATUS`. Rows have the columns `id`, `owner`, `status`,
/// `lines` (JSON text), `total_cents`, `currency`, `transaction_id`, `payment_status`,
/// `created_at`.
macro_rules! order_queries {
    () => {
        use bookstore_sales::{CustomerId, Order, OrderPage, Payment, SalesError, TransactionId};
        use bookstore_types::OrderId;
        use sqlx::Row as _;
        use uuid::Uuid;

        use super::{Db, Handle, from_db_time, read_connection, to_db_time, write_connection};
        use crate::codec;
        use crate::failure::{BoxError, unavailable};

        type Row = <Db as sqlx::Database>::Row;

        pub(crate) async fn insert(
            handle: &Handle,
            instance: crate::InstanceId,
            order: Order,
        ) -> Result<(), SalesError> {
            // One statement: the order and its lines are written together or not at all,
            // and only while this instance holds its lease.
            let inserted = sqlx::query(INSERT_ORDER)
                .bind(order.id().as_uuid())
                .bind(order.owner().as_str())
                .bind(order.status().as_str())
                .bind(codec::encode_order_lines(order.lines()))
                .bind(order.total().cents())
                .bind(order.total().currency().as_str())
                .bind(order.payment().transaction_id.as_uuid())
                .bind(order.payment().status.as_str())
                .bind(to_db_time(order.created_at()))
                .bind(instance.as_uuid())
                .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            match sqlx::query_scalar::<_, String>(ORDER_STATUS)
                .bind(order.id().as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?
            {
                Some(_) => Err(SalesError::AlreadyExists {
                    order_id: order.id(),
                }),
                None => Err(unavailable(crate::instances::LeaseExpired { instance })),
            }
        }

        pub(crate) async fn get(handle: &Handle, id: OrderId) -> Result<Order, SalesError> {
            let row = sqlx::query(GET_ORDER)
                .bind(id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?
                .ok_or(SalesError::NotFound { order_id: id })?;
            order_from_row(&row).map_err(unavailable)
        }

        pub(crate) async fn list_by_owner(
            handle: &Handle,
            owner: &CustomerId,
            before: Option<OrderId>,
            limit: u32,
        ) -> Result<OrderPage, SalesError> {
            // Clamped as the in-memory store does; one more than a page tells whether more
            // orders remain.
            let limit = limit.clamp(1, 100) as usize;
            let statement = match before {
                None => sqlx::query(LIST_ORDERS)
                    .bind(owner.as_str())
                    .bind(limit as i64 + 1),
                Some(cursor) => sqlx::query(LIST_ORDERS_BEFORE)
                    .bind(owner.as_str())
                    .bind(limit as i64 + 1)
                    .bind(cursor.as_uuid()),
            };
            let rows = statement
                .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            let mut orders = rows
                .iter()
                .map(order_from_row)
                .collect::<Result<Vec<Order>, BoxError>>()
                .map_err(unavailable)?;
            let next_before = if orders.len() > limit {
                orders.truncate(limit);
                orders.last().map(Order::id)
            } else {
                None
            };
            Ok(OrderPage {
                orders,
                next_before,
            })
        }

        pub(crate) async fn mark_cancelled(
            handle: &Handle,
            id: OrderId,
        ) -> Result<Order, SalesError> {
            let cancelled = sqlx::query(CANCEL_ORDER)
                .bind(id.as_uuid())
                .fetch_optional(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            if let Some(row) = cancelled {
                return order_from_row(&row).map_err(unavailable);
            }
            let status: Option<String> = sqlx::query_scalar(ORDER_STATUS)
                .bind(id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Err(match status {
                None => SalesError::NotFound { order_id: id },
                Some(_) => SalesError::AlreadyCancelled { order_id: id },
            })
        }

        fn order_from_row(row: &Row) -> Result<Order, BoxError> {
            let id: Uuid = row.try_get("id")?;
            let owner: String = row.try_get("owner")?;
            let status: String = row.try_get("status")?;
            let lines: String = row.try_get("lines")?;
            let currency: String = row.try_get("currency")?;
            let payment_status: String = row.try_get("payment_status")?;
            Ok(Order::restore(
                OrderId::from_uuid(id),
                CustomerId::new(owner),
                codec::order_status(&status)?,
                codec::decode_order_lines(&lines)?,
                codec::money(row.try_get("total_cents")?, &currency)?,
                Payment {
                    transaction_id: TransactionId::from_uuid(row.try_get("transaction_id")?),
                    status: codec::payment_status(&payment_status)?,
                },
                from_db_time(row.try_get("created_at")?)?,
            ))
        }
    };
}

pub(crate) use order_queries;

/// Deliveries, their tracking history kept as JSON in the delivery's row, and the count of
/// deliveries per day.
///
/// SQL: `INSERT_DELIVERY` (a clash on the id or the order inserts nothing),
/// `DELIVERY_ID_FOR_ORDER`, `ORDER_ID_FOR_DELIVERY`, `GET_DELIVERY`, `GET_DELIVERY_BY_ORDER`,
/// `UPDATE_DELIVERY` (only at the version read; bumps it), `BOOK_DAY` (one more delivery on
/// a day if it holds fewer than the capacity), `FREE_DAY`, `LIST_DELIVERIES` (optional
/// status and date filters, after a cursor), `COUNT_OVERDUE`. Rows have the columns of
/// [`crate::codec::DeliveryColumns`] and `version`.
macro_rules! delivery_queries {
    () => {
        use bookstore_delivery::{
            CarrierUpdate, Delivery, DeliveryError, DeliveryId, DeliveryPage, DeliveryQuery,
            DeliveryStatus, Recorded,
        };
        use bookstore_types::OrderId;
        use chrono::{DateTime, Utc};
        use sqlx::Row as _;
        use uuid::Uuid;

        use super::{
            Db, Handle, begin_write, from_db_time, read_connection, to_db_time, write_connection,
        };
        use crate::codec::{self, DeliveryColumns};
        use crate::failure::{BoxError, finish, unavailable};

        type Connection = <Db as sqlx::Database>::Connection;
        type Row = <Db as sqlx::Database>::Row;

        /// A delivery and the version its row had when read.
        fn delivery_from_row(row: &Row) -> Result<(Delivery, i64), BoxError> {
            let status_since: Option<super::DbTime> = row.try_get("status_since")?;
            let delivery = codec::delivery(DeliveryColumns {
                id: row.try_get("id")?,
                order_id: row.try_get("order_id")?,
                status: row.try_get("status")?,
                recipient: row.try_get("recipient")?,
                line1: row.try_get("line1")?,
                line2: row.try_get("line2")?,
                city: row.try_get("city")?,
                postal_code: row.try_get("postal_code")?,
                country: row.try_get("country")?,
                scheduled_date: row.try_get("scheduled_date")?,
                tracking_number: row.try_get("tracking_number")?,
                created_at: from_db_time(row.try_get("created_at")?)?,
                carrier: row.try_get("carrier")?,
                carrier_tracking_number: row.try_get("carrier_tracking_number")?,
                status_since: status_since.map(from_db_time).transpose()?,
                history: row.try_get("history")?,
            })?;
            Ok((delivery, row.try_get("version")?))
        }

        /// The tracking columns of `delivery` (carrier, carrier tracking number, status
        /// since, history), as the insert and the update bind them.
        fn tracking_columns(
            delivery: &Delivery,
        ) -> (Option<&str>, Option<&str>, Option<super::DbTime>, String) {
            let tracking = delivery.tracking();
            (
                tracking.carrier.as_ref().map(|carrier| carrier.as_str()),
                tracking
                    .carrier_tracking_number
                    .as_ref()
                    .map(|number| number.as_str()),
                tracking.status_since.map(to_db_time),
                codec::encode_history(&tracking.history),
            )
        }

        /// Whether a delivery in `status` takes a place on its day.
        fn takes_a_place(status: DeliveryStatus) -> bool {
            status != DeliveryStatus::Cancelled
        }

        pub(crate) async fn insert(
            handle: &Handle,
            delivery: Delivery,
            capacity: Option<u32>,
        ) -> Result<(), DeliveryError> {
            let outcome = {
                let mut connection = write_connection(handle).await.map_err(unavailable)?;
                let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
                let result = insert_in(&mut transaction, &delivery, capacity).await;
                finish(transaction, result).await
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(DeliveryError::Unavailable(cause)) if cause.is::<NotInserted>() => {}
                Err(error) => return Err(error),
            }
            // Either the order has a delivery, or (a delivery inserted twice) the id is taken.
            let order_id = delivery.order_id();
            let existing: Option<Uuid> = sqlx::query_scalar(DELIVERY_ID_FOR_ORDER)
                .bind(order_id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            if let Some(existing) = existing {
                return Err(DeliveryError::AlreadyScheduled {
                    order_id,
                    delivery_id: DeliveryId::from_uuid(existing),
                });
            }
            let other_order: Option<Uuid> = sqlx::query_scalar(ORDER_ID_FOR_DELIVERY)
                .bind(delivery.id().as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Err(DeliveryError::AlreadyScheduled {
                order_id: other_order.map_or(order_id, OrderId::from_uuid),
                delivery_id: delivery.id(),
            })
        }

        /// Books the day (if the delivery takes a place) and inserts the delivery; a clash
        /// is the error [`NotInserted`], so that the caller rolls the booking back.
        async fn insert_in(
            connection: &mut Connection,
            delivery: &Delivery,
            capacity: Option<u32>,
        ) -> Result<(), DeliveryError> {
            let date = delivery.scheduled_date();
            if takes_a_place(delivery.status()) {
                let booked = sqlx::query(BOOK_DAY)
                    .bind(date)
                    .bind(capacity.map_or(i64::MAX, i64::from))
                    .execute(&mut *connection)
                    .await
                    .map_err(unavailable)?;
                if booked.rows_affected() == 0 {
                    return Err(DeliveryError::DayFull { date });
                }
            }
            let address = delivery.address();
            let (carrier, carrier_tracking_number, status_since, history) =
                tracking_columns(delivery);
            let inserted = sqlx::query(INSERT_DELIVERY)
                .bind(delivery.id().as_uuid())
                .bind(delivery.order_id().as_uuid())
                .bind(delivery.status().as_str())
                .bind(address.recipient())
                .bind(address.line1())
                .bind(address.line2())
                .bind(address.city())
                .bind(address.postal_code())
                .bind(address.country().as_str())
                .bind(date)
                .bind(delivery.tracking_number().as_str())
                .bind(to_db_time(delivery.created_at()))
                .bind(carrier)
                .bind(carrier_tracking_number)
                .bind(status_since)
                .bind(history)
                .execute(&mut *connection)
                .await
                .map_err(unavailable)?;
            if inserted.rows_affected() == 1 {
                Ok(())
            } else {
                Err(DeliveryError::Unavailable(Box::new(NotInserted)))
            }
        }

        pub(crate) async fn get(
            handle: &Handle,
            id: DeliveryId,
        ) -> Result<Delivery, DeliveryError> {
            get_versioned(handle, id)
                .await
                .map(|(delivery, _)| delivery)
        }

        async fn get_versioned(
            handle: &Handle,
            id: DeliveryId,
        ) -> Result<(Delivery, i64), DeliveryError> {
            let row = sqlx::query(GET_DELIVERY)
                .bind(id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?
                .ok_or(DeliveryError::NotFound { delivery_id: id })?;
            delivery_from_row(&row).map_err(unavailable)
        }

        pub(crate) async fn get_by_order(
            handle: &Handle,
            order_id: OrderId,
        ) -> Result<Option<Delivery>, DeliveryError> {
            get_by_order_versioned(handle, order_id)
                .await
                .map(|found| found.map(|(delivery, _)| delivery))
        }

        async fn get_by_order_versioned(
            handle: &Handle,
            order_id: OrderId,
        ) -> Result<Option<(Delivery, i64)>, DeliveryError> {
            let row = sqlx::query(GET_DELIVERY_BY_ORDER)
                .bind(order_id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            row.map(|row| delivery_from_row(&row).map_err(unavailable))
                .transpose()
        }

        /// Stores what `changed` changed (status and tracking) if the row is still at
        /// `version`, and frees its day's place if it became cancelled; false if someone
        /// changed the row first.
        async fn store_changes(
            handle: &Handle,
            changed: &Delivery,
            version: i64,
        ) -> Result<bool, DeliveryError> {
            let mut connection = write_connection(handle).await.map_err(unavailable)?;
            let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
            let result = store_changes_in(&mut transaction, changed, version).await;
            finish(transaction, result).await
        }

        async fn store_changes_in(
            connection: &mut Connection,
            changed: &Delivery,
            version: i64,
        ) -> Result<bool, DeliveryError> {
            let (carrier, carrier_tracking_number, status_since, history) =
                tracking_columns(changed);
            let updated = sqlx::query(UPDATE_DELIVERY)
                .bind(changed.id().as_uuid())
                .bind(version)
                .bind(changed.status().as_str())
                .bind(carrier)
                .bind(carrier_tracking_number)
                .bind(status_since)
                .bind(history)
                .execute(&mut *connection)
                .await
                .map_err(unavailable)?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            if changed.status() == DeliveryStatus::Cancelled {
                sqlx::query(FREE_DAY)
                    .bind(changed.scheduled_date())
                    .execute(&mut *connection)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(true)
        }

        pub(crate) async fn transition(
            handle: &Handle,
            id: DeliveryId,
            change: fn(Delivery) -> Result<Delivery, DeliveryError>,
        ) -> Result<Delivery, DeliveryError> {
            // Optimistic: read, change in Rust, write only if the row is still at the
            // version read; otherwise another writer won, and the change is tried on its
            // result.
            loop {
                let (current, version) = get_versioned(handle, id).await?;
                let changed = change(current)?;
                if store_changes(handle, &changed, version).await? {
                    return Ok(changed);
                }
            }
        }

        pub(crate) async fn record_update(
            handle: &Handle,
            id: DeliveryId,
            update: &CarrierUpdate,
            recorded_at: DateTime<Utc>,
        ) -> Result<(Delivery, Recorded), DeliveryError> {
            loop {
                let (current, version) = get_versioned(handle, id).await?;
                let (changed, recorded) = current.record(update.clone(), recorded_at)?;
                if recorded == Recorded::Duplicate
                    || store_changes(handle, &changed, version).await?
                {
                    return Ok((changed, recorded));
                }
            }
        }

        pub(crate) async fn cancel_for_order(
            handle: &Handle,
            order_id: OrderId,
        ) -> Result<Option<Delivery>, DeliveryError> {
            loop {
                let Some((current, version)) = get_by_order_versioned(handle, order_id).await?
                else {
                    return Ok(None);
                };
                if current.status() == DeliveryStatus::Cancelled {
                    return Ok(Some(current));
                }
                let cancelled = current.cancelled()?;
                if store_changes(handle, &cancelled, version).await? {
                    return Ok(Some(cancelled));
                }
            }
        }

        pub(crate) async fn list(
            handle: &Handle,
            query: &DeliveryQuery,
        ) -> Result<DeliveryPage, DeliveryError> {
            // One more row than asked tells whether there is a next page.
            let rows = sqlx::query(LIST_DELIVERIES)
                .bind(query.status.map(DeliveryStatus::as_str))
                .bind(query.date)
                .bind(query.after.map_or(Uuid::nil(), |after| after.as_uuid()))
                .bind(i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX))
                .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            let mut deliveries = rows
                .iter()
                .map(|row| delivery_from_row(row).map(|(delivery, _)| delivery))
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let more = deliveries.len() > query.limit;
            deliveries.truncate(query.limit);
            let next_after = if more {
                deliveries.last().map(Delivery::id)
            } else {
                None
            };
            Ok(DeliveryPage {
                deliveries,
                next_after,
            })
        }

        pub(crate) async fn count_overdue(
            handle: &Handle,
            now: DateTime<Utc>,
        ) -> Result<u64, DeliveryError> {
            let count: i64 = sqlx::query_scalar(COUNT_OVERDUE)
                .bind(now.date_naive())
                .fetch_one(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Ok(u64::try_from(count).unwrap_or(0))
        }

        /// The delivery clashed with another (its order's, or its own id): the booking of
        /// its day is rolled back.
        #[derive(Debug, thiserror::Error)]
        #[error("the delivery clashed with one already stored")]
        struct NotInserted;
    };
}

pub(crate) use delivery_queries;

/// The simulated processor's ledger.
///
/// SQL: `CAPTURE_FOR` (by reference: `transaction_id`, `amount_cents`, `currency`,
/// `status`), `INSERT_CAPTURE` (a conflicting reference does nothing), `REFUND` (only a
/// captured transaction), `TRANSACTION` (by id: `amount_cents`, `currency`, `status`),
/// `COUNT_WITH_STATUS`.
macro_rules! payment_queries {
    () => {
        use bookstore_sales::{
            Capture, PaymentError, PaymentStatus, PaymentToken, TransactionId, simulated_decision,
        };
        use bookstore_types::{Money, OrderId};
        use chrono::Utc;
        use sqlx::Row as _;

        use super::{Db, Handle, read_connection, to_db_time, write_connection};
        use crate::codec;
        use crate::failure::{BoxError, unavailable};

        type Row = <Db as sqlx::Database>::Row;

        pub(crate) async fn capture(
            handle: &Handle,
            token: &PaymentToken,
            amount: Money,
            reference: OrderId,
        ) -> Result<TransactionId, PaymentError> {
            // A reference captured before answers with its transaction whatever the token;
            // a refused token is only an error if there is no such capture.
            if let Err(refused) = simulated_decision(token) {
                return match capture_for(handle, reference).await? {
                    Some(existing) => Ok(existing.transaction_id),
                    None => Err(refused),
                };
            }
            let transaction_id = TransactionId::generate();
            let inserted = sqlx::query(INSERT_CAPTURE)
                .bind(transaction_id.as_uuid())
                .bind(reference.as_uuid())
                .bind(amount.cents())
                .bind(amount.currency().as_str())
                .bind(to_db_time(Utc::now()))
                .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            if inserted.rows_affected() == 1 {
                return Ok(transaction_id);
            }
            // The reference was captured before (or concurrently): answer with that capture.
            capture_for(handle, reference)
                .await?
                .map(|capture| capture.transaction_id)
                .ok_or_else(|| PaymentError::Unavailable("a capture vanished".to_owned()))
        }

        pub(crate) async fn capture_for(
            handle: &Handle,
            reference: OrderId,
        ) -> Result<Option<Capture>, PaymentError> {
            let row = sqlx::query(CAPTURE_FOR)
                .bind(reference.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let (amount, status) = amount_and_status(&row).map_err(unavailable)?;
            let transaction_id = row.try_get("transaction_id").map_err(unavailable)?;
            Ok(Some(Capture {
                transaction_id: TransactionId::from_uuid(transaction_id),
                amount,
                status,
            }))
        }

        fn amount_and_status(row: &Row) -> Result<(Money, PaymentStatus), BoxError> {
            let currency: String = row.try_get("currency")?;
            let status: String = row.try_get("status")?;
            Ok((
                codec::money(row.try_get("amount_cents")?, &currency)?,
                codec::payment_status(&status)?,
            ))
        }

        pub(crate) async fn refund(
            handle: &Handle,
            transaction_id: TransactionId,
        ) -> Result<(), PaymentError> {
            let refunded = sqlx::query(REFUND)
                .bind(transaction_id.as_uuid())
                .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            if refunded.rows_affected() == 1 {
                return Ok(());
            }
            match transaction(handle, transaction_id).await? {
                None => Err(PaymentError::UnknownTransaction { transaction_id }),
                Some(_) => Err(PaymentError::AlreadyRefunded { transaction_id }),
            }
        }

        pub(crate) async fn transaction(
            handle: &Handle,
            transaction_id: TransactionId,
        ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
            let row = sqlx::query(TRANSACTION)
                .bind(transaction_id.as_uuid())
                .fetch_optional(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            row.map(|row| amount_and_status(&row).map_err(unavailable))
                .transpose()
        }

        pub(crate) async fn count_with_status(
            handle: &Handle,
            status: PaymentStatus,
        ) -> Result<usize, PaymentError> {
            let count: i64 = sqlx::query_scalar(COUNT_WITH_STATUS)
                .bind(status.as_str())
                .fetch_one(&mut *read_connection(handle).await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
            Ok(usize::try_from(count).unwrap_or_default())
        }
    };
}

pub(crate) use payment_queries;
