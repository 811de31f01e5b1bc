//! Group commit of reservations: the reservations that arrive while one transaction of them
//! runs are committed together, in the next.
//!
//! Every order reserves stock, and a shop's orders often take the same few books. A
//! reservation's conditional `UPDATE` locks the book's row until its transaction commits, so
//! the reservations of one book queue behind each other's commit: a flush of the WAL and the
//! round trips between this process and the database, with the row locked all along. A
//! [`Reserver`] takes the reservations waiting when its previous transaction ends and
//! applies them in one transaction, so a book's row is locked once and the WAL flushed once
//! per batch, not per reservation. A reservation that arrives alone runs alone, as before.
//!
//! In a batch, each reservation is applied in turn exactly as it would be alone: its journal
//! row (an id already in the journal answers [`InventoryError::ReservationExists`] and
//! changes nothing), then one conditional update per merged line in ISBN order. One that
//! cannot be served is undone inside the transaction by the inverse statements (its stock
//! given back, its journal row deleted), not by a savepoint, so the reservations that succeed
//! cost no extra round trip; it answers the same error it would alone (the first line that
//! could not be taken, in ISBN order). `book.out_of_stock` is recorded, in the same
//! transaction, for each book a successful reservation of the batch took the last copies of.
//!
//! The books of a batch are locked in ISBN order, as every other transaction on books locks
//! them: when the batch's reservations would reach a book after a later one, the batch first
//! locks all its books in order (`SELECT ... ORDER BY isbn FOR UPDATE`). So batches of several
//! instances never deadlock with each other or with a single reservation.
//!
//! If a statement of the batch fails (a lost connection, a deadlock the database broke, a
//! statement it refused), nothing of the batch was applied and each of its reservations is
//! tried again alone, so a failure answers only the callers it concerns. If no transaction
//! can begin, or the commit itself fails, every caller of the batch is answered unavailable,
//! as a single reservation would be; after a failed commit whether it applied is unknown,
//! and the journal rows of one that did apply are given back by the recovery of abandoned
//! reservations.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use bookstore_inventory::{InventoryError, ReservationId, ReservedLine, StockLine};
use bookstore_types::Isbn;
use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;

use super::catalogue::{Taken, journal, take_lines};
use super::events::record;
use crate::InstanceId;
use crate::events::{Fact, NewEvent, Outbox};
use crate::failure::{BoxError, unavailable};

/// The most reservations one transaction applies; the rest wait for the next.
const MOST_PER_BATCH: usize = 256;

/// Undoes a line that [`take_lines`] took in this transaction (the row is still locked by it).
const UNDO_TAKE: &str = "UPDATE books SET stock = stock + $1 WHERE isbn = $2";

const UNDO_JOURNAL: &str = "DELETE FROM reservations WHERE id = $1";

/// Locks the books $1 in ISBN order.
const LOCK_IN_ORDER: &str = "SELECT isbn FROM books WHERE isbn = ANY($1) ORDER BY isbn FOR UPDATE";

/// What a reservation answers.
type Answer = Result<Vec<ReservedLine>, InventoryError>;

/// Commits the reservations of concurrent callers together; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Reserver {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    pool: PgPool,
    instance: InstanceId,
    outbox: Outbox,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Request>,
    /// Whether a task is applying batches (and will take what waits).
    running: bool,
}

#[derive(Debug)]
struct Request {
    reservation: ReservationId,
    /// Merged: one line per ISBN, in ISBN order.
    lines: Vec<StockLine>,
    reply: oneshot::Sender<Answer>,
}

impl Reserver {
    pub(crate) fn new(pool: PgPool, instance: InstanceId, outbox: Outbox) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                instance,
                outbox,
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Reserves `lines` (merged, in ISBN order) under `reservation`, in the next batch.
    pub(crate) async fn reserve(
        &self,
        reservation: ReservationId,
        lines: Vec<StockLine>,
    ) -> Answer {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.shared.lock();
            queue.waiting.push(Request {
                reservation,
                lines,
                reply,
            });
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            // A task of its own, so that a caller that stops waiting (its client went away)
            // never stops the batch the others wait for.
            tokio::spawn(Arc::clone(&self.shared).run());
        }
        answer.await.unwrap_or_else(|_| {
            Err(unavailable(
                "the reservation's batch stopped before it answered",
            ))
        })
    }
}

