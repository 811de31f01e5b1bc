//! The one error type of the HTTP API and its RFC 9457 problem+json rendering.
//!
//! Every error any handler, extractor or middleware produces becomes an [`ApiError`], and
//! every [`ApiError`] is rendered by [`ApiError::error_response`] as `application/problem+json`.
//! Domain errors are mapped to problems in one place, `crate::http::domain_errors`.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use apistos::paths::{MediaType, Response};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApiErrorComponent};
use apistos::{ApistosSchema, OpenApiVersion, VersionSpecificSchema};
use serde::Serialize;

use crate::openapi::headers;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem with one field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, apistos::JsonSchema)]
#[schemars(crate = "apistos", inline)]
pub struct FieldError {
    /// The JSON path of the field, e.g. `items[0].quantity` or `address.country`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// An RFC 9457 problem details body, as sent on every error response.
#[derive(Debug, Clone, Serialize, apistos::JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/out-of-stock`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code, the same as the response's.
    #[schemars(range(min = 400, max = 599))]
    pub status: u16,
    /// What went wrong this time, for a human.
    pub detail: String,
    /// The id of the request (also in the `X-Request-Id` header), for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level validation problems (422 and some 400 responses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The book a stock conflict or unknown-book problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isbn: Option<String>,
    /// For a stock conflict: the copies asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<u32>,
    /// For a stock conflict: the copies in stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
}

/// The kinds of problem this API reports. Each has one status, one `type` and one title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the request itself is malformed.
    MalformedRequest,
    /// 401: no key, or an unknown key.
    Unauthenticated,
    /// 402: the payment was declined.
    PaymentDeclined,
    /// 403: the key's role may not do this.
    Forbidden,
    /// 404: no such resource (or it belongs to another account).
    NotFound,
    /// 405: the resource does not support this method.
    MethodNotAllowed,
    /// 409: not enough stock.
    OutOfStock,
    /// 409: a book with this ISBN exists.
    BookExists,
    /// 409: the order already has a delivery.
    DeliveryExists,
    /// 409: the order cannot be cancelled (already cancelled or dispatched).
    OrderNotCancellable,
    /// 409: the order is cancelled and cannot be delivered.
    OrderCancelled,
    /// 409: a request with this idempotency key is still being processed.
    IdempotencyKeyInFlight,
    /// 409: the delivery's status does not allow this carrier update.
    DeliveryStatusConflict,
    /// 409: no delivery day within a year has room.
    NoDeliveryDay,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 414: the URL is too long.
    UriTooLong,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: a well-formed request with invalid values.
    ValidationFailed,
    /// 422: the idempotency key was used with a different request.
    IdempotencyKeyReused,
    /// 429: too many requests.
    RateLimited,
    /// 431: the request headers are too large.
    HeadersTooLarge,
    /// 500: an unexpected failure (details are logged, never sent).
    Internal,
    /// 503: a store or the payment processor cannot answer right now.
    Unavailable,
}

