//! The JSON bodies of the API, and their conversion to and from domain types.
//!
//! Domain crates know nothing of JSON field names or the OpenAPI schema: these types are
//! the wire contract described in `docs/openapi.json`. Requests arrive as plain JSON values (strings,
//! integers) and are parsed into domain types here, collecting every field error into one
//! 422; responses are built from domain types.

pub mod tracking;

use std::collections::{BTreeMap, HashMap};

use apistos::{ApiComponent, JsonSchema};
use bookstore_delivery::{Address, AddressInput, Delivery, DeliveryId, schedule_date};
use bookstore_inventory::{Author, Book, BookPatch, StockLine, Title};
use bookstore_sales::{Order, OrderStatus, PaymentStatus, PaymentToken};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::SerializesAs;
use crate::workflow::{ValidDeliveryRequest, ValidOrderRequest};

/// Renders a timestamp as RFC 3339 in UTC with millisecond precision.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------
// Strict text formats
//
// Each value the API reads from text has one spelling. The general-purpose parsers are
// more forgiving than the contract (chrono reads `2030-1-1` and ` +2030-01-01` as a date,
// uuid reads braced, `urn:uuid:` and unhyphenated forms, integer parsing takes a `+`), so
// these check the exact shape first and then let those parsers compute the value.

/// A calendar date written exactly `YYYY-MM-DD`: four digits, two, two, with hyphens.
pub fn parse_date(text: &str) -> Result<NaiveDate, &'static str> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err("must be a date written exactly YYYY-MM-DD, e.g. 2030-01-31");
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "is not a date of the calendar")
}

/// A UUID written as 36 characters, hexadecimal digits grouped 8-4-4-4-12 by hyphens
/// (either case, as RFC 9562 asks of readers); no braces, no `urn:uuid:`, no bare 32 digits.
pub fn parse_uuid(text: &str) -> Result<Uuid, &'static str> {
    const MESSAGE: &str =
        "must be a UUID: 36 characters, hexadecimal digits grouped 8-4-4-4-12 by hyphens";
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        });
    if !shaped {
        return Err(MESSAGE);
    }
    Uuid::try_parse(text).map_err(|_| MESSAGE)
}

/// Deserializes a path segment with [`parse_uuid`].
fn deserialize_uuid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    parse_uuid(&text).map_err(|message| serde::de::Error::custom(format!("the id {message}")))
}

/// Deserializes the `limit` query parameter: decimal digits only (no sign, no leading zero,
/// no spaces). The range is checked by [`page_limit`].
fn deserialize_limit<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    let plain = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    if !plain {
        return Err(serde::de::Error::custom(
            "limit must be an integer from 1 to 100, written in plain digits",
        ));
    }
    // Digits only: the one way to fail is a number too large for u64, which is out of range.
    Ok(Some(text.parse().unwrap_or(u64::MAX)))
}

// ---------------------------------------------------------------------------------------
// Books

/// A book in the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Book")]
pub struct BookBody {
    /// ISBN-13, bare 13 digits.
    #[schemars(regex(pattern = r"^97[89][0-9]{10}$"))]
    pub isbn: String,
    /// Title.
    pub title: String,
    /// Author(s).
    pub author: String,
    /// Price in minor units of `currency`.
    #[schemars(range(min = 0))]
    pub price_cents: i64,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Copies in stock.
    pub stock: u32,
}

/// The schema of a status enum as a string with an `enum` list. schemars describes an enum
/// whose variants have doc comments as a `oneOf` of one-value schemas, which generators turn
/// into untagged unions or plain strings; the `enum` list becomes an enum type everywhere.
pub fn string_enum(schema: &mut apistos::schemars::Schema) {
    let Some(serde_json::Value::Array(variants)) = schema.remove("oneOf") else {
        return;
    };
    let values: Vec<serde_json::Value> = variants
        .iter()
        .filter_map(|variant| variant.get("const").cloned())
        .collect();
    schema.insert("type".to_owned(), "string".into());
    schema.insert("enum".to_owned(), values.into());
}

/// Page bodies always carry `next_cursor` (a cursor, or `null` on the last page), so their
/// schemas list it as required; schemars leaves an `Option` out of `required` on its own.
fn next_cursor_is_always_present(schema: &mut apistos::schemars::Schema) {
    let required = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let serde_json::Value::Array(names) = required
        && !names.iter().any(|name| name == "next_cursor")
    {
        names.push("next_cursor".into());
    }
}

impl From<&Book> for BookBody {
    fn from(book: &Book) -> Self {
        Self {
            isbn: book.isbn.to_string(),
            title: book.title.as_str().to_owned(),
            author: book.author.as_str().to_owned(),
            price_cents: book.price.cents(),
            currency: book.price.currency().to_string(),
            stock: book.stock,
        }
    }
}

