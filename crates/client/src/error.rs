//! What a call can fail with: a problem the API answered (RFC 9457 problem+json, decoded),
//! a value refused before sending, a transport failure, or an answer the API does not
//! document.

use std::fmt;
use std::time::Duration;

use futures_util::TryStreamExt;
use progenitor_client::{ByteStream, ResponseValue};
use reqwest::header::HeaderMap;

use crate::types;

/// The header the API sets on a response replayed for a reused `Idempotency-Key`.
pub(crate) const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// How much of an undocumented answer's body an [`Error::UnexpectedResponse`] keeps.
const UNEXPECTED_BODY_LIMIT: usize = 4 * 1024;

/// Why a call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with a problem: a 4xx or 5xx with an `application/problem+json`
    /// body. Match on [`Problem::kind`].
    Problem(Box<Problem>),
    /// The client refused a value before sending anything, e.g. an ISBN with letters in
    /// it, or an `Idempotency-Key` that is not 1 to 255 printable ASCII characters.
    InvalidRequest(String),
    /// The server could not be reached, or the connection failed before a whole answer was
    /// read.
    Transport(reqwest::Error),
    /// The server answered something the API does not document: an unexpected status, or
    /// a body that does not decode as the documented type.
    UnexpectedResponse {
        /// The HTTP status; `None` for a success whose body did not decode (the generated
        /// layer does not keep its status).
        status: Option<u16>,
        /// The start of the body, as text, for diagnosis.
        body: String,
    },
}

impl Error {
    /// The problem the API answered, if that is what this error is.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem(problem) => Some(problem),
            _ => None,
        }
    }

    /// The kind of problem the API answered, if that is what this error is.
    pub fn kind(&self) -> Option<&ProblemKind> {
        self.problem().map(|problem| &problem.kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Problem(problem) => write!(
                f,
                "{} {}: {}",
                problem.status, problem.title, problem.detail
            ),
            Error::InvalidRequest(message) => write!(f, "invalid request: {message}"),
            Error::Transport(error) => write!(f, "transport failure: {error}"),
            Error::UnexpectedResponse {
                status: Some(status),
                ..
            } => write!(
                f,
                "the server answered {status}, which the API does not document"
            ),
            Error::UnexpectedResponse { status: None, .. } => f.write_str(
                "the server answered a success whose body is not what the API documents",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(error) => Some(error),
            _ => None,
        }
    }
}

