//! `/api/events`: the event feed, for admin keys. Reading it never changes anything.

use actix_web::web;
use apistos::api_operation;
use bookstore_storage::events::EventDirection;

use crate::app::AppState;
use crate::http::auth::AdminCaller;
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::Reply;
use crate::wire::events::{EventBody, EventPageBody, EventPath, EventStart, ListEventsQuery};

/// Lists events.
#[api_operation(
    tag = "events",
    operation_id = "list_events",
    summary = "List events",
    description = "For admin keys (a customer key is 403). Newest first by default, paging with `next_cursor`; `order=oldest` reads oldest first, and `after=<event id>` the events recorded after that one, oldest first (a consumer catching up; an id the feed does not hold, never recorded or purged by retention, is 422). Filters: `type`, a comma-separated list of types (`order.placed`), resource wildcards (`order.*`) or `*`; `resource_id`. Pages never skip or repeat an event, also while events are being recorded: an event enters the feed once it has its place in the log's one order. Events are kept for `--event-retention-days` (30 by default).",
    success_description = "One page of events",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn list_events(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    query: web::Query<ListEventsQuery>,
) -> Result<Reply<EventPageBody>, ApiError> {
    let parsed = query.parse()?;
    let mut query = parsed.query;
    if let EventStart::AfterEvent(id) = parsed.start {
        let position = state
            .events
            .get(id)
            .await?
            .and_then(|event| event.position)
            .ok_or_else(|| {
                ApiError::validation(vec![FieldError::new(
                    "after",
                    "no event with this id is in the feed: it was never recorded, or retention purged it (start again with order=oldest)",
                )])
            })?;
        query.direction = EventDirection::OldestAfter(position);
    }
    let page = state.events.list(&query).await?;
    Reply::new(&EventPageBody::from_page(&page, query.direction)?)
}

/// Reads one event.
#[api_operation(
    tag = "events",
    operation_id = "get_event",
    summary = "Get an event",
    description = "For admin keys (a customer key is 403). An event not in the feed (unknown, purged by retention, or not yet given its place in the log) is 404.",
    success_description = "The event",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_event(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<EventPath>,
) -> Result<Reply<EventBody>, ApiError> {
    let event = state
        .events
        .get(path.id)
        .await?
        .filter(|event| event.position.is_some())
        .ok_or_else(|| ApiError::not_found("event"))?;
    Reply::new(&EventBody::from_event(&event)?)
}