/// One page of books.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "BookPage", transform = next_cursor_is_always_present)]
pub struct BookPageBody {
    /// Books on this page, ordered by ISBN.
    pub items: Vec<BookBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A [`Book`] written as a [`BookBody`] straight from the domain type, without copying its
/// strings into one first: the book routes are the hottest, and a page has twenty books.
/// Serializes byte for byte as `BookBody::from(book)` does (a test holds the two together).
#[derive(Debug, Clone, Copy)]
pub struct BookView<'a>(pub &'a Book);

impl Serialize for BookView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let book = self.0;
        let mut body = serializer.serialize_struct("BookBody", 6)?;
        body.serialize_field("isbn", book.isbn.as_str())?;
        body.serialize_field("title", book.title.as_str())?;
        body.serialize_field("author", book.author.as_str())?;
        body.serialize_field("price_cents", &book.price.cents())?;
        body.serialize_field("currency", book.price.currency().as_str())?;
        body.serialize_field("stock", &book.stock)?;
        body.end()
    }
}

impl SerializesAs<BookBody> for BookView<'_> {}

/// A page of books written as a [`BookPageBody`] straight from the domain books (see
/// [`BookView`]).
#[derive(Debug, Clone)]
pub struct BookPageView<'a> {
    /// Books on this page, ordered by ISBN.
    pub books: &'a [Book],
    /// The cursor of the next page.
    pub next_cursor: Option<String>,
}

impl Serialize for BookPageView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Items<'a>(&'a [Book]);
        impl Serialize for Items<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(BookView))
            }
        }
        let mut page = serializer.serialize_struct("BookPageBody", 2)?;
        page.serialize_field("items", &Items(self.books))?;
        page.serialize_field("next_cursor", &self.next_cursor)?;
        page.end()
    }
}

impl SerializesAs<BookPageBody> for BookPageView<'_> {
    fn json_size_hint(&self) -> usize {
        // A generated book is about 150 bytes of JSON; real titles run longer.
        64 + 192 * self.books.len()
    }
}

/// Query parameters of `GET /api/books`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListBooksQuery {
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
    #[serde(
        default,
        deserialize_with = "deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32", "default" = 20))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page, passed back as it came (an opaque value).
    pub cursor: Option<String>,
    /// Only books by exactly this author (case-insensitive).
    pub author: Option<String>,
    /// Only books whose title or author contains this text (case-insensitive).
    pub q: Option<String>,
}

/// Query parameters of `GET /api/orders`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListOrdersQuery {
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
    #[serde(
        default,
        deserialize_with = "deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32", "default" = 20))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page, passed back as it came (an opaque value).
    pub cursor: Option<String>,
}

/// The default page size.
pub const DEFAULT_PAGE_LIMIT: u32 = 20;

/// Checks a `limit` query parameter (400 when outside 1..=100).
pub fn page_limit(limit: Option<u64>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(value @ 1..=100) => Ok(value as u32),
        Some(value) => Err(ApiError::malformed(format!(
            "limit must be between 1 and 100, got {value}"
        ))),
    }
}

/// `POST /api/books`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct NewBookRequest {
    /// ISBN-13 or ISBN-10; hyphens and spaces allowed.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
    /// Title (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub title: String,
    /// Author(s) (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub author: String,
    /// Price in minor units, not negative.
    #[schemars(range(min = 0))]
    pub price_cents: i64,
    /// Copies in stock, not negative.
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub stock: i64,
    /// ISO 4217 currency code; `USD` when omitted.
    #[schemars(regex(pattern = r"^[A-Za-z]{3}$"))]
    pub currency: Option<String>,
}

fn parse_stock(stock: i64, errors: &mut Vec<FieldError>) -> Option<u32> {
    match u32::try_from(stock) {
        Ok(stock) => Some(stock),
        Err(_) if stock < 0 => {
            errors.push(FieldError::new("stock", "must not be negative"));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                "stock",
                format!("must be at most {}", u32::MAX),
            ));
            None
        }
    }
}

fn collect<T, E: std::fmt::Display>(
    field: &str,
    result: Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    result
        .map_err(|error| errors.push(FieldError::new(field, error)))
        .ok()
}

/// Fails with one 422 listing every field error, if there are any.
fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

