//! The middleware around every request: request id, problem+json for every error, and one
//! log line per request.
//!
//! - `X-Request-Id` is echoed when the client sent a sane one (1..=128 printable ASCII
//!   characters, space included) and generated otherwise; it is on every response and in every problem body.
//! - Every [`ApiError`] is rendered here, once, with the request id in its body; any other
//!   error response (the framework's own 404, 405, 413 …) is replaced by the problem its
//!   status stands for, so clients meet a single error format.
//! - A 5xx is logged once, here, with the request id and the underlying cause; the client
//!   gets no detail.
//! - Requests over the URL or header size limits, or over the caller's rate limit, are
//!   answered (414, 431, 429 with `Retry-After`) before any handler runs.
//! - Under `/api`, a request without a valid API key is answered 401 before routing, whatever
//!   its path and method, so an anonymous caller cannot tell which routes exist.
//! - One `tracing` event per request with the method, the route *template* (never the raw
//!   path, which may hold ids), the status and `duration_ms`; the same labels feed the
//!   Prometheus metrics.

use std::future::{Ready, ready};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, TryIntoHeaderPair};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApistosSchema, OpenApiVersion};

use crate::app::AppState;
use crate::http::auth::cached_caller;
use crate::http::problem::{ApiError, ProblemKind, problem_body, problem_response};
use crate::http::rate_limit::retry_after_seconds;
use crate::http::reply::IDEMPOTENT_REPLAYED_HEADER;
use crate::metrics;

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// The longest client-sent request id that is echoed.
pub const MAX_REQUEST_ID_LENGTH: usize = 128;

/// The id of the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's id if it is sane, else a fresh one.
    pub fn from_client(value: Option<&[u8]>) -> Self {
        match value {
            Some(bytes)
                if !bytes.is_empty()
                    && bytes.len() <= MAX_REQUEST_ID_LENGTH
                    && bytes.iter().all(|b| (0x20..=0x7e).contains(b)) =>
            {
                Self(String::from_utf8_lossy(bytes).into_owned())
            }
            _ => Self(uuid::Uuid::new_v4().to_string()),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_client(None))))
    }
}

impl ApiComponent for RequestId {
    fn child_schemas(_: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        vec![]
    }

    fn schema(_: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        None
    }
}

/// The middleware function; install with `actix_web::middleware::from_fn(request_context)`.
pub async fn request_context(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let _in_flight = metrics::InFlight::start();
    let request_id = RequestId::from_client(
        request
            .headers()
            .get(REQUEST_ID_HEADER)
            .map(|v| v.as_bytes()),
    );
    request.extensions_mut().insert(request_id.clone());
    let method = request.method().clone();

    let refusal = match admission_refusal(&request) {
        Some(refusal) => Some(refusal),
        None => match rate_limit_refusal(&request).await {
            Some(refusal) => Some(refusal),
            None => anonymous_api_refusal(&request),
        },
    };
    let response = match refusal {
        Some(refusal) => request.error_response(refusal),
        None => next.call(request).await?.map_into_boxed_body(),
    };
    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());

    if status.is_server_error() {
        log_server_error(&response, &request_id, &route);
    }
    let mut response = if status.is_client_error() || status.is_server_error() {
        as_problem(response, &request_id)
    } else {
        response
    };
    if let Ok((name, value)) = (REQUEST_ID_HEADER, request_id.as_str()).try_into_pair() {
        response.headers_mut().insert(name, value);
    }

    let elapsed = started.elapsed().as_secs_f64();
    metrics::record_request(&method, &route, status, elapsed);
    tracing::info!(
        request_id = request_id.as_str(),
        http.method = %method,
        http.route = %route,
        http.status = status.as_u16(),
        duration_ms = elapsed * 1000.0,
        "request"
    );
    Ok(response)
}

/// Paths never rate limited: probes and the metrics scrape.
fn is_operational_path(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

/// How many bytes `value` displays as, without building the string.
fn display_len(value: &impl std::fmt::Display) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0 += text.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{value}"));
    count.0
}

