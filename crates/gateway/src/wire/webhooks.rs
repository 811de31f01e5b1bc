//! `/api/webhook-endpoints` and `/api/events/{id}/redeliver`: webhook endpoints, their
//! delivery log, and the bodies that create and change them.

use apistos::{ApiComponent, JsonSchema};
use bookstore_storage::events::{
    DeliveryAttempt, EndpointChanges, EventTypePattern, WebhookEndpoint, WebhookSecret,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{collect, finish, parse_uuid, timestamp};
use crate::http::problem::{ApiError, FieldError};
use crate::webhooks::address::check_url;

/// The longest description.
const MAX_DESCRIPTION: usize = 500;

/// The most event type patterns of one endpoint.
const MAX_EVENT_TYPES: usize = 50;

/// `POST /api/webhook-endpoints`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct CreateWebhookEndpointRequest {
    /// Where events are POSTed: an `https://` URL whose host does not resolve to a
    /// loopback, private, link-local or metadata address.
    #[schemars(length(min = 1, max = 2000))]
    pub url: String,
    /// The event types to receive: names (`order.placed`), `RESOURCE.*` (`order.*`) or `*`;
    /// 1 to 50.
    #[schemars(length(min = 1, max = 50))]
    pub event_types: Vec<String>,
    /// What it is for (at most 500 characters).
    #[schemars(length(max = 500))]
    pub description: Option<String>,
    /// Whether it receives deliveries; `true` when omitted.
    pub enabled: Option<bool>,
}

/// A checked new endpoint.
#[derive(Debug, Clone)]
pub struct ValidNewEndpoint {
    /// The URL.
    pub url: String,
    /// The patterns.
    pub event_types: Vec<EventTypePattern>,
    /// The description.
    pub description: String,
    /// Enabled or not.
    pub enabled: bool,
}

fn check_description(text: &str) -> Result<String, String> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(format!("must be at most {MAX_DESCRIPTION} characters"));
    }
    Ok(text.to_owned())
}

fn check_event_types(texts: &[String]) -> Result<Vec<EventTypePattern>, String> {
    if texts.is_empty() || texts.len() > MAX_EVENT_TYPES {
        return Err(format!("must list 1 to {MAX_EVENT_TYPES} event types"));
    }
    texts
        .iter()
        .map(|text| EventTypePattern::parse(text).map_err(|error| error.to_string()))
        .collect()
}

fn check_endpoint_url(text: &str, allow_private: bool) -> Result<String, String> {
    check_url(text, allow_private)
        .map(|_| text.to_owned())
        .map_err(|error| error.to_string())
}

