#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - `generated` (private): progenitor's code for `docs/openapi.json`, written by
//!   `cargo xtask openapi` and never edited; its [`types`] are public.
//! - [`Client`]: the public API over it. It holds the API key, sends an `Idempotency-Key`
//!   on every call that accepts one, turns cursor paging into a [`Stream`], and decodes
//!   every error response into an [`Error::Problem`].

mod error;
#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unreachable_pub,
    unused_imports,
    dead_code,
    reason = "generated code, checked for freshness instead"
)]
mod generated;

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use futures_core::Stream;
use futures_util::{TryStreamExt, stream};
use progenitor_client::ResponseValue;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

pub use crate::error::{Error, FieldError, Problem, ProblemKind};
pub use crate::generated::types;
/// The HTTP client underneath, for [`Client::with_builder`].
pub use reqwest;

/// The header that carries the API key.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// How long a call may take, connection included, unless the builder says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// An API key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, e.g. one read from the environment.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// An `Idempotency-Key`: 1 to 255 printable ASCII characters. Send the same key again to
/// retry a request safely: the API then replays the first answer instead of acting twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A new random key (a UUID), for a request that has not been sent yet.
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// A key chosen by the caller, e.g. derived from its own id for the request; refused
    /// unless it is 1 to 255 printable ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let printable = key.bytes().all(|byte| (0x20..=0x7e).contains(&byte));
        if key.is_empty() || key.len() > 255 || !printable {
            return Err(Error::InvalidRequest(
                "an Idempotency-Key is 1 to 255 printable ASCII characters".to_owned(),
            ));
        }
        Ok(Self(key))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as the generated layer types it for one operation.
    fn typed<T: FromStr>(&self) -> Result<T, Error> {
        self.0
            .parse()
            .map_err(|_| Error::InvalidRequest("the Idempotency-Key was refused".to_owned()))
    }
}

/// The answer to a call that takes an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Idempotent<T> {
    /// The resource the call created or changed.
    pub value: T,
    /// Whether this is the stored answer to an earlier call with the same key, replayed:
    /// the API did nothing this time.
    pub replayed: bool,
}

/// Which books to list; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BookQuery {
    /// Only books by exactly this author (case-insensitive).
    pub author: Option<String>,
    /// Only books whose title or author contains this text (case-insensitive).
    pub q: Option<String>,
    /// Books per page, 1 to 100 (20 when `None`).
    pub limit: Option<NonZeroU32>,
}

impl BookQuery {
    /// Every book.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only books whose title or author contains `text`.
    pub fn matching(text: impl Into<String>) -> Self {
        Self {
            q: Some(text.into()),
            ..Self::default()
        }
    }

    /// Only books by exactly `author`.
    pub fn by_author(author: impl Into<String>) -> Self {
        Self {
            author: Some(author.into()),
            ..Self::default()
        }
    }

    /// The same query with `limit` books per page.
    pub fn with_limit(mut self, limit: NonZeroU32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A client of the Bookstore API, for one API key. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    api: generated::Client,
}

impl Client {
    /// A client of the API at `base_url` (e.g. `http://127.0.0.1:5001`) that calls as
    /// `api_key`, with a 15-second timeout per call.
    pub fn new(base_url: &str, api_key: ApiKey) -> Result<Self, Error> {
        let builder = reqwest::Client::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            .timeout(DEFAULT_TIMEOUT);
        Self::with_builder(base_url, api_key, builder)
    }

    /// A client built from a `reqwest::ClientBuilder` of your own (TLS, proxies,
    /// timeouts); the API key is added to its default headers, marked sensitive.
    pub fn with_builder(
        base_url: &str,
        api_key: ApiKey,
        builder: reqwest::ClientBuilder,
    ) -> Result<Self, Error> {
        let mut key = HeaderValue::from_str(&api_key.0).map_err(|_| {
            Error::InvalidRequest("an API key is printable ASCII without line breaks".to_owned())
        })?;
        key.set_sensitive(true);
        let headers = HeaderMap::from_iter([(API_KEY_HEADER, key)]);
        let http = builder
            .default_headers(headers)
            .build()
            .map_err(Error::Transport)?;
        let base_url = base_url.trim_end_matches('/');
        Ok(Self {
            api: generated::Client::new_with_client(base_url, http),
        })
    }

    // -----------------------------------------------------------------------------------
    // Books

    /// Every book `query` selects, in ISBN order, fetched one page at a time as the stream
    /// is read. Paging by cursor visits every book exactly once, even while books are
    /// added.
    pub fn list_books(
        &self,
        query: BookQuery,
    ) -> impl Stream<Item = Result<types::Book, Error>> + '_ {
        all_items(move |cursor| {
            let query = query.clone();
            async move {
                let page = self.list_books_page(&query, cursor.as_deref()).await?;
                Ok((page.items, page.next_cursor))
            }
        })
    }

