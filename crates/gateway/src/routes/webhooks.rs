//! `/api/webhook-endpoints` and `/api/events/{id}/redeliver` (admin keys only): register
//! the endpoints events are delivered to, read their delivery log, rotate their secrets,
//! send a test event and deliver an event again. The delivery itself is
//! [`crate::webhooks`]'s dispatcher.

use actix_web::web;
use apistos::api_operation;
use bookstore_storage::events::{EventTypePattern, NewDelivery, WebhookEndpoint};
use chrono::Utc;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AdminCaller;
use crate::http::problem::ApiError;
use crate::http::reply::{Created, NoContent, Reply};
use crate::webhooks::{generate_secret, test_delivery};
use crate::wire::webhooks::{
    CreateWebhookEndpointRequest, CreatedWebhookEndpointBody, DeliveryAttemptBody,
    DeliveryAttemptPageBody, EventPath, QueuedDeliveriesBody, QueuedDeliveryBody, RedeliverRequest,
    RotatedSecretBody, WebhookEndpointBody, WebhookEndpointPageBody, WebhookEndpointPatchRequest,
    WebhookEndpointPath, WebhookPageQuery,
};
use crate::wire::{cursor, page_limit};

/// How long the secret before a rotation goes on signing.
const PREVIOUS_SECRET_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

async fn endpoint_or_404(state: &AppState, id: Uuid) -> Result<WebhookEndpoint, ApiError> {
    state
        .webhooks
        .endpoint(id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// Registers a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "create_webhook_endpoint",
    summary = "Register a webhook endpoint",
    description = "For admin keys. Events of the listed types (`order.placed`, `order.*`, `*`) recorded from now on are POSTed to the URL, signed per Standard Webhooks 1.0 (see docs/EVENTS.md). The URL must be `https://` and must not be, or resolve to, a loopback, private, link-local, unique-local, CGNAT, multicast or metadata address (422 naming `url`); an unknown type pattern is 422 naming `event_types`. The answer carries the signing secret, shown only this once.",
    success_description = "The endpoint and its signing secret",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn create_webhook_endpoint(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<CreateWebhookEndpointRequest>,
) -> Result<Created<CreatedWebhookEndpointBody>, ApiError> {
    let valid = body
        .into_inner()
        .validate(state.webhook_settings.allow_private_addresses)?;
    let secret = generate_secret().map_err(|error| ApiError::internal(error.to_string()))?;
    // Number what has committed, so that "from now on" excludes it on PostgreSQL too.
    state.events.sequence().await?;
    let endpoint = WebhookEndpoint {
        id: Uuid::now_v7(),
        url: valid.url,
        description: valid.description,
        event_types: valid.event_types,
        enabled: valid.enabled,
        disabled_reason: None,
        secret: secret.clone(),
        previous_secret: None,
        created_at: Utc::now(),
        cursor: state.events.last_position().await?,
        failing_since: None,
    };
    state.webhooks.create_endpoint(&endpoint).await?;
    Ok(
        Created::new(&CreatedWebhookEndpointBody::new(&endpoint, &secret))?
            .with_location(format!("/api/webhook-endpoints/{}", endpoint.id)),
    )
}

/// Lists webhook endpoints.
#[api_operation(
    tag = "webhooks",
    operation_id = "list_webhook_endpoints",
    summary = "List webhook endpoints",
    description = "For admin keys. In creation order, `limit` per page; follow `next_cursor`. Secrets are never listed.",
    success_description = "A page of endpoints",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 429,
    error_code = 503
)]
pub async fn list_webhook_endpoints(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<WebhookPageQuery>,
) -> Result<Reply<WebhookEndpointPageBody>, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::webhook_endpoint_position)
        .transpose()?
        .unwrap_or(Uuid::nil());
    let (endpoints, has_more) = state
        .webhooks
        .list_endpoints(after, limit.get() as usize)
        .await?;
    let next_cursor = has_more
        .then(|| {
            endpoints
                .last()
                .map(|last| cursor::for_webhook_endpoint(&last.id))
        })
        .flatten();
    Reply::new(&WebhookEndpointPageBody {
        items: endpoints.iter().map(WebhookEndpointBody::from).collect(),
        next_cursor,
    })
}

/// Reads a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "get_webhook_endpoint",
    summary = "Get a webhook endpoint",
    description = "For admin keys. Without its secret; `disabled_reason` says why the server disabled it, if it did.",
    success_description = "The endpoint",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_webhook_endpoint(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
) -> Result<Reply<WebhookEndpointBody>, ApiError> {
    let endpoint = endpoint_or_404(&state, path.id).await?;
    Reply::new(&WebhookEndpointBody::from(&endpoint))
}

/// Changes a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "update_webhook_endpoint",
    summary = "Change a webhook endpoint",
    description = "For admin keys. Changes the fields sent (`url`, `event_types`, `description`, `enabled`), checked as at creation (422 naming the field). Enabling an endpoint the server disabled clears `disabled_reason`; its pending deliveries resume.",
    success_description = "The endpoint as changed",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn update_webhook_endpoint(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
    body: web::Json<WebhookEndpointPatchRequest>,
) -> Result<Reply<WebhookEndpointBody>, ApiError> {
    let changes = body
        .into_inner()
        .validate(state.webhook_settings.allow_private_addresses)?;
    let endpoint = state
        .webhooks
        .update_endpoint(path.id, &changes)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Reply::new(&WebhookEndpointBody::from(&endpoint))
}