impl ProblemKind {
    /// The HTTP status of this kind of problem.
    pub fn status(self) -> StatusCode {
        use ProblemKind::*;
        match self {
            MalformedRequest => StatusCode::BAD_REQUEST,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            PaymentDeclined => StatusCode::PAYMENT_REQUIRED,
            Forbidden => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            OutOfStock
            | BookExists
            | DeliveryExists
            | OrderNotCancellable
            | OrderCancelled
            | IdempotencyKeyInFlight
            | DeliveryStatusConflict
            | NoDeliveryDay => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ValidationFailed | IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The slug of the problem `type` URI (`/problems/{slug}`).
    pub fn slug(self) -> &'static str {
        use ProblemKind::*;
        match self {
            MalformedRequest => "malformed-request",
            Unauthenticated => "unauthenticated",
            PaymentDeclined => "payment-declined",
            Forbidden => "forbidden",
            NotFound => "not-found",
            MethodNotAllowed => "method-not-allowed",
            OutOfStock => "out-of-stock",
            BookExists => "book-exists",
            DeliveryExists => "delivery-exists",
            OrderNotCancellable => "order-not-cancellable",
            OrderCancelled => "order-cancelled",
            IdempotencyKeyInFlight => "idempotency-key-in-flight",
            DeliveryStatusConflict => "delivery-status-conflict",
            NoDeliveryDay => "no-delivery-day",
            PayloadTooLarge => "payload-too-large",
            UriTooLong => "uri-too-long",
            HeadersTooLarge => "headers-too-large",
            UnsupportedMediaType => "unsupported-media-type",
            ValidationFailed => "validation-failed",
            IdempotencyKeyReused => "idempotency-key-reused",
            RateLimited => "rate-limited",
            Internal => "internal-error",
            Unavailable => "service-unavailable",
        }
    }

    /// The title, the same for every problem of this kind.
    pub fn title(self) -> &'static str {
        use ProblemKind::*;
        match self {
            MalformedRequest => "Malformed request",
            Unauthenticated => "Missing or unknown API key",
            PaymentDeclined => "Payment declined",
            Forbidden => "Not allowed for this API key's role",
            NotFound => "Resource not found",
            MethodNotAllowed => "Method not allowed",
            OutOfStock => "Not enough stock",
            BookExists => "Book already exists",
            DeliveryExists => "Delivery already scheduled",
            OrderNotCancellable => "Order cannot be cancelled",
            OrderCancelled => "Order is cancelled",
            IdempotencyKeyInFlight => "Request with this idempotency key in progress",
            DeliveryStatusConflict => "Delivery status does not allow this update",
            NoDeliveryDay => "No delivery day has room",
            PayloadTooLarge => "Request body too large",
            UriTooLong => "URL too long",
            HeadersTooLarge => "Request headers too large",
            UnsupportedMediaType => "Unsupported media type",
            ValidationFailed => "Invalid request",
            IdempotencyKeyReused => "Idempotency key reused with a different request",
            RateLimited => "Too many requests",
            Internal => "Internal server error",
            Unavailable => "Service unavailable",
        }
    }

    /// The kind of problem a bare status code stands for, for responses that were not
    /// produced by an [`ApiError`] (e.g. the framework's own 404 and 405).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            402 => Self::PaymentDeclined,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            413 => Self::PayloadTooLarge,
            414 => Self::UriTooLong,
            431 => Self::HeadersTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            400..=499 => Self::MalformedRequest,
            _ => Self::Internal,
        }
    }
}

/// An error answered to the client as problem+json. Boxed: errors are rare and results
/// that carry one stay small.
#[derive(Debug)]
pub struct ApiError(Box<ErrorDetails>);

#[derive(Debug)]
struct ErrorDetails {
    kind: ProblemKind,
    detail: String,
    errors: Vec<FieldError>,
    stock: Option<StockConflict>,
    /// The underlying failure of a 500 or 503, logged once by the middleware, never sent.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    retry_after_seconds: Option<u64>,
}

/// Which book a stock problem is about.
#[derive(Debug, Clone)]
struct StockConflict {
    isbn: String,
    requested: Option<u32>,
    available: Option<u32>,
}