    /// One page of books: the first when `cursor` is `None`, else the one after the page
    /// whose `next_cursor` it is.
    pub async fn list_books_page(
        &self,
        query: &BookQuery,
        cursor: Option<&str>,
    ) -> Result<types::BookPage, Error> {
        let answer = self
            .api
            .list_books(
                query.author.as_deref(),
                cursor,
                query.limit,
                query.q.as_deref(),
            )
            .await;
        Ok(answer_of(answer).await?.into_inner())
    }

    /// One book. `isbn` may be an ISBN-13 or an ISBN-10, with hyphens or spaces.
    pub async fn get_book(&self, isbn: &str) -> Result<types::Book, Error> {
        let isbn = parse("isbn", isbn)?;
        Ok(answer_of(self.api.get_book(&isbn).await)
            .await?
            .into_inner())
    }

    /// Adds a book (admin key); answers the book as stored, its ISBN as 13 digits.
    pub async fn create_book(&self, book: &types::NewBookRequest) -> Result<types::Book, Error> {
        Ok(answer_of(self.api.create_book(book).await)
            .await?
            .into_inner())
    }

    /// Changes a book (admin key): the fields set in `patch`, the others kept.
    pub async fn update_book(
        &self,
        isbn: &str,
        patch: &types::BookPatchRequest,
    ) -> Result<types::Book, Error> {
        let isbn = parse("isbn", isbn)?;
        Ok(answer_of(self.api.update_book(&isbn, patch).await)
            .await?
            .into_inner())
    }

    // -----------------------------------------------------------------------------------
    // Orders

    /// Places an order: stock for every line or none, the payment charged, as one unit.
    /// Call again with the same `key` to retry safely.
    pub async fn create_order(
        &self,
        order: &types::PlaceOrderRequest,
        key: &IdempotencyKey,
    ) -> Result<Idempotent<types::Order>, Error> {
        let key = key.typed()?;
        idempotent(self.api.create_order(Some(&key), order).await).await
    }

    /// One order: the caller's own (an admin may read any).
    pub async fn get_order(&self, id: Uuid) -> Result<types::Order, Error> {
        Ok(answer_of(self.api.get_order(&id).await).await?.into_inner())
    }

    /// The caller's orders, newest first, fetched one page at a time as the stream is
    /// read. `limit` is the page size (20 when `None`).
    pub fn list_orders(
        &self,
        limit: Option<NonZeroU32>,
    ) -> impl Stream<Item = Result<types::Order, Error>> + '_ {
        all_items(move |cursor| async move {
            let page = self.list_orders_page(limit, cursor.as_deref()).await?;
            Ok((page.items, page.next_cursor))
        })
    }

    /// One page of the caller's orders (see [`Client::list_books_page`] for `cursor`).
    pub async fn list_orders_page(
        &self,
        limit: Option<NonZeroU32>,
        cursor: Option<&str>,
    ) -> Result<types::OrderPage, Error> {
        Ok(answer_of(self.api.list_orders(cursor, limit).await)
            .await?
            .into_inner())
    }

    /// Cancels an order: the payment refunded, the stock returned, a scheduled delivery
    /// cancelled. Call again with the same `key` to retry safely.
    pub async fn cancel_order(
        &self,
        id: Uuid,
        key: &IdempotencyKey,
    ) -> Result<Idempotent<types::Order>, Error> {
        let key = key.typed()?;
        let no_body = serde_json::Map::new();
        idempotent(self.api.cancel_order(&id, Some(&key), &no_body).await).await
    }

    // -----------------------------------------------------------------------------------
    // Deliveries

    /// Schedules the delivery of an order, on the requested business day or the next one.
    /// Call again with the same `key` to retry safely.
    pub async fn create_delivery(
        &self,
        delivery: &types::ScheduleDeliveryRequest,
        key: &IdempotencyKey,
    ) -> Result<Idempotent<types::Delivery>, Error> {
        let key = key.typed()?;
        idempotent(self.api.create_delivery(Some(&key), delivery).await).await
    }

    /// One delivery, by its id.
    pub async fn get_delivery(&self, id: Uuid) -> Result<types::Delivery, Error> {
        Ok(answer_of(self.api.get_delivery(&id).await)
            .await?
            .into_inner())
    }

    /// The delivery of an order (a [`ProblemKind::NotFound`] if it has none).
    pub async fn get_order_delivery(&self, order_id: Uuid) -> Result<types::Delivery, Error> {
        Ok(answer_of(self.api.get_order_delivery(&order_id).await)
            .await?
            .into_inner())
    }

    // -----------------------------------------------------------------------------------
    // Operations (no API key needed)

    /// Whether the server process runs.
    pub async fn get_liveness(&self) -> Result<types::Health, Error> {
        Ok(answer_of(self.api.get_liveness().await).await?.into_inner())
    }

    /// Whether the server can serve requests (a [`ProblemKind::ServiceUnavailable`] when a
    /// store does not answer).
    pub async fn get_readiness(&self) -> Result<types::Health, Error> {
        Ok(answer_of(self.api.get_readiness().await)
            .await?
            .into_inner())
    }
}

