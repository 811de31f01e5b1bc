//! Request extraction: body, path and query rejections as problems, and the
//! `Idempotency-Key` header (read by `http::idempotent`).
//!
//! actix-web answers a rejected extractor with plain text unless told otherwise; the
//! configs built here turn every rejection into an [`ApiError`] with the status the
//! contract gives it.

use std::collections::BTreeMap;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, mime, web};
use apistos::paths::{
    MediaType, Parameter, ParameterDefinition, ParameterIn, ParameterStyle, RequestBody,
};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApistosSchema, OpenApiVersion, VersionSpecificSchema};

use crate::http::problem::{ApiError, ProblemKind};

/// The largest request body accepted, unless configured otherwise.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 64 * 1024;

/// JSON body extraction: 413 too large, 415 not JSON, 400 malformed or mistyped.
pub fn json_config(limit_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit_bytes)
        .content_type_required(true)
        .error_handler(move |error, _request| json_rejection(error, limit_bytes).into())
}

fn json_rejection(error: JsonPayloadError, limit_bytes: usize) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => too_large(limit_bytes),
        JsonPayloadError::ContentType => unsupported_media_type(),
        JsonPayloadError::Deserialize(error) => deserialize_rejection(&error),
        other => ApiError::malformed(format!("the request body could not be read: {other}")),
    }
}

/// 400 for a JSON body that is not JSON, or not of the expected shape.
pub fn deserialize_rejection(error: &serde_json::Error) -> ApiError {
    let detail = match error.classify() {
        serde_json::error::Category::Eof if error.line() == 1 && error.column() == 0 => {
            "the request body is empty; send a JSON object".to_owned()
        }
        serde_json::error::Category::Data => {
            format!(
                "the JSON body does not match the expected shape: {}",
                public_serde_message(error)
            )
        }
        _ => format!("the request body is not valid JSON: {error}"),
    };
    ApiError::malformed(detail)
}

/// serde's message without the Rust names it mentions ("expected struct PlaceOrderRequest",
/// "expected i64"): clients see JSON terms only.
fn public_serde_message(error: &serde_json::Error) -> String {
    const RUST_TERMS: &[(&str, &str)] = &[
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("u8", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let mut words: Vec<String> = Vec::new();
    let text = error.to_string();
    let mut tokens = text.split(' ').peekable();
    while let Some(token) = tokens.next() {
        if token == "struct" || token == "enum" {
            // "struct Name" or "struct Name with 6 elements": to a client, a JSON object.
            let mut last = tokens.next().unwrap_or_default();
            if tokens.peek() == Some(&"with") {
                tokens.next();
                tokens.next();
                last = tokens.next().unwrap_or_default();
            }
            let punctuation = last.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            words.push(format!("a JSON object{punctuation}"));
            continue;
        }
        let bare = token.trim_end_matches([',', '.']);
        match RUST_TERMS.iter().find(|(rust, _)| *rust == bare) {
            Some((rust, json)) => words.push(token.replacen(rust, json, 1)),
            None => words.push(token.to_owned()),
        }
    }
    words.join(" ")
}

/// 413 for a body over the limit.
pub fn too_large(limit_bytes: usize) -> ApiError {
    ApiError::new(
        ProblemKind::PayloadTooLarge,
        format!("the request body is larger than {limit_bytes} bytes"),
    )
}

/// 415 for a body that is not typed `application/json`.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        ProblemKind::UnsupportedMediaType,
        "send the request body as Content-Type: application/json",
    )
}

/// Path segments that do not parse (e.g. a malformed UUID) are 400, not the framework's 404.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _request| {
        ApiError::malformed(format!("a path parameter is malformed: {error}")).into()
    })
}

/// Query strings that do not parse are 400.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _request| {
        let detail = match error {
            QueryPayloadError::Deserialize(error) => {
                format!("the query string is malformed: {error}")
            }
            other => format!("the query string is malformed: {other}"),
        };
        ApiError::malformed(detail).into()
    })
}

/// Whether a request's `Content-Type` is JSON (`application/json`, any parameters, or a
/// `+json` suffix type).
pub fn is_json_content_type(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == mime::APPLICATION
                && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
        })
}

/// The `Idempotency-Key` header: absent, or 1..=255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(Option<String>);

/// The name of the idempotency header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

impl IdempotencyKey {
    /// The largest key accepted.
    pub const MAX_LENGTH: usize = 255;