/// Why a request is refused before routing for its size, if it is.
fn admission_refusal(request: &ServiceRequest) -> Option<ApiError> {
    let state = request.app_data::<web::Data<AppState>>()?;
    let limits = &state.request_limits;
    let url_bytes = display_len(request.uri());
    if url_bytes > limits.max_url_bytes {
        return Some(ApiError::new(
            ProblemKind::UriTooLong,
            format!("the URL is longer than {} bytes", limits.max_url_bytes),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Some(ApiError::new(
            ProblemKind::HeadersTooLarge,
            format!(
                "the request headers are larger than {} bytes",
                limits.max_header_bytes
            ),
        ));
    }
    None
}

/// Whether a path is under `/api`: exactly `/api`, or `/api/` and more. Read from the path
/// as the router sees it (percent-encoded letters decoded), so `/%61pi/…` counts too.
fn is_api_path(path: &str) -> bool {
    path.strip_prefix("/api")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// 401 for a request under `/api` without a valid key. It comes after the rate limit, so
/// guessing keys is limited per client address.
fn anonymous_api_refusal(request: &ServiceRequest) -> Option<ApiError> {
    if !is_api_path(request.match_info().as_str()) {
        return None;
    }
    cached_caller(request.request()).err()
}

/// Whether the request is over its caller's rate limit (429), counting it if not.
async fn rate_limit_refusal(request: &ServiceRequest) -> Option<ApiError> {
    let state = request.app_data::<web::Data<AppState>>()?;
    let rate_limits = state.rate_limits.as_ref()?;
    if is_operational_path(request.path()) {
        return None;
    }
    let key = match cached_caller(request.request()) {
        Ok(caller) => format!("key:{}", caller.customer.as_str()),
        Err(_) => format!(
            "addr:{}",
            request
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        ),
    };
    let wait = rate_limits.admit(&key).await.err()?;
    Some(
        ApiError::new(
            ProblemKind::RateLimited,
            "too many requests for this API key or client; retry later",
        )
        .with_retry_after(retry_after_seconds(wait)),
    )
}

fn log_server_error(response: &ServiceResponse<BoxBody>, request_id: &RequestId, route: &str) {
    let cause = response
        .response()
        .error()
        .map(|error| match error.as_error::<ApiError>() {
            Some(api_error) => match api_error.source_error() {
                Some(source) => format!("{api_error}: {source}"),
                None => api_error.to_string(),
            },
            None => error.to_string(),
        });
    tracing::error!(
        request_id = request_id.as_str(),
        http.route = route,
        http.status = response.status().as_u16(),
        error = cause.as_deref().unwrap_or("no error recorded"),
        "request failed"
    );
}

/// Makes an error response problem+json carrying the request id: an [`ApiError`] is
/// rendered here, once; any other error response (the framework's own 404, 405, 413 …)
/// is replaced by the problem its status stands for. A replayed idempotent response
/// already carries the first request's id and is left as it was.
fn as_problem(
    response: ServiceResponse<BoxBody>,
    request_id: &RequestId,
) -> ServiceResponse<BoxBody> {
    if response.headers().contains_key(IDEMPOTENT_REPLAYED_HEADER) {
        return response;
    }
    let (request, response) = response.into_parts();
    if let Some(api_error) = response
        .error()
        .and_then(|error| error.as_error::<ApiError>())
    {
        let rendered = api_error.render(request_id.as_str());
        return ServiceResponse::new(request, rendered);
    }
    let status = response.status();
    let kind = ProblemKind::for_status(status);
    let detail = match kind {
        ProblemKind::NotFound => "no resource at this path".to_owned(),
        ProblemKind::MethodNotAllowed => {
            "this resource does not support the request method".to_owned()
        }
        ProblemKind::PayloadTooLarge => "the request body is too large".to_owned(),
        _ => kind.title().to_owned(),
    };
    let mut problem = ApiError::new(kind, detail).problem();
    problem.status = status.as_u16();
    problem.request_id = Some(request_id.as_str().to_owned());
    let mut rebuilt = problem_response(status, problem_body(&problem));
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = response.headers().get(&name) {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    ServiceResponse::new(request, rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_prefix_is_a_whole_path_segment() {
        for path in ["/api", "/api/", "/api/books", "/api/anything/unknown"] {
            assert!(is_api_path(path), "{path}");
        }
        for path in ["/", "/apis", "/api-docs", "/docs/api", "/health/live", ""] {
            assert!(!is_api_path(path), "{path}");
        }
    }

    #[test]
    fn sane_client_request_ids_are_echoed_and_others_replaced() {
        assert_eq!(RequestId::from_client(Some(b"abc-123")).as_str(), "abc-123");
        let longest = "x".repeat(MAX_REQUEST_ID_LENGTH);
        assert_eq!(
            RequestId::from_client(Some(longest.as_bytes())).as_str(),
            longest
        );
        assert_eq!(RequestId::from_client(Some(b"job 7")).as_str(), "job 7");
        let too_long = "x".repeat(MAX_REQUEST_ID_LENGTH + 1);
        for bad in [&b""[..], b"tab\there", b"\xff\xfe", too_long.as_bytes()] {
            let generated = RequestId::from_client(Some(bad));
            assert!(uuid::Uuid::parse_str(generated.as_str()).is_ok(), "{bad:?}");
        }
    }
}