/// Deletes a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "delete_webhook_endpoint",
    summary = "Delete a webhook endpoint",
    description = "For admin keys. Its pending deliveries and its delivery log go with it.",
    success_description = "Deleted",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn delete_webhook_endpoint(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
) -> Result<NoContent, ApiError> {
    if state.webhooks.delete_endpoint(path.id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("webhook endpoint"))
    }
}

/// Rotates a webhook endpoint's signing secret.
#[api_operation(
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    summary = "Rotate a webhook endpoint's secret",
    description = "For admin keys. Answers the new secret (shown only now). For 24 hours the previous secret goes on signing too: deliveries carry two signatures in `webhook-signature`, so a receiver can switch secrets at any moment in that window.",
    success_description = "The new secret",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn rotate_webhook_secret(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
) -> Result<Reply<RotatedSecretBody>, ApiError> {
    let secret = generate_secret().map_err(|error| ApiError::internal(error.to_string()))?;
    let until = Utc::now() + PREVIOUS_SECRET_LIFETIME;
    state
        .webhooks
        .rotate_secret(path.id, &secret, until)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    Reply::new(&RotatedSecretBody {
        secret: secret.expose().to_owned(),
        previous_secret_expires_at: crate::wire::timestamp(until),
    })
}

/// The delivery log of a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    summary = "List a webhook endpoint's delivery attempts",
    description = "For admin keys. Every attempt, newest first: when, the status code answered or the transport error (refused, timed out, a forbidden address), and how long it took. Follow `next_cursor` for older ones.",
    success_description = "A page of attempts",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn list_webhook_deliveries(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
    query: web::Query<WebhookPageQuery>,
) -> Result<Reply<DeliveryAttemptPageBody>, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(cursor::delivery_attempt_position)
        .transpose()?;
    endpoint_or_404(&state, path.id).await?;
    let page = state
        .webhooks
        .attempts(path.id, before, limit.get() as usize)
        .await?;
    let next_cursor = page
        .has_more
        .then(|| {
            page.attempts
                .last()
                .map(|last| cursor::for_delivery_attempt(&last.id))
        })
        .flatten();
    Reply::new(&DeliveryAttemptPageBody {
        items: page
            .attempts
            .iter()
            .map(DeliveryAttemptBody::from)
            .collect(),
        next_cursor,
    })
}

/// Sends a test event to a webhook endpoint.
#[api_operation(
    tag = "webhooks",
    operation_id = "create_webhook_test",
    summary = "Send a test event",
    description = "For admin keys. Queues a `webhook.test` event (data: the endpoint id and a message) for this endpoint only, whatever its event types; it is signed and retried like any other, and is not in the event feed. Its attempts appear in the delivery log.",
    success_description = "The delivery queued",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn test_webhook_endpoint(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<WebhookEndpointPath>,
) -> Result<Reply<QueuedDeliveriesBody, 202>, ApiError> {
    let endpoint = endpoint_or_404(&state, path.id).await?;
    let delivery = test_delivery(endpoint.id);
    state
        .webhooks
        .enqueue(std::slice::from_ref(&delivery))
        .await?;
    Reply::new(&queued(&[delivery]))
}

/// Delivers an event again.
#[api_operation(
    tag = "webhooks",
    operation_id = "redeliver_event",
    summary = "Deliver an event again",
    description = "For admin keys. Queues a new delivery of the event (same `webhook-id`, same body, a fresh schedule) to the endpoint named by `endpoint_id`, or, with `{}`, to every enabled endpoint whose event types match. 404 for an unknown event (or one purged) or endpoint.",
    success_description = "The deliveries queued",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn redeliver_event(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<EventPath>,
    body: web::Json<RedeliverRequest>,
) -> Result<Reply<QueuedDeliveriesBody, 202>, ApiError> {
    let named = body.endpoint()?;
    let event = state
        .events
        .get(path.id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let endpoints = match named {
        Some(id) => vec![endpoint_or_404(&state, id).await?],
        None => {
            let mut matching = Vec::new();
            let mut after = Uuid::nil();
            loop {
                let (page, has_more) = state.webhooks.list_endpoints(after, 100).await?;
                after = page.last().map_or(after, |last| last.id);
                matching.extend(page.into_iter().filter(|endpoint| {
                    endpoint.enabled
                        && EventTypePattern::any_matches(&endpoint.event_types, event.event_type)
                }));
                if !has_more {
                    break matching;
                }
            }
        }
    };
    let now = Utc::now();
    let deliveries: Vec<NewDelivery> = endpoints
        .iter()
        .map(|endpoint| NewDelivery::of_event(endpoint.id, &event, now))
        .collect();
    state.webhooks.enqueue(&deliveries).await?;
    Reply::new(&queued(&deliveries))
}

fn queued(deliveries: &[NewDelivery]) -> QueuedDeliveriesBody {
    QueuedDeliveriesBody {
        deliveries: deliveries
            .iter()
            .map(|delivery| QueuedDeliveryBody {
                delivery_id: delivery.id,
                endpoint_id: delivery.endpoint_id,
                event_id: delivery.event_id,
            })
            .collect(),
    }
}