    /// Parses a header value; `None` when the header was not sent.
    pub fn parse(value: Option<&[u8]>) -> Result<Self, ApiError> {
        let Some(bytes) = value else {
            return Ok(Self(None));
        };
        let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
        if bytes.is_empty() || bytes.len() > Self::MAX_LENGTH || !printable {
            return Err(ApiError::malformed(format!(
                "the {IDEMPOTENCY_KEY_HEADER} header must be 1 to {} printable ASCII characters",
                Self::MAX_LENGTH
            )));
        }
        Ok(Self(Some(String::from_utf8_lossy(bytes).into_owned())))
    }

    /// The key, if one was sent.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(
            request
                .headers()
                .get(IDEMPOTENCY_KEY_HEADER)
                .map(|v| v.as_bytes()),
        ))
    }
}

impl ApiComponent for IdempotencyKey {
    fn child_schemas(_: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        vec![]
    }

    fn schema(_: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        None
    }

    fn parameters(oas_version: OpenApiVersion, _description: Option<String>) -> Vec<Parameter> {
        let schema = serde_json::json!({ "type": "string", "minLength": 1, "maxLength": Self::MAX_LENGTH, "pattern": "^[\\x20-\\x7E]+$" });
        let schema = apistos::schemars::Schema::try_from(schema).unwrap_or_default();
        vec![Parameter {
            name: IDEMPOTENCY_KEY_HEADER.to_owned(),
            _in: ParameterIn::Header,
            description: Some(
                "Makes the request safe to retry: the first response for this key is replayed \
                 (with `Idempotent-Replayed: true`) and nothing is done twice. Scoped to the API key's account; \
                 kept at least 24 hours."
                    .to_owned(),
            ),
            required: Some(false),
            style: Some(ParameterStyle::Simple),
            definition: Some(ParameterDefinition::Schema(ReferenceOr::Object(ApistosSchema::new(schema, oas_version)))),
            ..Default::default()
        }]
    }
}

/// An optional JSON body for actions that take none (`POST /api/orders/{id}/cancel`):
/// empty, or a JSON object typed `application/json`.
#[derive(Debug, Clone, Default)]
pub struct OptionalEmptyObject(pub BTreeMap<String, serde_json::Value>);

impl OptionalEmptyObject {
    /// Checks a raw body against the rules for an optional JSON body.
    pub fn from_body(request: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        if !is_json_content_type(request) {
            return Err(unsupported_media_type());
        }
        serde_json::from_slice(body).map(Self).map_err(|error| {
            ApiError::malformed(format!("the request body must be a JSON object: {error}"))
        })
    }
}

impl FromRequest for OptionalEmptyObject {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let body = web::Bytes::from_request(&request, payload);
        Box::pin(async move {
            let body = body.await?;
            Ok(Self::from_body(&request, &body)?)
        })
    }
}

// `required()` stays true: apistos adds an empty security requirement for any optional
// argument. The body is marked optional in `request_body` instead.
impl ApiComponent for OptionalEmptyObject {
    fn child_schemas(_: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        vec![]
    }

    fn schema(_: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        None
    }

    fn request_body(
        oas_version: OpenApiVersion,
        _description: Option<String>,
    ) -> Option<RequestBody> {
        let schema = serde_json::json!({ "type": "object" });
        let schema = apistos::schemars::Schema::try_from(schema).unwrap_or_default();
        let media = MediaType {
            schema: Some(VersionSpecificSchema::OAS3_0(ReferenceOr::Object(
                ApistosSchema::new(schema, oas_version),
            ))),
            ..Default::default()
        };
        Some(RequestBody {
            description: Some("Optional; no body, or an empty JSON object".to_owned()),
            content: BTreeMap::from([("application/json".to_owned(), media)]),
            required: Some(false),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_for<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        public_serde_message(&serde_json::from_str::<T>(json).unwrap_err())
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct InternalName {
        count: i64,
        label: String,
    }

    #[test]
    fn serde_messages_name_json_types_never_rust_types() {
        for (json, expected) in [
            ("[]", "expected a JSON object"),
            ("\"text\"", "expected a JSON object"),
            (r#"{"count": "x", "label": "a"}"#, "expected an integer"),
            (r#"{"count": 1.5, "label": "a"}"#, "expected an integer"),
            (r#"{"count": 1}"#, "missing field `label`"),
        ] {
            let message = message_for::<InternalName>(json);
            assert!(message.contains(expected), "{json}: {message}");
            assert!(!message.contains("InternalName"), "{json}: {message}");
            assert!(!message.contains("i64"), "{json}: {message}");
        }
    }
}