impl ApiError {
    /// A problem of `kind` with a human-readable `detail`.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self(Box::new(ErrorDetails {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            stock: None,
            source: None,
            retry_after_seconds: None,
        }))
    }

    /// 400 malformed request.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::MalformedRequest, detail)
    }

    /// 422 with field-level errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut error = Self::new(ProblemKind::ValidationFailed, detail);
        error.0.errors = errors;
        error
    }

    /// 404 for a resource that does not exist or belongs to another API key. The detail is the
    /// same in both cases.
    pub fn not_found(what: &str) -> Self {
        Self::new(ProblemKind::NotFound, format!("no such {what}"))
    }

    /// 500; `source` is logged with the request id and never sent.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut error = Self::new(
            ProblemKind::Internal,
            "the server failed to answer this request",
        );
        error.0.source = Some(source.into());
        error
    }

    /// 503; `source` is logged with the request id and never sent.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut error = Self::new(
            ProblemKind::Unavailable,
            "the service cannot answer right now; retry later",
        );
        error.0.source = Some(source.into());
        error
    }

    /// Adds the book a stock or catalogue problem is about.
    pub fn with_isbn(
        mut self,
        isbn: impl fmt::Display,
        requested: Option<u32>,
        available: Option<u32>,
    ) -> Self {
        self.0.stock = Some(StockConflict {
            isbn: isbn.to_string(),
            requested,
            available,
        });
        self
    }

    /// Adds a field error to a 422 or 400.
    pub fn with_field_error(mut self, error: FieldError) -> Self {
        self.0.errors.push(error);
        self
    }

    /// Adds a `Retry-After` header (429).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after_seconds = Some(seconds);
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> ProblemKind {
        self.0.kind
    }

    /// The underlying failure, if any (for the one log line at the edge).
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        self.0.source.as_deref()
    }

    /// The problem body (without the request id, which the middleware adds).
    pub fn problem(&self) -> Problem {
        let ErrorDetails {
            kind,
            detail,
            errors,
            stock,
            ..
        } = &*self.0;
        let kind = *kind;
        Problem {
            problem_type: format!("/problems/{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.clone(),
            request_id: None,
            errors: errors.clone(),
            isbn: stock.as_ref().map(|s| s.isbn.clone()),
            requested: stock.as_ref().and_then(|s| s.requested),
            available: stock.as_ref().and_then(|s| s.available),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind.title(), self.0.detail)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Renders a problem body as a response.
pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .body(body)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = problem_response(&self.problem());
        if let Some(seconds) = self.0.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Every status an operation of this API may answer with a problem, and why.
const DOCUMENTED_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "Malformed request: body not JSON, wrong JSON types, bad path or query parameter",
    ),
    (401, "Missing or unknown API key"),
    (402, "Payment declined"),
    (403, "The API key's role may not do this"),
    (404, "No such resource, or it belongs to another API key"),
    (409, "Conflict with the current state"),
    (413, "Request body too large"),
    (415, "Request body is not application/json"),
    (422, "Well-formed request with invalid values"),
    (429, "Rate limit exceeded; see Retry-After"),
    (
        503,
        "A store or the payment processor cannot answer right now",
    ),
];

fn problem_schema_reference() -> ReferenceOr<ApistosSchema> {
    ReferenceOr::Reference {
        _ref: "#/components/schemas/Problem".to_owned(),
    }
}

impl ApiErrorComponent for ApiError {
    fn schemas_by_status_code(
        oas_version: OpenApiVersion,
    ) -> BTreeMap<String, (String, ReferenceOr<ApistosSchema>)> {
        let Some(problem) = <Problem as ApiComponent>::schema(oas_version) else {
            return BTreeMap::new();
        };
        DOCUMENTED_ERRORS
            .iter()
            .map(|(code, _)| (code.to_string(), problem.clone()))
            .collect()
    }

    fn error_responses(_oas_version: OpenApiVersion) -> Vec<(String, Response)> {
        DOCUMENTED_ERRORS
            .iter()
            .map(|(code, description)| {
                let media = MediaType {
                    schema: Some(VersionSpecificSchema::OAS3_0(problem_schema_reference())),
                    ..Default::default()
                };
                let mut headers = BTreeMap::from([headers::request_id()]);
                if *code == StatusCode::TOO_MANY_REQUESTS.as_u16() {
                    headers.extend([headers::retry_after()]);
                }
                let response = Response {
                    description: (*description).to_owned(),
                    headers,
                    content: BTreeMap::from([(PROBLEM_JSON.to_owned(), media)]),
                    ..Default::default()
                };
                (code.to_string(), response)
            })
            .collect()
    }
}

impl ApiError {
    /// The response as stored for an idempotent replay, with the first request's id in the
    /// body so that a replay is byte-identical.
    pub fn stored_response(&self, request_id: &str) -> crate::http::reply::StoredResponse {
        let mut problem = self.problem();
        problem.request_id = Some(request_id.to_owned());
        crate::http::reply::StoredResponse {
            status: problem.status,
            content_type: PROBLEM_JSON.to_owned(),
            location: None,
            body: serde_json::to_vec(&problem).unwrap_or_default(),
        }
    }
}