impl CreateWebhookEndpointRequest {
    /// Checks every field; one 422 names every bad one.
    pub fn validate(self, allow_private: bool) -> Result<ValidNewEndpoint, ApiError> {
        let mut errors = Vec::new();
        let url = collect(
            "url",
            check_endpoint_url(&self.url, allow_private),
            &mut errors,
        );
        let event_types = collect(
            "event_types",
            check_event_types(&self.event_types),
            &mut errors,
        );
        let description = collect(
            "description",
            check_description(self.description.as_deref().unwrap_or("")),
            &mut errors,
        );
        match (url, event_types, description) {
            (Some(url), Some(event_types), Some(description)) => Ok(ValidNewEndpoint {
                url,
                event_types,
                description,
                enabled: self.enabled.unwrap_or(true),
            }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// `PATCH /api/webhook-endpoints/{id}`: the fields to change.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct WebhookEndpointPatchRequest {
    /// A new URL (same rules as at creation).
    #[schemars(length(min = 1, max = 2000))]
    pub url: Option<String>,
    /// New event types (same rules as at creation).
    #[schemars(length(min = 1, max = 50))]
    pub event_types: Option<Vec<String>>,
    /// A new description.
    #[schemars(length(max = 500))]
    pub description: Option<String>,
    /// Enable (which clears `disabled_reason`) or disable.
    pub enabled: Option<bool>,
}

impl WebhookEndpointPatchRequest {
    /// Checks the fields present; one 422 names every bad one.
    pub fn validate(self, allow_private: bool) -> Result<EndpointChanges, ApiError> {
        let mut errors = Vec::new();
        let url = match &self.url {
            Some(url) => collect("url", check_endpoint_url(url, allow_private), &mut errors),
            None => None,
        };
        let event_types = match &self.event_types {
            Some(types) => collect("event_types", check_event_types(types), &mut errors),
            None => None,
        };
        let description = match &self.description {
            Some(text) => collect("description", check_description(text), &mut errors),
            None => None,
        };
        finish(errors)?;
        Ok(EndpointChanges {
            url,
            description,
            event_types,
            enabled: self.enabled,
        })
    }
}

/// A webhook endpoint (its secret is shown only when created or rotated).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "WebhookEndpoint")]
pub struct WebhookEndpointBody {
    /// Endpoint id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why the server disabled it (it answered `410 Gone`, or every attempt failed for 5
    /// days); null when enabled or disabled by an admin.
    pub disabled_reason: Option<String>,
    /// Until when the secret before the last rotation also signs (RFC 3339), or null.
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub previous_secret_expires_at: Option<String>,
    /// When it was created (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
}

impl From<&WebhookEndpoint> for WebhookEndpointBody {
    fn from(endpoint: &WebhookEndpoint) -> Self {
        Self {
            id: endpoint.id,
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            event_types: endpoint
                .event_types
                .iter()
                .map(EventTypePattern::as_string)
                .collect(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.clone(),
            previous_secret_expires_at: endpoint
                .previous_secret
                .as_ref()
                .map(|(_, until)| timestamp(*until)),
            created_at: timestamp(endpoint.created_at),
        }
    }
}

/// A webhook endpoint just created, with its signing secret: the only time it is shown.
// `Debug` (by hand, below) leaves the secret out.
#[derive(Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "CreatedWebhookEndpoint")]
pub struct CreatedWebhookEndpointBody {
    /// The endpoint.
    pub endpoint: WebhookEndpointBody,
    /// The signing secret, `whsec_` and the base64 of 32 random bytes. Keep it: it is
    /// never shown again.
    #[schemars(regex(pattern = r"^whsec_[A-Za-z0-9+/]+=*$"))]
    pub secret: String,
}

impl CreatedWebhookEndpointBody {
    /// The endpoint and its secret.
    pub fn new(endpoint: &WebhookEndpoint, secret: &WebhookSecret) -> Self {
        Self {
            endpoint: WebhookEndpointBody::from(endpoint),
            secret: secret.expose().to_owned(),
        }
    }
}

/// The answer to a secret rotation.
// `Debug` (by hand, below) leaves the secret out.
#[derive(Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "RotatedWebhookSecret")]
pub struct RotatedSecretBody {
    /// The new signing secret; shown only now.
    #[schemars(regex(pattern = r"^whsec_[A-Za-z0-9+/]+=*$"))]
    pub secret: String,
    /// Until when the previous secret also signs (RFC 3339): deliveries carry both
    /// signatures until then.
    #[schemars(with = "DateTime<Utc>")]
    pub previous_secret_expires_at: String,
}

impl std::fmt::Debug for CreatedWebhookEndpointBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhookEndpointBody")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RotatedSecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecretBody")
            .field(
                "previous_secret_expires_at",
                &self.previous_secret_expires_at,
            )
            .finish_non_exhaustive()
    }
}

/// One page of webhook endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "WebhookEndpointPage", transform = super::next_cursor_is_always_present)]
pub struct WebhookEndpointPageBody {
    /// Endpoints, in creation order.
    pub items: Vec<WebhookEndpointBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "WebhookDeliveryAttempt")]
pub struct DeliveryAttemptBody {
    /// Attempt id.
    pub id: Uuid,
    /// The delivery (one event to one endpoint) it was made for.
    pub delivery_id: Uuid,
    /// The event (`webhook-id`).
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: String,
    /// When the request started (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub attempted_at: String,
    /// The status the endpoint answered; null when it did not answer.
    pub status_code: Option<u16>,
    /// Why no answer came (refused, timed out, a forbidden address); null when one came.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
}

impl From<&DeliveryAttempt> for DeliveryAttemptBody {
    fn from(attempt: &DeliveryAttempt) -> Self {
        Self {
            id: attempt.id,
            delivery_id: attempt.delivery_id,
            event_id: attempt.event_id,
            event_type: attempt.event_type.clone(),
            attempted_at: timestamp(attempt.attempted_at),
            status_code: attempt.status_code,
            error: attempt.error.clone(),
            duration_ms: attempt.duration_ms,
        }
    }
}