impl NewBookRequest {
    /// The book this request describes, or a 422 listing every invalid field.
    pub fn into_book(self) -> Result<Book, ApiError> {
        let mut errors = Vec::new();
        let isbn = collect("isbn", Isbn::parse(&self.isbn), &mut errors);
        let title = collect("title", Title::parse(self.title), &mut errors);
        let author = collect("author", Author::parse(self.author), &mut errors);
        let currency = match self.currency.as_deref() {
            None => Some(Currency::USD),
            Some(code) => collect("currency", Currency::parse(code), &mut errors),
        };
        let price = currency.and_then(|c| {
            collect(
                "price_cents",
                Money::from_cents(self.price_cents, c),
                &mut errors,
            )
        });
        let stock = parse_stock(self.stock, &mut errors);
        finish(errors)?;
        match (isbn, title, author, price, stock) {
            (Some(isbn), Some(title), Some(author), Some(price), Some(stock)) => Ok(Book {
                isbn,
                title,
                author,
                price,
                stock,
            }),
            _ => Err(ApiError::internal("a book field failed without an error")),
        }
    }
}

/// `PATCH /api/books/{isbn}`: any of the fields; the others stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "apistos", extend("minProperties" = 1))]
pub struct BookPatchRequest {
    /// New title (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub title: Option<String>,
    /// New author(s) (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub author: Option<String>,
    /// New price in minor units of the book's currency, not negative.
    #[schemars(range(min = 0))]
    pub price_cents: Option<i64>,
    /// New number of copies in stock, not negative.
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub stock: Option<i64>,
}

impl BookPatchRequest {
    /// The change this request describes (`currency` is the book's), or a 422.
    pub fn into_patch(self, currency: Currency) -> Result<BookPatch, ApiError> {
        let mut errors = Vec::new();
        if self.title.is_none()
            && self.author.is_none()
            && self.price_cents.is_none()
            && self.stock.is_none()
        {
            errors.push(FieldError::new(
                "body",
                "give at least one of title, author, price_cents, stock",
            ));
        }
        let patch = BookPatch {
            title: self
                .title
                .and_then(|t| collect("title", Title::parse(t), &mut errors)),
            author: self
                .author
                .and_then(|a| collect("author", Author::parse(a), &mut errors)),
            price: self.price_cents.and_then(|cents| {
                collect(
                    "price_cents",
                    Money::from_cents(cents, currency),
                    &mut errors,
                )
            }),
            stock: self.stock.and_then(|stock| parse_stock(stock, &mut errors)),
        };
        finish(errors)?;
        Ok(patch)
    }
}

/// A path holding an ISBN (any accepted spelling).
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct IsbnPath {
    /// ISBN-13 or ISBN-10; hyphens and spaces allowed.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
}

impl IsbnPath {
    /// The ISBN, or a 400 for a malformed one.
    pub fn parse(&self) -> Result<Isbn, ApiError> {
        Isbn::parse(&self.isbn)
            .map_err(|error| ApiError::malformed(format!("malformed ISBN in the path: {error}")))
    }
}

// ---------------------------------------------------------------------------------------
// Orders

/// One line of `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct OrderItemRequest {
    /// ISBN-13 or ISBN-10 of a book in the catalogue.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
    /// Copies, 1 to 100 (after merging lines for the same ISBN).
    #[schemars(range(min = 1, max = 100), extend("format" = "int32"))]
    pub quantity: i64,
}

/// How an order is paid: a token from the card processor, never card details.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct PaymentRequest {
    /// A payment token, e.g. `tok_visa`, `tok_mastercard` (approved) or `tok_chargeDeclined`.
    #[schemars(length(min = 1, max = 255))]
    pub token: String,
    /// Anything else a client sent in `payment` (rejected: only a token is accepted).
    #[serde(flatten)]
    #[schemars(skip)]
    pub other_fields: BTreeMap<String, serde_json::Value>,
}

/// `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct PlaceOrderRequest {
    /// The books to buy; lines for the same ISBN are merged.
    #[schemars(length(min = 1))]
    pub items: Vec<OrderItemRequest>,
    /// The payment.
    pub payment: PaymentRequest,
}

