//! The request side of idempotency keys: the [`Idempotent`] extractor, which reads the
//! `Idempotency-Key` header and the body, and [`Idempotent::run`], which does the work at
//! most once per key (see `crate::idempotency` for the claims and the stores).
//!
//! The fingerprint a key is held to covers the method, the path and the exact bytes of the
//! body as received: the bytes that were parsed are the bytes that were fingerprinted (for
//! an action whose body is optional, no body counts as `{}`).

use std::future::Future;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime, web};
use apistos::paths::{Parameter, RequestBody};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApistosSchema, OpenApiVersion};
use bookstore_sales::CustomerId;
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::http::auth::cached_caller;
use crate::http::extract::{
    IDEMPOTENCY_KEY_HEADER, IdempotencyKey, OptionalEmptyObject, deserialize_rejection, too_large,
    unsupported_media_type,
};
use crate::http::middleware::RequestId;
use crate::http::problem::{ApiError, ProblemKind};
use crate::http::reply::Reply;
use crate::idempotency::{Attempt, Claim, Fingerprint, IdempotencyStore, request_fingerprint};
use crate::metrics::BusinessEvent;
use crate::workflow::{OrderIdentity, order_id_for_idempotency_key};

/// A body an idempotent request can carry, parsed from the exact bytes received.
pub trait IdempotentBody: Sized {
    /// Refuses a request before its body is read (415 for a JSON body sent as another type).
    fn check_head(request: &HttpRequest) -> Result<(), ApiError>;

    /// The answer when the body cannot be read (too large, cut off).
    fn unreadable(error: actix_web::Error, limit_bytes: usize) -> actix_web::Error;

    /// The body, from its bytes.
    fn parse(request: &HttpRequest, bytes: &[u8]) -> Result<Self, ApiError>;

    /// The bytes the fingerprint covers: those received.
    fn fingerprinted(received: &[u8]) -> &[u8] {
        received
    }
}

/// A JSON body, refused and parsed exactly as `web::Json` with `extract::json_config` does.
impl<T: DeserializeOwned> IdempotentBody for web::Json<T> {
    fn check_head(request: &HttpRequest) -> Result<(), ApiError> {
        let is_json = matches!(
            request.mime_type(),
            Ok(Some(mime)) if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON)
        );
        if is_json {
            Ok(())
        } else {
            Err(unsupported_media_type())
        }
    }

    fn unreadable(error: actix_web::Error, limit_bytes: usize) -> actix_web::Error {
        match error.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => too_large(limit_bytes).into(),
            Some(other) => ApiError::malformed(format!(
                "the request body could not be read: Error that occur during reading payload: {other}"
            ))
            .into(),
            None => error,
        }
    }

    fn parse(_request: &HttpRequest, bytes: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(bytes)
            .map(web::Json)
            .map_err(|error| deserialize_rejection(&error))
    }
}

impl IdempotentBody for OptionalEmptyObject {
    fn check_head(_request: &HttpRequest) -> Result<(), ApiError> {
        Ok(())
    }

    fn unreadable(error: actix_web::Error, _limit_bytes: usize) -> actix_web::Error {
        error
    }

    fn parse(request: &HttpRequest, bytes: &[u8]) -> Result<Self, ApiError> {
        Self::from_body(request, bytes)
    }

    /// No body at all is the same request as `{}`.
    fn fingerprinted(received: &[u8]) -> &[u8] {
        if received.is_empty() { b"{}" } else { received }
    }
}

/// A request that may carry an `Idempotency-Key`: its body, and, when a key was sent, the
/// key, the caller it is scoped to and the fingerprint of the request.
pub struct Idempotent<B> {
    body: B,
    key: Option<HeldKey>,
    request_id: RequestId,
    store: Arc<dyn IdempotencyStore>,
}

/// A key and what it is held to.
struct HeldKey {
    owner: CustomerId,
    key: String,
    fingerprint: Fingerprint,
}