/// One page of the delivery log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "WebhookDeliveryAttemptPage", transform = super::next_cursor_is_always_present)]
pub struct DeliveryAttemptPageBody {
    /// Attempts, newest first.
    pub items: Vec<DeliveryAttemptBody>,
    /// Pass as `cursor` to get older attempts; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/events/{id}/redeliver`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct RedeliverRequest {
    /// Only this endpoint; every enabled endpoint whose event types match when omitted.
    #[schemars(with = "Option<Uuid>")]
    pub endpoint_id: Option<String>,
}

impl RedeliverRequest {
    /// The endpoint named, checked.
    pub fn endpoint(&self) -> Result<Option<Uuid>, ApiError> {
        match self.endpoint_id.as_deref() {
            None => Ok(None),
            Some(text) => parse_uuid(text).map(Some).map_err(|message| {
                ApiError::validation(vec![FieldError::new("endpoint_id", message)])
            }),
        }
    }
}

/// A delivery queued by a redelivery or a test.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "QueuedWebhookDelivery")]
pub struct QueuedDeliveryBody {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The endpoint it goes to.
    pub endpoint_id: Uuid,
    /// The event sent (`webhook-id`).
    pub event_id: Uuid,
}

/// The deliveries a redelivery or a test queued; they are sent within moments.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "QueuedWebhookDeliveries")]
pub struct QueuedDeliveriesBody {
    /// The deliveries queued (none when no endpoint matches).
    pub deliveries: Vec<QueuedDeliveryBody>,
}

/// `?limit=&cursor=` of the webhook lists.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct WebhookPageQuery {
    /// Page size, 1 to 100 (default 20).
    #[serde(
        default,
        deserialize_with = "super::deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32", "default" = 20))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page, passed back as it came (an opaque value).
    pub cursor: Option<String>,
}

/// A path holding a webhook endpoint id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct WebhookEndpointPath {
    /// Endpoint id.
    #[serde(deserialize_with = "super::deserialize_uuid")]
    pub id: Uuid,
}

/// A path holding an event id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct EventPath {
    /// Event id.
    #[serde(deserialize_with = "super::deserialize_uuid")]
    pub id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, types: &[&str]) -> CreateWebhookEndpointRequest {
        CreateWebhookEndpointRequest {
            url: url.to_owned(),
            event_types: types.iter().map(|text| (*text).to_owned()).collect(),
            description: None,
            enabled: None,
        }
    }

    #[test]
    fn a_bad_url_and_a_bad_type_pattern_are_named_in_one_answer() {
        let error = request("http://10.0.0.1/hook", &["order.*", "order.shipped"])
            .validate(false)
            .unwrap_err();
        let problem = error.problem();
        let fields: Vec<String> = problem
            .errors
            .iter()
            .map(|error| error.field.clone())
            .collect();
        assert_eq!(fields, vec!["url", "event_types"]);
    }

    #[test]
    fn the_bodies_that_carry_a_secret_never_show_it_in_debug() {
        let created = CreatedWebhookEndpointBody {
            endpoint: WebhookEndpointBody {
                id: Uuid::nil(),
                url: "https://hooks.example.com/".to_owned(),
                description: String::new(),
                event_types: vec!["*".to_owned()],
                enabled: true,
                disabled_reason: None,
                previous_secret_expires_at: None,
                created_at: "2026-12-03T10:00:00.000Z".to_owned(),
            },
            secret: "whsec_c2VjcmV0".to_owned(),
        };
        let rotated = RotatedSecretBody {
            secret: "whsec_c2VjcmV0".to_owned(),
            previous_secret_expires_at: "2026-12-04T10:00:00.000Z".to_owned(),
        };
        assert!(!format!("{created:?} {rotated:?}").contains("whsec_"));
    }

    #[test]
    fn a_private_address_is_refused_unless_allowed() {
        let error = request("https://192.168.0.10/hook", &["*"])
            .validate(false)
            .unwrap_err();
        assert!(
            error.problem().detail.contains("private"),
            "{:?}",
            error.problem()
        );
        assert!(
            request("http://127.0.0.1:8080/hook", &["*"])
                .validate(true)
                .is_ok()
        );
    }
}