impl PlaceOrderRequest {
    /// Validates every line and the payment, merging lines for one ISBN; a 422 lists every
    /// problem found.
    pub fn validate(self) -> Result<ValidOrderRequest, ApiError> {
        let mut errors = Vec::new();
        if self.items.is_empty() {
            errors.push(FieldError::new("items", "must contain at least one line"));
        }
        let mut merged: Vec<(Isbn, u64)> = Vec::new();
        let mut position_of: HashMap<Isbn, usize> = HashMap::new();
        for (index, item) in self.items.iter().enumerate() {
            let isbn = collect(
                &format!("items[{index}].isbn"),
                Isbn::parse(&item.isbn),
                &mut errors,
            );
            let quantity = match u64::try_from(item.quantity) {
                Ok(q) => collect(
                    &format!("items[{index}].quantity"),
                    Quantity::new(q),
                    &mut errors,
                ),
                Err(_) => {
                    errors.push(FieldError::new(
                        format!("items[{index}].quantity"),
                        "must be between 1 and 100",
                    ));
                    None
                }
            };
            if let (Some(isbn), Some(quantity)) = (isbn, quantity) {
                let position = *position_of.entry(isbn).or_insert_with(|| {
                    merged.push((isbn, 0));
                    merged.len() - 1
                });
                merged[position].1 += u64::from(quantity.get());
            }
        }
        let lines: Vec<StockLine> = merged
            .into_iter()
            .filter_map(|(isbn, total)| match Quantity::new(total) {
                Ok(quantity) => Some(StockLine { isbn, quantity }),
                Err(error) => {
                    errors.push(FieldError::new(
                        "items",
                        format!("isbn {isbn}: {error} (lines for one ISBN are added up)"),
                    ));
                    None
                }
            })
            .collect();
        for field in self.payment.other_fields.keys() {
            errors.push(FieldError::new(
                format!("payment.{field}"),
                "only a payment token is accepted; card details are never accepted",
            ));
        }
        let token = collect(
            "payment.token",
            PaymentToken::parse(self.payment.token),
            &mut errors,
        );
        finish(errors)?;
        match token {
            Some(token) => Ok(ValidOrderRequest { lines, token }),
            None => Err(ApiError::internal(
                "a payment token failed without an error",
            )),
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "OrderLine")]
pub struct OrderLineBody {
    /// ISBN-13, bare 13 digits.
    #[schemars(regex(pattern = r"^97[89][0-9]{10}$"))]
    pub isbn: String,
    /// The title when the order was placed.
    pub title: String,
    /// Copies, 1 to 100.
    #[schemars(range(min = 1, max = 100))]
    pub quantity: u32,
    /// The price of one copy when the order was placed, in minor units of the order's
    /// `currency`.
    #[schemars(range(min = 0))]
    pub unit_price_cents: i64,
    /// `quantity × unit_price_cents`.
    #[schemars(range(min = 0))]
    pub line_total_cents: i64,
}

/// The payment of an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Payment")]
pub struct PaymentBody {
    /// The processor's transaction id.
    pub transaction_id: Uuid,
    /// `captured`, or `refunded` once the order is cancelled.
    pub status: PaymentStatusBody,
}

/// The state of an order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "apistos", rename = "PaymentStatus", transform = string_enum)]
pub enum PaymentStatusBody {
    /// The money was taken.
    Captured,
    /// The money was given back in full.
    Refunded,
}

impl From<PaymentStatus> for PaymentStatusBody {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Captured => Self::Captured,
            PaymentStatus::Refunded => Self::Refunded,
        }
    }
}

/// The state of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "apistos", rename = "OrderStatus", transform = string_enum)]
pub enum OrderStatusBody {
    /// Paid for and standing; its payment is captured.
    Confirmed,
    /// Called off; its payment is refunded.
    Cancelled,
}

impl From<OrderStatus> for OrderStatusBody {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Confirmed => Self::Confirmed,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Order")]
pub struct OrderBody {
    /// Order id.
    pub id: Uuid,
    /// `confirmed`, or `cancelled` once cancelled.
    pub status: OrderStatusBody,
    /// One line per distinct ISBN.
    pub items: Vec<OrderLineBody>,
    /// Sum of the line totals, in minor units of `currency`.
    #[schemars(range(min = 0))]
    pub total_cents: i64,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// The payment.
    pub payment: PaymentBody,
    /// When the order was placed (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
}

impl From<&Order> for OrderBody {
    fn from(order: &Order) -> Self {
        let items = order
            .lines()
            .iter()
            .map(|line| OrderLineBody {
                isbn: line.isbn.to_string(),
                title: line.title.clone(),
                quantity: line.quantity.get(),
                unit_price_cents: line.unit_price.cents(),
                line_total_cents: line.line_total().map(|m| m.cents()).unwrap_or_default(),
            })
            .collect();
        Self {
            id: order.id().as_uuid(),
            status: OrderStatusBody::from(order.status()),
            items,
            total_cents: order.total().cents(),
            currency: order.total().currency().to_string(),
            payment: PaymentBody {
                transaction_id: order.payment().transaction_id.as_uuid(),
                status: PaymentStatusBody::from(order.payment().status),
            },
            created_at: timestamp(order.created_at()),
        }
    }
}

/// One page of orders.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "OrderPage", transform = next_cursor_is_always_present)]
pub struct OrderPageBody {
    /// The caller's orders, newest first.
    pub items: Vec<OrderBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A path holding an order id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct OrderPath {
    /// Order id.
    #[serde(deserialize_with = "deserialize_uuid")]
    pub id: Uuid,
}

impl OrderPath {
    /// The order id.
    pub fn order_id(&self) -> OrderId {
        OrderId::from_uuid(self.id)
    }
}

// ---------------------------------------------------------------------------------------
// Deliveries

/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Address")]
pub struct AddressBody {
    /// Who receives the parcel.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub recipient: String,
    /// Street and number.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub line1: String,
    /// Optional second line.
    #[schemars(length(max = 200))]
    pub line2: Option<String>,
    /// City.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub city: String,
    /// Postal code: letters, digits, spaces and hyphens.
    #[schemars(
        length(min = 1, max = 20),
        regex(pattern = r"^[A-Za-z0-9 -]*[A-Za-z0-9][A-Za-z0-9 -]*$")
    )]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `GB`.
    #[schemars(regex(pattern = r"^[A-Za-z]{2}$"))]
    pub country: String,
}