/// An RFC 9457 problem the API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The HTTP status, 400 to 599.
    pub status: u16,
    /// The kind of problem, from `type`.
    pub kind: ProblemKind,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// What went wrong this time, for a human; its wording may change.
    pub detail: String,
    /// Every invalid field, for validation problems.
    pub errors: Vec<FieldError>,
    /// The id of the request, to quote when asking for help.
    pub request_id: Option<String>,
    /// The book a stock or catalogue problem is about.
    pub isbn: Option<String>,
    /// For a stock conflict: the copies asked for.
    pub requested: Option<u32>,
    /// For a stock conflict: the copies in stock.
    pub available: Option<u32>,
    /// How long to wait before trying again (`Retry-After`, on a 429).
    pub retry_after: Option<Duration>,
    /// Whether this is the stored answer to an earlier request with the same
    /// `Idempotency-Key`, replayed.
    pub replayed: bool,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field, e.g. `items[0].quantity` or `address.country`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The kinds of problem the API answers, one per problem `type` (`docs/API-ERRORS.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// 400: the path, the query string or the body is malformed.
    MalformedRequest,
    /// 401: the API key is missing or unknown.
    Unauthenticated,
    /// 402: the payment was declined.
    PaymentDeclined,
    /// 403: the API key's role may not do this.
    Forbidden,
    /// 404: no such resource, or it belongs to another API key.
    NotFound,
    /// 405: the path exists, but not with this method.
    MethodNotAllowed,
    /// 409: not enough stock.
    OutOfStock,
    /// 409: a book with this ISBN exists.
    BookExists,
    /// 409: the order already has a delivery.
    DeliveryExists,
    /// 409: the order is already cancelled, or its delivery was dispatched.
    OrderNotCancellable,
    /// 409: the order is cancelled and cannot be delivered.
    OrderCancelled,
    /// 409: the first request with this `Idempotency-Key` is still being processed.
    IdempotencyKeyInFlight,
    /// 409: the delivery's life cycle does not allow this carrier update.
    DeliveryStatusConflict,
    /// 409: no business day within a year has room for another delivery.
    NoDeliveryDay,
    /// 413: the request body is too large.
    PayloadTooLarge,
    /// 414: the URL is too long.
    UriTooLong,
    /// 415: the request body is not `application/json`.
    UnsupportedMediaType,
    /// 422: a well-formed request with invalid values; see [`Problem::errors`].
    ValidationFailed,
    /// 422: this `Idempotency-Key` was used for a different request.
    IdempotencyKeyReused,
    /// 429: too many requests; see [`Problem::retry_after`].
    RateLimited,
    /// 431: the request headers are too large.
    HeadersTooLarge,
    /// 500: the server failed.
    InternalError,
    /// 503: a store or the payment processor cannot answer right now.
    ServiceUnavailable,
    /// A `type` this client does not know (a newer server): the `type` as sent.
    Other(String),
}

/// Every known kind with its `type`.
const KINDS: &[(ProblemKind, &str)] = &[
    (ProblemKind::MalformedRequest, "/problems/malformed-request"),
    (ProblemKind::Unauthenticated, "/problems/unauthenticated"),
    (ProblemKind::PaymentDeclined, "/problems/payment-declined"),
    (ProblemKind::Forbidden, "/problems/forbidden"),
    (ProblemKind::NotFound, "/problems/not-found"),
    (
        ProblemKind::MethodNotAllowed,
        "/problems/method-not-allowed",
    ),
    (ProblemKind::OutOfStock, "/problems/out-of-stock"),
    (ProblemKind::BookExists, "/problems/book-exists"),
    (ProblemKind::DeliveryExists, "/problems/delivery-exists"),
    (
        ProblemKind::OrderNotCancellable,
        "/problems/order-not-cancellable",
    ),
    (ProblemKind::OrderCancelled, "/problems/order-cancelled"),
    (
        ProblemKind::IdempotencyKeyInFlight,
        "/problems/idempotency-key-in-flight",
    ),
    (
        ProblemKind::DeliveryStatusConflict,
        "/problems/delivery-status-conflict",
    ),
    (ProblemKind::NoDeliveryDay, "/problems/no-delivery-day"),
    (ProblemKind::PayloadTooLarge, "/problems/payload-too-large"),
    (ProblemKind::UriTooLong, "/problems/uri-too-long"),
    (
        ProblemKind::UnsupportedMediaType,
        "/problems/unsupported-media-type",
    ),
    (ProblemKind::ValidationFailed, "/problems/validation-failed"),
    (
        ProblemKind::IdempotencyKeyReused,
        "/problems/idempotency-key-reused",
    ),
    (ProblemKind::RateLimited, "/problems/rate-limited"),
    (ProblemKind::HeadersTooLarge, "/problems/headers-too-large"),
    (ProblemKind::InternalError, "/problems/internal-error"),
    (
        ProblemKind::ServiceUnavailable,
        "/problems/service-unavailable",
    ),
];

impl ProblemKind {
    /// The kind a problem `type` names.
    pub fn from_type(problem_type: &str) -> Self {
        KINDS
            .iter()
            .find(|(_, known)| *known == problem_type)
            .map_or_else(
                || Self::Other(problem_type.to_owned()),
                |(kind, _)| kind.clone(),
            )
    }

    /// The problem `type` of this kind, e.g. `/problems/out-of-stock`.
    pub fn problem_type(&self) -> &str {
        match self {
            Self::Other(problem_type) => problem_type,
            known => KINDS
                .iter()
                .find(|(kind, _)| kind == known)
                .map_or("", |(_, problem_type)| problem_type),
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.problem_type())
    }
}

impl Problem {
    fn from_body(body: types::Problem, headers: &HeaderMap) -> Self {
        Self {
            status: body.status,
            kind: ProblemKind::from_type(&body.type_),
            title: body.title,
            detail: body.detail,
            errors: body
                .errors
                .into_iter()
                .map(|error| FieldError {
                    field: error.field,
                    message: error.message,
                })
                .collect(),
            request_id: body.request_id,
            isbn: body.isbn,
            requested: body.requested,
            available: body.available,
            retry_after: headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok())
                .map(Duration::from_secs),
            replayed: was_replayed(headers),
        }
    }
}

/// Whether a response carries `Idempotent-Replayed: true`.
pub(crate) fn was_replayed(headers: &HeaderMap) -> bool {
    headers
        .get(IDEMPOTENT_REPLAYED)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// The body of a documented error response, decoded as a problem.
async fn problem_from(response: ResponseValue<ByteStream>) -> Error {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response
        .into_inner_stream()
        .try_fold(Vec::new(), |mut body, chunk| async move {
            body.extend_from_slice(&chunk);
            Ok(body)
        })
        .await
    {
        Ok(body) => body,
        Err(error) => return Error::Transport(error),
    };
    match serde_json::from_slice::<types::Problem>(&body) {
        Ok(problem) => Error::Problem(Box::new(Problem::from_body(problem, &headers))),
        Err(_) => Error::UnexpectedResponse {
            status: Some(status),
            body: body_text(&body),
        },
    }
}

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(UNEXPECTED_BODY_LIMIT)]).into_owned()
}

/// Turns a failure of the generated layer into an [`Error`]. An error response is read and
/// decoded as a problem, whichever status it has: the API answers every error as one.
pub(crate) async fn from_generated<E: ErrorBody>(error: progenitor_client::Error<E>) -> Error {
    use progenitor_client::Error as Generated;
    match error {
        Generated::InvalidRequest(message) | Generated::Custom(message) => {
            Error::InvalidRequest(message)
        }
        Generated::CommunicationError(error)
        | Generated::InvalidUpgrade(error)
        | Generated::ResponseBodyError(error) => Error::Transport(error),
        Generated::ErrorResponse(response) => E::into_error(response).await,
        Generated::InvalidResponsePayload(body, _) => Error::UnexpectedResponse {
            status: None,
            body: body_text(&body),
        },
        Generated::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            match response.bytes().await {
                Err(error) => Error::Transport(error),
                Ok(body) => match serde_json::from_slice::<types::Problem>(&body) {
                    // An error the operation does not list (e.g. 405, 414, 431) is still a
                    // problem.
                    Ok(problem) if status >= 400 => {
                        Error::Problem(Box::new(Problem::from_body(problem, &headers)))
                    }
                    _ => Error::UnexpectedResponse {
                        status: Some(status),
                        body: body_text(&body),
                    },
                },
            }
        }
    }
}

/// The error bodies of the generated layer: a byte stream for the documented problem
/// responses, nothing for operations that document none.
pub(crate) trait ErrorBody: Sized {
    /// The error for a documented error response with this body.
    fn into_error(response: ResponseValue<Self>) -> impl Future<Output = Error>;
}

impl ErrorBody for ByteStream {
    fn into_error(response: ResponseValue<Self>) -> impl Future<Output = Error> {
        problem_from(response)
    }
}

impl ErrorBody for () {
    async fn into_error(response: ResponseValue<Self>) -> Error {
        Error::UnexpectedResponse {
            status: Some(response.status().as_u16()),
            body: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_in_the_api_errors_document_is_a_known_kind() {
        let document = include_str!("../../../docs/API-ERRORS.md");
        let listed: Vec<&str> = document
            .split('`')
            .filter(|text| text.starts_with("/problems/"))
            .collect();
        assert!(listed.len() >= KINDS.len(), "{listed:?}");
        for problem_type in listed {
            let kind = ProblemKind::from_type(problem_type);
            assert!(
                !matches!(kind, ProblemKind::Other(_)),
                "{problem_type} is listed in docs/API-ERRORS.md but unknown to the client"
            );
            assert_eq!(kind.problem_type(), problem_type);
        }
    }

    #[test]
    fn an_unknown_problem_type_is_kept_as_sent() {
        let kind = ProblemKind::from_type("/problems/something-new");
        assert_eq!(
            kind,
            ProblemKind::Other("/problems/something-new".to_owned())
        );
        assert_eq!(kind.to_string(), "/problems/something-new");
    }

    #[test]
    fn a_problem_body_decodes_with_its_retry_after_and_replay_headers() {
        let body: types::Problem = serde_json::from_str(
            r#"{"type":"/problems/rate-limited","title":"Too many requests","status":429,
                "detail":"slow down","request_id":"r-1"}"#,
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        headers.insert(IDEMPOTENT_REPLAYED, "true".parse().unwrap());

        let problem = Problem::from_body(body, &headers);

        assert_eq!(problem.kind, ProblemKind::RateLimited);
        assert_eq!(problem.status, 429);
        assert_eq!(problem.retry_after, Some(Duration::from_secs(3)));
        assert!(problem.replayed);
        assert_eq!(problem.request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn field_errors_are_kept_in_order() {
        let body: types::Problem = serde_json::from_str(
            r#"{"type":"/problems/validation-failed","title":"Invalid request","status":422,
                "detail":"2 fields are invalid","errors":[
                  {"field":"items[0].isbn","message":"bad checksum"},
                  {"field":"payment.token","message":"unknown token"}]}"#,
        )
        .unwrap();

        let problem = Problem::from_body(body, &HeaderMap::new());

        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].isbn", "payment.token"]);
        assert_eq!(problem.retry_after, None);
        assert!(!problem.replayed);
    }
}