/// A value parsed into the generated layer's type for it, or an [`Error::InvalidRequest`]
/// naming `what`.
fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| {
        Error::InvalidRequest(format!(
            "{what} {value:?} is not in the form the API accepts"
        ))
    })
}

/// The answer of a generated call, its error decoded.
async fn answer_of<T, E: error::ErrorBody>(
    answer: Result<ResponseValue<T>, progenitor_client::Error<E>>,
) -> Result<ResponseValue<T>, Error> {
    match answer {
        Ok(answer) => Ok(answer),
        Err(error) => Err(error::from_generated(error).await),
    }
}

/// The answer of a call that takes an `Idempotency-Key`, with whether it was replayed.
async fn idempotent<T, E: error::ErrorBody>(
    answer: Result<ResponseValue<T>, progenitor_client::Error<E>>,
) -> Result<Idempotent<T>, Error> {
    let answer = answer_of(answer).await?;
    let replayed = error::was_replayed(answer.headers());
    Ok(Idempotent {
        value: answer.into_inner(),
        replayed,
    })
}

/// Where paging stands.
enum Paging {
    /// The first page is still to be fetched.
    First,
    /// The page after this cursor is next.
    After(String),
    /// The last page has been fetched.
    Done,
}

/// Every item of every page, fetching the next page when the items of the previous one
/// have been read. `fetch` gets the cursor (`None` for the first page) and answers the
/// page's items and its `next_cursor`.
fn all_items<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Error>>,
{
    stream::try_unfold((fetch, Paging::First), |(mut fetch, paging)| async move {
        let cursor = match paging {
            Paging::First => None,
            Paging::After(cursor) => Some(cursor),
            Paging::Done => return Ok(None),
        };
        let (items, next_cursor) = fetch(cursor).await?;
        let paging = next_cursor.map_or(Paging::Done, Paging::After);
        Ok(Some((
            stream::iter(items.into_iter().map(Ok)),
            (fetch, paging),
        )))
    })
    .try_flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn idempotency_keys_are_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::new("order-2026-0001").is_ok());
        assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(256),
            "tab\there".to_owned(),
            "é".to_owned(),
        ] {
            assert!(IdempotencyKey::new(bad.clone()).is_err(), "{bad:?}");
        }
        assert_ne!(IdempotencyKey::random(), IdempotencyKey::random());
    }

    #[test]
    fn an_api_key_never_shows_in_debug_output() {
        let key = ApiKey::new("secret123");
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        let client = Client::new("http://127.0.0.1:1", key).unwrap();
        assert!(!format!("{client:?}").contains("secret123"));
    }

    #[tokio::test]
    async fn paging_follows_cursors_until_there_is_none_and_skips_empty_pages() {
        let pages = [
            (vec![1, 2], Some("a")),
            (vec![], Some("b")),
            (vec![3], None),
        ];
        let asked = Arc::new(Mutex::new(Vec::new()));
        let items: Vec<i32> = all_items({
            let asked = Arc::clone(&asked);
            move |cursor: Option<String>| {
                let index = asked.lock().unwrap().len();
                asked.lock().unwrap().push(cursor);
                let (items, next) = pages[index].clone();
                async move { Ok((items, next.map(str::to_owned))) }
            }
        })
        .try_collect()
        .await
        .unwrap();

        assert_eq!(items, [1, 2, 3]);
        assert_eq!(
            *asked.lock().unwrap(),
            [None, Some("a".to_owned()), Some("b".to_owned())]
        );
    }

    #[tokio::test]
    async fn paging_stops_at_the_first_error() {
        let mut calls = 0;
        let results: Vec<Result<i32, Error>> = all_items(move |_cursor| {
            calls += 1;
            let answer = if calls == 1 {
                Ok((vec![1], Some("next".to_owned())))
            } else {
                Err(Error::InvalidRequest("stop".to_owned()))
            };
            async move { answer }
        })
        .collect::<Vec<_>>()
        .await;

        assert_eq!(results.len(), 2);
        assert!(matches!(results[0], Ok(1)));
        assert!(matches!(results[1], Err(Error::InvalidRequest(_))));
    }
}