impl From<&Address> for AddressBody {
    fn from(address: &Address) -> Self {
        Self {
            recipient: address.recipient().to_owned(),
            line1: address.line1().to_owned(),
            line2: address.line2().map(str::to_owned),
            city: address.city().to_owned(),
            postal_code: address.postal_code().to_owned(),
            country: address.country().as_str().to_owned(),
        }
    }
}

/// `POST /api/delivery`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ScheduleDeliveryRequest {
    /// The order to deliver.
    #[schemars(with = "Uuid")]
    pub order_id: String,
    /// Where to deliver it.
    pub address: AddressBody,
    /// The wished-for date (UTC, `YYYY-MM-DD`); the next business day from tomorrow on when
    /// omitted, today, or a weekend.
    #[schemars(with = "Option<NaiveDate>")]
    pub requested_date: Option<String>,
}

impl ScheduleDeliveryRequest {
    /// Validates the order id, the address and the date; a 422 lists every problem.
    pub fn validate(self) -> Result<ValidDeliveryRequest, ApiError> {
        let mut errors = Vec::new();
        let order_id =
            collect("order_id", parse_uuid(&self.order_id), &mut errors).map(OrderId::from_uuid);
        let requested_date = match self.requested_date.as_deref() {
            None => None,
            Some(text) => collect("requested_date", parse_date(text), &mut errors),
        };
        // The scheduling rule is checked again when the delivery is created; checking it
        // here too lets one 422 report a past date together with any address problems.
        if let Err(error) = schedule_date(requested_date, Utc::now().date_naive()) {
            errors.push(FieldError::new("requested_date", error));
        }
        let input = AddressInput {
            recipient: self.address.recipient,
            line1: self.address.line1,
            line2: self.address.line2,
            city: self.address.city,
            postal_code: self.address.postal_code,
            country: self.address.country,
        };
        let address = match Address::parse(input) {
            Ok(address) => Some(address),
            Err(field_errors) => {
                errors.extend(
                    field_errors
                        .into_iter()
                        .map(|e| FieldError::new(format!("address.{}", e.field), e.message)),
                );
                None
            }
        };
        finish(errors)?;
        match (order_id, address) {
            (Some(order_id), Some(address)) => Ok(ValidDeliveryRequest {
                order_id,
                address,
                requested_date,
            }),
            _ => Err(ApiError::internal(
                "a delivery field failed without an error",
            )),
        }
    }
}

/// A delivery, with its tracking history.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Delivery")]
pub struct DeliveryBody {
    /// Delivery id.
    pub id: Uuid,
    /// The order delivered.
    pub order_id: Uuid,
    /// Where it is in its life cycle.
    pub status: tracking::DeliveryStatusBody,
    /// Where to.
    pub address: AddressBody,
    /// The business day it goes out.
    #[schemars(with = "NaiveDate")]
    pub scheduled_date: String,
    /// The day promised to the customer (the scheduled day).
    #[schemars(with = "NaiveDate")]
    pub promised_date: String,
    /// Whether it missed its promised date: delivered after the end of that day (UTC), or
    /// not delivered (nor cancelled) when that day has ended.
    pub late: bool,
    /// The shop's tracking number, `BK` and ten upper-case letters or digits.
    #[schemars(regex(pattern = r"^BK[0-9A-Z]{10}$"))]
    pub tracking_number: String,
    /// The carrier, once an update named it, or null.
    pub carrier: Option<String>,
    /// The carrier's own tracking number, once an update named it, or null.
    pub carrier_tracking_number: Option<String>,
    /// Every carrier update, in `occurred_at` order.
    pub history: Vec<tracking::TrackingEntryBody>,
    /// When it was scheduled (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
}