/// Dropped only if the task ends early (a panic, or its runtime stopping; a task that
/// finds the queue empty forgets it): clears the queue's `running` flag and answers the
/// callers still waiting unavailable (their replies are dropped), so none waits for a task
/// that is gone.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.running = false;
        queue.waiting.clear();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies batches until none waits.
    async fn run(self: Arc<Self>) {
        let running = Running(&self);
        loop {
            let batch: Vec<Request> = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    // Cleared under the same lock that saw the queue empty: the next
                    // caller starts a task.
                    queue.running = false;
                    std::mem::forget(running);
                    return;
                }
                let taken = queue.waiting.len().min(MOST_PER_BATCH);
                queue.waiting.drain(..taken).collect()
            };
            self.apply(batch).await;
        }
    }

    /// Applies `batch` in one transaction, or its reservations one by one when it holds
    /// only one or its transaction failed before the commit.
    async fn apply(&self, batch: Vec<Request>) {
        if batch.len() > 1 {
            match self.together(&batch).await {
                Ok(answers) => {
                    for (request, answer) in batch.into_iter().zip(answers) {
                        request.reply.send(answer).ok();
                    }
                    return;
                }
                Err(Failure::Unavailable(cause)) => {
                    for request in batch {
                        let answer = Err(unavailable(format!(
                            "the reservation's batch failed: {cause}"
                        )));
                        request.reply.send(answer).ok();
                    }
                    return;
                }
                Err(Failure::TryAlone(cause)) => {
                    tracing::debug!(error = %cause, size = batch.len(), "a batch of reservations failed; applying them one by one");
                }
            }
        }
        for request in batch {
            let answer = self.alone(&request).await;
            request.reply.send(answer).ok();
        }
    }

    /// One reservation in a transaction of its own.
    async fn alone(&self, request: &Request) -> Answer {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let result = super::catalogue::reserve_in(
            &mut transaction,
            &self.outbox,
            self.instance,
            request.reservation,
            &request.lines,
        )
        .await;
        crate::failure::finish(transaction, result).await
    }

    /// Every reservation of `batch` in one transaction, in order.
    async fn together(&self, batch: &[Request]) -> Result<Vec<Answer>, Failure> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| Failure::Unavailable(error.into()))?;
        if let Some(books) = out_of_order(batch) {
            sqlx::query(LOCK_IN_ORDER)
                .bind(books)
                .execute(&mut *transaction)
                .await
                .map_err(Failure::try_alone)?;
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        for request in batch {
            answers.push(
                self.apply_one(&mut transaction, request, &mut events)
                    .await
                    .map_err(Failure::TryAlone)?,
            );
        }
        record(&mut transaction, &events)
            .await
            .map_err(Failure::try_alone)?;
        transaction
            .commit()
            .await
            .map_err(|error| Failure::Unavailable(error.into()))?;
        Ok(answers)
    }

    /// Applies one reservation of a batch on `connection`, undoing it there if it cannot be
    /// served; pushes the events it is due to `events`. The outer error is the batch's.
    async fn apply_one(
        &self,
        connection: &mut PgConnection,
        request: &Request,
        events: &mut Vec<NewEvent>,
    ) -> Result<Answer, BoxError> {
        if !journal(
            connection,
            self.instance,
            request.reservation,
            &request.lines,
        )
        .await?
        {
            return Ok(Err(InventoryError::ReservationExists {
                reservation: request.reservation,
            }));
        }
        match take_lines(connection, &request.lines).await? {
            Taken::All { reserved, emptied } => {
                let now = Utc::now();
                events.extend(
                    emptied
                        .iter()
                        .map(|book| self.outbox.event(Fact::BookOutOfStock(book), now)),
                );
                Ok(Ok(reserved))
            }
            Taken::Refused { taken, refusal } => {
                undo(connection, request, &request.lines[..taken]).await?;
                Ok(Err(refusal))
            }
        }
    }
}

/// Gives back the lines of `request` taken so far and deletes its journal row.
async fn undo(
    connection: &mut PgConnection,
    request: &Request,
    taken: &[StockLine],
) -> Result<(), sqlx::Error> {
    for line in taken {
        sqlx::query(UNDO_TAKE)
            .bind(i64::from(line.quantity.get()))
            .bind(line.isbn.as_str())
            .execute(&mut *connection)
            .await?;
    }
    sqlx::query(UNDO_JOURNAL)
        .bind(request.reservation.as_uuid())
        .execute(&mut *connection)
        .await
        .map(drop)
}

/// The books of `batch`, in ISBN order, if its reservations would lock one after a later
/// one; `None` if applying them in turn already locks in ISBN order.
fn out_of_order(batch: &[Request]) -> Option<Vec<String>> {
    let mut locked = BTreeSet::<Isbn>::new();
    let mut in_order = true;
    for line in batch.iter().flat_map(|request| &request.lines) {
        if let Some(last) = locked.last()
            && line.isbn < *last
            && !locked.contains(&line.isbn)
        {
            in_order = false;
        }
        locked.insert(line.isbn);
    }
    (!in_order).then(|| locked.iter().map(|isbn| isbn.as_str().to_owned()).collect())
}

/// How a batch failed.
enum Failure {
    /// A statement failed before the commit: nothing of the batch was applied, and each of
    /// its reservations is tried again alone.
    TryAlone(BoxError),
    /// No transaction could begin (trying again would wait as long again), or the commit
    /// failed (whether it applied is unknown): every caller is answered unavailable.
    Unavailable(BoxError),
}

impl Failure {
    fn try_alone(error: impl Into<BoxError>) -> Self {
        Self::TryAlone(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bookstore_types::Quantity;

    fn request(isbns: &[&str]) -> Request {
        let (reply, _) = oneshot::channel();
        Request {
            reservation: ReservationId::from_uuid(uuid::Uuid::new_v4()),
            lines: isbns
                .iter()
                .map(|isbn| StockLine {
                    isbn: Isbn::parse(isbn).unwrap(),
                    quantity: Quantity::new(1).unwrap(),
                })
                .collect(),
            reply,
        }
    }

    const A: &str = "9780000000002";
    const B: &str = "9780000000019";
    const C: &str = "9780000000026";

    #[test]
    fn a_batch_that_reaches_its_books_in_isbn_order_locks_nothing_first() {
        assert_eq!(
            out_of_order(&[request(&[A]), request(&[A]), request(&[A])]),
            None
        );
        assert_eq!(out_of_order(&[request(&[A, B]), request(&[B, C])]), None);
        // A book locked earlier in the batch is already held: reaching it again is no
        // new lock.
        assert_eq!(
            out_of_order(&[request(&[A, B]), request(&[A]), request(&[C])]),
            None
        );
    }

    #[test]
    fn a_batch_that_would_reach_a_book_after_a_later_one_locks_them_all_in_order_first() {
        assert_eq!(
            out_of_order(&[request(&[B]), request(&[A, C])]),
            Some(vec![A.to_owned(), B.to_owned(), C.to_owned()])
        );
    }
}