impl<B> Idempotent<B> {
    /// Runs `work` on the body at most once per key: replays a finished response, refuses a
    /// key in flight (409) or reused for another request (422). Without a key, runs it.
    pub async fn run<T, const STATUS: u16, Fut>(
        self,
        work: impl FnOnce(B, Attempt) -> Fut,
    ) -> Result<Reply<T, STATUS>, ApiError>
    where
        Fut: Future<Output = Result<Reply<T, STATUS>, ApiError>>,
    {
        let Self {
            body,
            key,
            request_id,
            store,
        } = self;
        let Some(HeldKey {
            owner,
            key,
            fingerprint,
        }) = key
        else {
            return work(body, Attempt::First).await;
        };
        let claim = store
            .claim(&owner, &key, fingerprint, Utc::now())
            .await
            .map_err(ApiError::unavailable)?;
        let attempt = match claim {
            Claim::Started => Attempt::First,
            Claim::Resumed => Attempt::Resumed,
            Claim::Replay(stored) => {
                BusinessEvent::IdempotentReplay.record();
                return Ok(Reply::replay(stored));
            }
            Claim::InFlight => {
                return Err(ApiError::new(
                    ProblemKind::IdempotencyKeyInFlight,
                    "a request with this Idempotency-Key is still being processed; retry later",
                ));
            }
            Claim::Mismatch => {
                return Err(ApiError::new(
                    ProblemKind::IdempotencyKeyReused,
                    "this Idempotency-Key was used for a different request",
                ));
            }
        };
        let result = work(body, attempt).await;
        let recorded = match &result {
            Ok(reply) => {
                store
                    .complete(&owner, &key, reply.stored().clone(), Utc::now())
                    .await
            }
            Err(error) if error.kind().status().is_server_error() => {
                store.release(&owner, &key).await
            }
            Err(error) => {
                let stored = error.stored_response(request_id.as_str());
                store.complete(&owner, &key, stored, Utc::now()).await
            }
        };
        if let Err(error) = recorded {
            // The work is done and its answer is correct; only a replay may be lost.
            tracing::warn!(error = %error, "could not record an idempotent response");
        }
        result
    }

    /// [`Idempotent::run`] for placing an order: `work` is given the order's identity, the
    /// id derived from the key (the same for the same caller, key and request, so a retry
    /// finds what a cut-off first attempt did) or, without a key, a fresh one.
    pub async fn run_order<T, const STATUS: u16, Fut>(
        self,
        work: impl FnOnce(B, OrderIdentity) -> Fut,
    ) -> Result<Reply<T, STATUS>, ApiError>
    where
        Fut: Future<Output = Result<Reply<T, STATUS>, ApiError>>,
    {
        let identity = match &self.key {
            Some(held) => OrderIdentity::Retryable(order_id_for_idempotency_key(
                &held.owner,
                &held.key,
                held.fingerprint,
            )),
            None => OrderIdentity::Fresh,
        };
        self.run(|body, _| work(body, identity)).await
    }
}

impl<B: IdempotentBody + 'static> FromRequest for Idempotent<B> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let bytes = web::Bytes::from_request(&request, payload);
        Box::pin(async move {
            let key = IdempotencyKey::parse(
                request
                    .headers()
                    .get(IDEMPOTENCY_KEY_HEADER)
                    .map(|value| value.as_bytes()),
            )?;
            B::check_head(&request)?;
            let state = request
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("the application state is not installed"))?;
            let bytes = bytes
                .await
                .map_err(|error| B::unreadable(error, state.request_limits.body_bytes))?;
            let body = B::parse(&request, &bytes)?;
            let key = match key.as_deref() {
                None => None,
                Some(key) => Some(HeldKey {
                    owner: cached_caller(&request)?.customer,
                    key: key.to_owned(),
                    fingerprint: request_fingerprint(
                        request.method().as_str(),
                        request.path(),
                        B::fingerprinted(&bytes),
                    ),
                }),
            };
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId::from_client(None));
            Ok(Self {
                body,
                key,
                request_id,
                store: Arc::clone(&state.idempotency),
            })
        })
    }
}

/// Documented as its body, plus the `Idempotency-Key` header parameter.
impl<B: ApiComponent> ApiComponent for Idempotent<B> {
    fn content_type() -> String {
        B::content_type()
    }

    fn required() -> bool {
        B::required()
    }

    fn child_schemas(oas_version: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        B::child_schemas(oas_version)
    }

    fn raw_schema(oas_version: OpenApiVersion) -> Option<ReferenceOr<ApistosSchema>> {
        B::raw_schema(oas_version)
    }

    fn schema(oas_version: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        B::schema(oas_version)
    }

    fn request_body(
        oas_version: OpenApiVersion,
        description: Option<String>,
    ) -> Option<RequestBody> {
        B::request_body(oas_version, description)
    }

    fn parameters(oas_version: OpenApiVersion, description: Option<String>) -> Vec<Parameter> {
        let mut parameters = IdempotencyKey::parameters(oas_version, description.clone());
        parameters.extend(B::parameters(oas_version, description));
        parameters
    }
}