impl From<&Delivery> for DeliveryBody {
    /// The delivery as of now (`late` is computed at the moment of the response).
    fn from(delivery: &Delivery) -> Self {
        let date = delivery.scheduled_date().format("%Y-%m-%d").to_string();
        let tracked = delivery.tracking();
        Self {
            id: delivery.id().as_uuid(),
            order_id: delivery.order_id().as_uuid(),
            status: delivery.status().into(),
            address: AddressBody::from(delivery.address()),
            scheduled_date: date.clone(),
            promised_date: date,
            late: delivery.is_late(Utc::now()),
            tracking_number: delivery.tracking_number().as_str().to_owned(),
            carrier: tracked.carrier.as_ref().map(|v| v.as_str().to_owned()),
            carrier_tracking_number: tracked
                .carrier_tracking_number
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            history: tracked
                .history
                .iter()
                .map(tracking::TrackingEntryBody::from)
                .collect(),
            created_at: timestamp(delivery.created_at()),
        }
    }
}

/// A path holding a delivery id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct DeliveryPath {
    /// Delivery id.
    #[serde(deserialize_with = "deserialize_uuid")]
    pub id: Uuid,
}

// ---------------------------------------------------------------------------------------
// Cursors

/// Opaque page cursors: a tag letter and a position, hex-encoded. A cursor holds a
/// position (the last item seen), never an offset.
pub mod cursor {
    use super::*;

