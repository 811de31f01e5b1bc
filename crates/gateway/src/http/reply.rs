//! Successful JSON responses, typed for the OpenAPI spec and replayable for idempotency.
//!
//! A handler returns a [`Reply<T, STATUS>`]: the body is serialized once, up front, so the
//! exact bytes can also be stored for an idempotent replay, and `T` and `STATUS` document the
//! response in the spec.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder};
use apistos::paths::{MediaType, Response, Responses};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApistosSchema, OpenApiVersion, VersionSpecificSchema};
use serde::Serialize;

use crate::http::problem::ApiError;
use crate::openapi::headers;

/// The header set on a response replayed for an idempotency key.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// A complete response as stored for idempotent replay.
pub use bookstore_storage::idempotency::StoredResponse;

/// A JSON response with status `STATUS` whose body is a `T`.
pub struct Reply<T, const STATUS: u16 = 200> {
    stored: StoredResponse,
    replayed: bool,
    body_type: PhantomData<fn() -> T>,
}

/// A 201 Created response.
pub type Created<T> = Reply<T, 201>;

/// A value whose JSON is exactly that of a `T`: `T` itself, or a borrowed view of the
/// domain data a `T` would be built from (see `wire::BookView`), which skips building the
/// `T`. The spec documents `T`; the bytes come from `Self`.
pub trait SerializesAs<T>: Serialize {
    /// About how many bytes of JSON this is, to size the buffer once.
    fn json_size_hint(&self) -> usize {
        128
    }
}

impl<T: Serialize> SerializesAs<T> for T {}

impl<T, const STATUS: u16> Reply<T, STATUS> {
    /// Serializes `body`: a `T`, or a view that serializes as one.
    pub fn new(body: &impl SerializesAs<T>) -> Result<Self, ApiError> {
        let mut bytes = Vec::with_capacity(body.json_size_hint());
        serde_json::to_writer(&mut bytes, body).map_err(ApiError::internal)?;
        Ok(Self {
            stored: StoredResponse {
                status: STATUS,
                content_type: mime_json(),
                location: None,
                body: bytes,
            },
            replayed: false,
            body_type: PhantomData,
        })
    }
}

impl<T, const STATUS: u16> Reply<T, STATUS> {
    /// Adds a `Location` header.
    pub fn with_location(mut self, location: String) -> Self {
        self.stored.location = Some(location);
        self
    }

    /// A response with a body known in advance to be a valid `T`.
    pub fn fixed(body: &'static [u8]) -> Self {
        Self {
            stored: StoredResponse {
                status: STATUS,
                content_type: mime_json(),
                location: None,
                body: body.to_vec(),
            },
            replayed: false,
            body_type: PhantomData,
        }
    }

    /// A response replayed from the idempotency store: status and body exactly as first sent.
    pub fn replay(stored: StoredResponse) -> Self {
        Self {
            stored,
            replayed: true,
            body_type: PhantomData,
        }
    }

    /// The response as it is stored for replay.
    pub fn stored(&self) -> &StoredResponse {
        &self.stored
    }
}

fn mime_json() -> String {
    "application/json".to_owned()
}

/// Renders a stored response.
pub fn render_stored(stored: &StoredResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&stored.content_type) {
        builder.insert_header((header::CONTENT_TYPE, value));
    }
    if let Some(location) = stored
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        builder.insert_header((header::LOCATION, location));
    }
    if replayed {
        builder.insert_header((IDEMPOTENT_REPLAYED_HEADER, HeaderValue::from_static("true")));
    }
    builder.body(stored.body.clone())
}

impl<T, const STATUS: u16> Responder for Reply<T, STATUS> {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<Self::Body> {
        render_stored(&self.stored, self.replayed)
    }
}

impl<T: ApiComponent, const STATUS: u16> ApiComponent for Reply<T, STATUS> {
    fn child_schemas(oas_version: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        T::child_schemas(oas_version)
    }

    fn raw_schema(oas_version: OpenApiVersion) -> Option<ReferenceOr<ApistosSchema>> {
        T::raw_schema(oas_version)
    }

    fn schema(oas_version: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        T::schema(oas_version)
    }

    fn responses(
        oas_version: OpenApiVersion,
        _content_type: Option<String>,
        description: Option<String>,
    ) -> Option<Responses> {
        let (name, _) = T::schema(oas_version)?;
        let media = MediaType {
            schema: Some(VersionSpecificSchema::OAS3_0(ReferenceOr::Reference {
                _ref: format!("#/components/schemas/{name}"),
            })),
            ..Default::default()
        };
        // `Idempotent-Replayed` is added by the post-processing step, which knows which
        // operations take an `Idempotency-Key` (`crate::openapi`).
        let mut headers = BTreeMap::from([headers::request_id()]);
        if STATUS == 201 {
            headers.extend([headers::location()]);
        }
        let response = Response {
            description: description.unwrap_or_default(),
            headers,
            content: BTreeMap::from([(mime_json(), media)]),
            ..Default::default()
        };
        Some(Responses {
            responses: BTreeMap::from([(STATUS.to_string(), ReferenceOr::Object(response))]),
            ..Default::default()
        })
    }
}

/// A 204 No Content response (a deletion).
pub struct NoContent;

impl Responder for NoContent {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<Self::Body> {
        HttpResponse::NoContent().finish()
    }
}

impl ApiComponent for NoContent {
    fn child_schemas(_: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        Vec::new()
    }

    fn raw_schema(_: OpenApiVersion) -> Option<ReferenceOr<ApistosSchema>> {
        None
    }

    fn schema(_: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        None
    }

    fn responses(
        _: OpenApiVersion,
        _content_type: Option<String>,
        description: Option<String>,
    ) -> Option<Responses> {
        let response = Response {
            description: description.unwrap_or_default(),
            headers: BTreeMap::from([headers::request_id()]),
            ..Default::default()
        };
        Some(Responses {
            responses: BTreeMap::from([("204".to_owned(), ReferenceOr::Object(response))]),
            ..Default::default()
        })
    }
}
