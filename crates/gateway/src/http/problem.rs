//! The one error type of the HTTP API and its RFC 9457 problem+json rendering.
//!
//! Every error any handler, extractor or middleware produces becomes an [`ApiError`], and
//! every [`ApiError`] is rendered once, by the middleware with the request id, as
//! `application/problem+json` ([`ApiError::render`]). Each [`ProblemKind`] has one row in
//! one table ([`ProblemKind::spec`]): its status, `type` and title.
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

/// What a kind of problem looks like on the wire: its status, the slug of its `type` URI
/// (`/problems/{slug}`) and its title, the same for every problem of the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemSpec {
    /// The HTTP status.
    pub status: StatusCode,
    /// The slug of the problem `type` URI.
    pub slug: &'static str,
    /// The title.
    pub title: &'static str,
}

impl ProblemKind {
    /// The status, slug and title of this kind of problem: the one table of them.
    pub const fn spec(self) -> ProblemSpec {
        use ProblemKind::*;
        match self {
            MalformedRequest => ProblemSpec {
                status: StatusCode::BAD_REQUEST,
                slug: "malformed-request",
                title: "Malformed request",
            },
            Unauthenticated => ProblemSpec {
                status: StatusCode::UNAUTHORIZED,
                slug: "unauthenticated",
                title: "Missing or unknown API key",
            },
            PaymentDeclined => ProblemSpec {
                status: StatusCode::PAYMENT_REQUIRED,
                slug: "payment-declined",
                title: "Payment declined",
            },
            Forbidden => ProblemSpec {
                status: StatusCode::FORBIDDEN,
                slug: "forbidden",
                title: "Not allowed for this API key's role",
            },
            NotFound => ProblemSpec {
                status: StatusCode::NOT_FOUND,
                slug: "not-found",
                title: "Resource not found",
            },
            MethodNotAllowed => ProblemSpec {
                status: StatusCode::METHOD_NOT_ALLOWED,
                slug: "method-not-allowed",
                title: "Method not allowed",
            },
            OutOfStock => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "out-of-stock",
                title: "Not enough stock",
            },
            BookExists => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "book-exists",
                title: "Book already exists",
            },
            DeliveryExists => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "delivery-exists",
                title: "Delivery already scheduled",
            },
            OrderNotCancellable => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "order-not-cancellable",
                title: "Order cannot be cancelled",
            },
            OrderCancelled => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "order-cancelled",
                title: "Order is cancelled",
            },
            IdempotencyKeyInFlight => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "idempotency-key-in-flight",
                title: "Request with this idempotency key in progress",
            },
            DeliveryStatusConflict => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "delivery-status-conflict",
                title: "Delivery status does not allow this update",
            },
            NoDeliveryDay => ProblemSpec {
                status: StatusCode::CONFLICT,
                slug: "no-delivery-day",
                title: "No delivery day has room",
            },
            PayloadTooLarge => ProblemSpec {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                slug: "payload-too-large",
                title: "Request body too large",
            },
            UriTooLong => ProblemSpec {
                status: StatusCode::URI_TOO_LONG,
                slug: "uri-too-long",
                title: "URL too long",
            },
            HeadersTooLarge => ProblemSpec {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                slug: "headers-too-large",
                title: "Request headers too large",
            },
            UnsupportedMediaType => ProblemSpec {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                slug: "unsupported-media-type",
                title: "Unsupported media type",
            },
            ValidationFailed => ProblemSpec {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                slug: "validation-failed",
                title: "Invalid request",
            },
            IdempotencyKeyReused => ProblemSpec {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                slug: "idempotency-key-reused",
                title: "Idempotency key reused with a different request",
            },
            RateLimited => ProblemSpec {
                status: StatusCode::TOO_MANY_REQUESTS,
                slug: "rate-limited",
                title: "Too many requests",
            },
            Internal => ProblemSpec {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                slug: "internal-error",
                title: "Internal server error",
            },
            Unavailable => ProblemSpec {
                status: StatusCode::SERVICE_UNAVAILABLE,
                slug: "service-unavailable",
                title: "Service unavailable",
            },
        }
    }

    /// The HTTP status of this kind of problem.
    pub const fn status(self) -> StatusCode {
        self.spec().status
    }

    /// The slug of the problem `type` URI (`/problems/{slug}`).
    pub const fn slug(self) -> &'static str {
        self.spec().slug
    }

    /// The title, the same for every problem of this kind.
    pub const fn title(self) -> &'static str {
        self.spec().title
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

    /// The problem body, without a request id.
    pub fn problem(&self) -> Problem {
        let ErrorDetails {
            kind,
            detail,
            errors,
            stock,
            ..
        } = &*self.0;
        let spec = kind.spec();
        Problem {
            problem_type: format!("/problems/{}", spec.slug),
            title: spec.title.to_owned(),
            status: spec.status.as_u16(),
            detail: detail.clone(),
            request_id: None,
            errors: errors.clone(),
            isbn: stock.as_ref().map(|s| s.isbn.clone()),
            requested: stock.as_ref().and_then(|s| s.requested),
            available: stock.as_ref().and_then(|s| s.available),
        }
    }

    /// The problem+json body of the request `request_id`.
    fn body(&self, request_id: &str) -> Vec<u8> {
        let mut problem = self.problem();
        problem.request_id = Some(request_id.to_owned());
        problem_body(&problem)
    }

    /// The whole response to the request `request_id`: the body is written here, once, with
    /// the request id in it. The middleware calls this for every `ApiError` it meets.
    pub fn render(&self, request_id: &str) -> HttpResponse {
        let mut response = problem_response(self.0.kind.status(), self.body(request_id));
        if let Some(seconds) = self.0.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
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

/// A problem body as bytes. A `Problem` is strings and integers, which always serialize.
pub fn problem_body(problem: &Problem) -> Vec<u8> {
    serde_json::to_vec(problem).unwrap_or_default()
}

/// A problem+json response with `status` and `body`.
pub fn problem_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .body(body)
}

/// The response actix-web builds from an `ApiError` carries only its status: the error
/// itself travels with it, and the middleware renders it with the request id
/// ([`ApiError::render`]), so that every problem body is written once.
impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::new(self.status_code())
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
    /// body so that a replay is byte-identical to the first answer.
    pub fn stored_response(&self, request_id: &str) -> crate::http::reply::StoredResponse {
        crate::http::reply::StoredResponse {
            status: self.0.kind.status().as_u16(),
            content_type: PROBLEM_JSON.to_owned(),
            location: None,
            body: self.body(request_id),
        }
    }
}