    fn encode(tag: u8, position: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut cursor = String::with_capacity(2 * (1 + position.len()));
        for byte in std::iter::once(tag).chain(position.bytes()) {
            cursor.push(char::from(HEX[usize::from(byte >> 4)]));
            cursor.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        cursor
    }

    fn decode(tag: u8, cursor: &str) -> Result<String, ApiError> {
        let invalid = || ApiError::malformed("the cursor is not one this server issued");
        // Only what `encode` writes: lowercase hexadecimal digits, in pairs.
        let lowercase_hex = |byte: u8| matches!(byte, b'0'..=b'9' | b'a'..=b'f');
        if !cursor.len().is_multiple_of(2)
            || cursor.len() > 200
            || !cursor.bytes().all(lowercase_hex)
        {
            return Err(invalid());
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| {
                cursor
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        match bytes.split_first() {
            Some((&first, rest)) if first == tag => {
                String::from_utf8(rest.to_vec()).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        }
    }

    /// The cursor after book `isbn`.
    pub fn for_book(isbn: &Isbn) -> String {
        encode(b'b', isbn.as_str())
    }

    /// The book position a cursor holds (400 if it is not a book cursor as [`for_book`]
    /// writes it).
    pub fn book_position(cursor: &str) -> Result<Isbn, ApiError> {
        let text = decode(b'b', cursor)?;
        Isbn::parse(&text)
            .ok()
            .filter(|isbn| isbn.as_str() == text)
            .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
    }

    /// The cursor after order `id`.
    pub fn for_order(id: &OrderId) -> String {
        encode(b'o', &id.to_string())
    }

    /// The order position a cursor holds (400 if it is not an order cursor as [`for_order`]
    /// writes it).
    pub fn order_position(cursor: &str) -> Result<OrderId, ApiError> {
        let text = decode(b'o', cursor)?;
        text.parse::<OrderId>()
            .ok()
            .filter(|id| id.to_string() == text)
            .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
    }

    /// The cursor after delivery `id`.
    pub fn for_delivery(id: &DeliveryId) -> String {
        encode(b'd', &id.to_string())
    }

    /// The delivery position a cursor holds (400 if it is not a delivery cursor as
    /// [`for_delivery`] writes it).
    pub fn delivery_position(cursor: &str) -> Result<DeliveryId, ApiError> {
        let text = decode(b'd', cursor)?;
        text.parse::<DeliveryId>()
            .ok()
            .filter(|id| id.to_string() == text)
            .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(isbn: &str, title: &str, author: &str, cents: i64, currency: &str, stock: u32) -> Book {
        Book {
            isbn: Isbn::parse(isbn).unwrap(),
            title: Title::parse(title).unwrap(),
            author: Author::parse(author).unwrap(),
            price: Money::from_cents(cents, Currency::parse(currency).unwrap()).unwrap(),
            stock,
        }
    }

    #[test]
    fn the_book_views_write_the_same_bytes_as_the_wire_bodies() {
        let books = [
            book("9780306406157", "Plain", "Author", 3999, "USD", 7),
            book(
                "9781593278281",
                r#"Quotes "and" \ back\slashes / é 漢字 🦀"#,
                "Ünïcode",
                0,
                "EUR",
                0,
            ),
            book(
                "9780134685991",
                r"A \t that is not a tab",
                "A, B and C",
                i64::MAX,
                "JPY",
                u32::MAX,
            ),
        ];
        for book in &books {
            assert_eq!(
                serde_json::to_string(&BookView(book)).unwrap(),
                serde_json::to_string(&BookBody::from(book)).unwrap()
            );
        }
        for next_cursor in [None, Some(cursor::for_book(&books[2].isbn))] {
            for count in 0..=books.len() {
                let view = BookPageView {
                    books: &books[..count],
                    next_cursor: next_cursor.clone(),
                };
                let body = BookPageBody {
                    items: books[..count].iter().map(BookBody::from).collect(),
                    next_cursor: next_cursor.clone(),
                };
                assert_eq!(
                    serde_json::to_string(&view).unwrap(),
                    serde_json::to_string(&body).unwrap()
                );
            }
        }
    }

    fn order_request(items: serde_json::Value, payment: serde_json::Value) -> PlaceOrderRequest {
        serde_json::from_value(serde_json::json!({ "items": items, "payment": payment })).unwrap()
    }

    fn field_errors(error: ApiError) -> Vec<String> {
        error
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn lines_for_one_isbn_in_different_spellings_are_merged() {
        let request = order_request(
            serde_json::json!([
                { "isbn": "9780134685991", "quantity": 2 },
                { "isbn": "0-13-468599-7", "quantity": 3 },
                { "isbn": "9781593278281", "quantity": 1 },
            ]),
            serde_json::json!({ "token": "tok_visa" }),
        );
        let valid = request.validate().unwrap();
        let lines: Vec<(String, u32)> = valid
            .lines
            .iter()
            .map(|l| (l.isbn.to_string(), l.quantity.get()))
            .collect();
        assert_eq!(
            lines,
            [
                ("9780134685991".to_owned(), 5),
                ("9781593278281".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn invalid_order_requests_report_every_bad_field() {
        for (items, payment, expected) in [
            (
                serde_json::json!([]),
                serde_json::json!({ "token": "tok_visa" }),
                vec!["items"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685992", "quantity": 0 }]),
                serde_json::json!({ "token": "" }),
                vec!["items[0].isbn", "items[0].quantity", "payment.token"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": 60 }, { "isbn": "0134685997", "quantity": 41 }]),
                serde_json::json!({ "token": "tok_visa" }),
                vec!["items"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": -1 }]),
                serde_json::json!({ "token": "tok_visa", "card_number": "4242424242424242" }),
                vec!["items[0].quantity", "payment.card_number"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": 1 }]),
                serde_json::json!({ "token": "4242 4242 4242 4242" }),
                vec!["payment.token"],
            ),
        ] {
            let error = order_request(items.clone(), payment)
                .validate()
                .unwrap_err();
            assert_eq!(error.kind().status().as_u16(), 422);
            assert_eq!(field_errors(error), expected, "items {items}");
        }
    }

    #[test]
    fn new_book_requests_list_every_invalid_field() {
        let request: NewBookRequest = serde_json::from_value(serde_json::json!({
            "isbn": "123", "title": "  ", "author": "A", "price_cents": -1, "stock": -5
        }))
        .unwrap();
        assert_eq!(
            field_errors(request.into_book().unwrap_err()),
            ["isbn", "title", "price_cents", "stock"]
        );
    }

    #[test]
    fn page_limits_outside_one_to_one_hundred_are_rejected() {
        assert_eq!(page_limit(None).unwrap(), 20);
        assert_eq!(page_limit(Some(100)).unwrap(), 100);
        for bad in [0, 101, u64::MAX] {
            assert_eq!(
                page_limit(Some(bad)).unwrap_err().kind().status().as_u16(),
                400
            );
        }
    }

    #[test]
    fn dates_are_read_only_when_written_exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2030-01-31"),
            Ok(NaiveDate::from_ymd_opt(2030, 1, 31).unwrap())
        );
        assert_eq!(
            parse_date("2028-02-29"),
            Ok(NaiveDate::from_ymd_opt(2028, 2, 29).unwrap())
        );
        for bad in [
            "2030-1-1",
            "2030-01-1",
            "2030-1-01",
            " 2030-01-01",
            "2030-01-01 ",
            "+2030-01-01",
            "02030-01-01",
            "2030/01/01",
            "20300101",
            "2030-01-01T00:00:00Z",
            "２０３０-01-01",
            "",
        ] {
            assert!(
                parse_date(bad).unwrap_err().contains("YYYY-MM-DD"),
                "{bad:?}"
            );
        }
        for impossible in ["2030-02-29", "2030-13-01", "2030-00-10", "2030-04-31"] {
            assert_eq!(
                parse_date(impossible),
                Err("is not a date of the calendar"),
                "{impossible:?}"
            );
        }
    }

    #[test]
    fn uuids_are_read_only_in_their_hyphenated_form() {
        let id = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        assert_eq!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"), Ok(id));
        assert_eq!(parse_uuid("67E55044-10B1-426F-9247-BB680E5FE0C8"), Ok(id));
        for bad in [
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c8",
            " 67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e55044-10b1-426f-9247_bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
            "",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_read_only_as_plain_digits() {
        let limit = |query: &str| {
            actix_web::web::Query::<ListOrdersQuery>::from_query(query)
                .map(|query| query.into_inner().limit)
        };
        assert_eq!(limit("").unwrap(), None);
        assert_eq!(limit("limit=1").unwrap(), Some(1));
        assert_eq!(limit("limit=100").unwrap(), Some(100));
        // Out of range, but plainly written: `page_limit` answers with the range.
        assert_eq!(limit("limit=0").unwrap(), Some(0));
        assert_eq!(
            limit("limit=99999999999999999999999").unwrap(),
            Some(u64::MAX)
        );
        for bad in [
            "limit=%2B20",
            "limit=020",
            "limit=+20",
            "limit=%2020",
            "limit=20%20",
            "limit=-1",
            "limit=1e2",
            "limit=20.0",
            "limit=",
            "limit=20&limit=30",
        ] {
            assert!(limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_in_json_bodies_must_be_json_integers() {
        let order = |quantity: &str| {
            serde_json::from_str::<PlaceOrderRequest>(&format!(
                r#"{{"items": [{{"isbn": "9780134685991", "quantity": {quantity}}}], "payment": {{"token": "tok_visa"}}}}"#
            ))
        };
        assert_eq!(order("2").unwrap().items[0].quantity, 2);
        for bad in ["2.0", "2e0", "\"2\"", "true", "null", "[2]", "0x2"] {
            assert!(order(bad).is_err(), "{bad}");
        }
    }

    fn hex(text: &str) -> String {
        text.bytes().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn cursors_are_read_only_as_this_server_writes_them() {
        let isbn = Isbn::parse("9780134685991").unwrap();
        let issued = cursor::for_book(&isbn);
        assert_eq!(issued, hex("b9780134685991"));
        for other_spelling in [
            hex("b978-0-13-468599-1"),
            hex("b0134685997"),
            hex("b 9780134685991"),
        ] {
            assert_ne!(other_spelling, issued);
            assert!(
                cursor::book_position(&other_spelling).is_err(),
                "{other_spelling:?}"
            );
        }
        let order = OrderId::generate();
        let issued = cursor::for_order(&order);
        assert_eq!(cursor::order_position(&issued).unwrap(), order);
        let text = order.to_string();
        assert_ne!(issued.to_uppercase(), issued, "a UUID's hex holds letters");
        for other_spelling in [
            issued.to_uppercase(),
            hex(&format!("o{}", text.to_uppercase())),
            hex(&format!("o{{{text}}}")),
            hex(&format!("o{}", text.replace('-', ""))),
        ] {
            assert!(
                cursor::order_position(&other_spelling).is_err(),
                "{other_spelling:?}"
            );
        }
        let delivery = DeliveryId::generate();
        let issued = cursor::for_delivery(&delivery);
        assert_eq!(cursor::delivery_position(&issued).unwrap(), delivery);
        assert!(cursor::delivery_position(&issued.to_uppercase()).is_err());
        let text = delivery.to_string();
        assert!(cursor::delivery_position(&hex(&format!("d{}", text.replace('-', "")))).is_err());
    }

    #[test]
    fn cursors_round_trip_and_foreign_cursors_are_rejected() {
        let isbn = Isbn::parse("9780134685991").unwrap();
        // Clients keep cursors across deploys: the encoding is fixed (hex of `b` + ISBN).
        assert_eq!(cursor::for_book(&isbn), "6239373830313334363835393931");
        assert_eq!(
            cursor::book_position(&cursor::for_book(&isbn)).unwrap(),
            isbn
        );
        let order = OrderId::generate();
        assert_eq!(
            cursor::order_position(&cursor::for_order(&order)).unwrap(),
            order
        );
        for bad in [
            "",
            "zz",
            "6",
            &cursor::for_order(&order),
            "62393738",
            "ffff",
        ] {
            assert!(cursor::book_position(bad).is_err(), "{bad:?}");
        }
        assert!(cursor::order_position(&cursor::for_book(&isbn)).is_err());
    }
}
