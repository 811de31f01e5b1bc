//! The bodies of the event feed (`GET /api/events`, `GET /api/events/{id}`): an event with
//! its stored JSON embedded as is, a page of them, and the feed's query parameters.

use apistos::{ApiComponent, JsonSchema};
use bookstore_storage::events::{
    Event, EventDirection, EventPage, EventQuery, EventType, EventTypePattern,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{FieldError, page_limit, parse_uuid, timestamp};
use crate::http::problem::ApiError;
use crate::wire::cursor;

/// One event of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Event", transform = event_type_is_an_enum)]
pub struct EventBody {
    /// The event's id: a UUID v7, so ids sort roughly by time. Equal in the feed, in
    /// webhook deliveries (`webhook-id`) and on NATS (`Nats-Msg-Id`).
    pub id: Uuid,
    /// What happened, `resource.change` (e.g. `order.placed`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was recorded (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
    /// 1 for the resource's first event, then 2, 3, …: drop an event whose `sequence` is
    /// lower than one you already have for the same `resource_id`.
    pub sequence: u64,
    /// The resource it is about: an ISBN (books), an order id, a payment's transaction id or
    /// a delivery id.
    pub resource_id: String,
    /// The resource as the API returned it at that moment (the body of `GET` on it).
    #[schemars(with = "serde_json::Value")]
    pub data: Box<RawValue>,
}

/// The `type` property's schema: an enum of every event type, in catalogue order.
fn event_type_is_an_enum(schema: &mut apistos::schemars::Schema) {
    let names: Vec<serde_json::Value> = EventType::ALL
        .iter()
        .map(|kind| kind.as_str().into())
        .collect();
    if let Some(property) = schema
        .get_mut("properties")
        .and_then(|properties| properties.get_mut("type"))
        .and_then(serde_json::Value::as_object_mut)
    {
        property.insert("enum".to_owned(), names.into());
    }
}

impl EventBody {
    /// The body of `event`; a stored `data` that is not JSON (it always is: the stores write
    /// what the renderer wrote) is a 500.
    pub fn from_event(event: &Event) -> Result<Self, ApiError> {
        let data = RawValue::from_string(event.data.clone()).map_err(ApiError::internal)?;
        Ok(Self {
            id: event.id,
            event_type: event.event_type.as_str().to_owned(),
            created_at: timestamp(event.created_at),
            sequence: event.sequence,
            resource_id: event.resource_id.clone(),
            data,
        })
    }
}

/// One page of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "EventPage", transform = super::next_cursor_is_always_present)]
pub struct EventPageBody {
    /// The events, newest first (the default) or oldest first (`order=oldest`, `after`).
    pub items: Vec<EventBody>,
    /// Pass as `cursor` to get the next page in the same direction; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl EventPageBody {
    /// The body of `page`, read in `direction`.
    pub fn from_page(page: &EventPage, direction: EventDirection) -> Result<Self, ApiError> {
        let items = page
            .events
            .iter()
            .map(EventBody::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        let last = page.events.last().and_then(|event| event.position);
        let next_cursor = match (page.has_more, last) {
            (true, Some(position)) => Some(match direction {
                EventDirection::NewestBefore(_) => cursor::for_events_before(position),
                EventDirection::OldestAfter(_) => cursor::for_events_after(position),
            }),
            _ => None,
        };
        Ok(Self { items, next_cursor })
    }
}

/// Which end of the feed a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", transform = super::string_enum)]
#[serde(rename_all = "snake_case")]
pub enum EventOrder {
    /// Newest first (the default).
    Newest,
    /// Oldest first: a consumer catching up.
    Oldest,
}

/// Query parameters of `GET /api/events`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListEventsQuery {
    /// Only events of these types: a comma-separated list of types (`order.placed`),
    /// resource wildcards (`order.*`) or `*`, e.g. `order.*,book.out_of_stock`.
    #[serde(rename = "type")]
    pub types: Option<String>,
    /// Only events about this resource (an ISBN, an order, transaction or delivery id).
    pub resource_id: Option<String>,
    /// `newest` (the default) or `oldest` first.
    pub order: Option<EventOrder>,
    /// An event id: the events recorded after it, oldest first (a consumer's catch-up from
    /// the last event it handled). Not with `order=newest` nor with `cursor`.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
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

/// Where a page starts, before an `after` id is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStart {
    /// A direction and position known already (no `after`, or a cursor).
    Known(EventDirection),
    /// Oldest first after the event with this id, whose position is still to be found.
    AfterEvent(Uuid),
}

/// The feed's query, parsed; `start` may still name an event to look up.
#[derive(Debug, Clone)]
pub struct ParsedEventsQuery {
    /// The filters and page size; its direction is replaced once `start` is resolved.
    pub query: EventQuery,
    /// Where the page starts.
    pub start: EventStart,
}

impl ListEventsQuery {
    /// The parsed query, or a problem naming each bad parameter (422), or a 400 for a
    /// cursor this server did not issue or a bad `limit`.
    pub fn parse(&self) -> Result<ParsedEventsQuery, ApiError> {
        let mut errors = Vec::new();
        let mut types = Vec::new();
        if let Some(list) = &self.types {
            for text in list.split(',') {
                match EventTypePattern::parse(text) {
                    Ok(pattern) => types.push(pattern),
                    Err(error) => errors.push(FieldError::new("type", error)),
                }
            }
        }
        if self
            .resource_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 100)
        {
            errors.push(FieldError::new(
                "resource_id",
                "must be 1 to 100 characters",
            ));
        }
        let limit = page_limit(self.limit)?;
        let from_cursor = self
            .cursor
            .as_deref()
            .map(cursor::events_position)
            .transpose()?;
        let after = match self.after.as_deref() {
            None => None,
            Some(text) => match parse_uuid(text) {
                Ok(id) => Some(id),
                Err(message) => {
                    errors.push(FieldError::new("after", format!("the event id {message}")));
                    None
                }
            },
        };
        if self.after.is_some() && self.cursor.is_some() {
            errors.push(FieldError::new(
                "after",
                "give either after (the first page) or cursor (the next ones), not both",
            ));
        }
        if self.after.is_some() && self.order == Some(EventOrder::Newest) {
            errors.push(FieldError::new(
                "order",
                "after reads oldest first: it cannot be combined with order=newest",
            ));
        }
        let cursor_order = from_cursor.map(|direction| match direction {
            EventDirection::NewestBefore(_) => EventOrder::Newest,
            EventDirection::OldestAfter(_) => EventOrder::Oldest,
        });
        if let (Some(asked), Some(cursor_order)) = (self.order, cursor_order)
            && asked != cursor_order
        {
            errors.push(FieldError::new(
                "order",
                "the cursor continues the other order: keep the order of the first page",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let start = match (from_cursor, after, self.order) {
            (Some(direction), _, _) => EventStart::Known(direction),
            (None, Some(id), _) => EventStart::AfterEvent(id),
            (None, None, Some(EventOrder::Oldest)) => {
                EventStart::Known(EventDirection::OldestAfter(0))
            }
            (None, None, _) => EventStart::Known(EventDirection::NewestBefore(None)),
        };
        let direction = match start {
            EventStart::Known(direction) => direction,
            EventStart::AfterEvent(_) => EventDirection::OldestAfter(0),
        };
        Ok(ParsedEventsQuery {
            query: EventQuery {
                types,
                resource_id: self.resource_id.clone(),
                direction,
                limit,
            },
            start,
        })
    }
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

    fn query(pairs: &str) -> Result<ParsedEventsQuery, ApiError> {
        let query: ListEventsQuery = serde_urlencoded_from(pairs);
        query.parse()
    }

    fn serde_urlencoded_from(pairs: &str) -> ListEventsQuery {
        actix_web::web::Query::<ListEventsQuery>::from_query(pairs)
            .expect("the test query deserializes")
            .into_inner()
    }

    fn invalid_fields(error: &ApiError) -> Vec<String> {
        assert_eq!(error.kind().status().as_u16(), 422, "{error:?}");
        error
            .problem()
            .errors
            .iter()
            .map(|field| field.field.clone())
            .collect()
    }

    #[test]
    fn types_are_a_comma_separated_list_of_types_and_wildcards() {
        let parsed = query("type=order.*,book.created,*").unwrap();
        assert_eq!(
            parsed.query.types,
            vec![
                EventTypePattern::Resource("order".to_owned()),
                EventTypePattern::Exactly(EventType::BookCreated),
                EventTypePattern::Any,
            ]
        );
        assert_eq!(
            parsed.start,
            EventStart::Known(EventDirection::NewestBefore(None))
        );
        for bad in [
            "type=order.shipped",
            "type=order.*,",
            "type=",
            "type=orders.*",
        ] {
            assert_eq!(invalid_fields(&query(bad).unwrap_err()), ["type"], "{bad}");
        }
    }

    #[test]
    fn after_reads_oldest_first_and_excludes_newest_first_and_cursors() {
        let id = Uuid::now_v7();
        let parsed = query(&format!("after={id}")).unwrap();
        assert_eq!(parsed.start, EventStart::AfterEvent(id));
        let parsed = query("order=oldest").unwrap();
        assert_eq!(
            parsed.start,
            EventStart::Known(EventDirection::OldestAfter(0))
        );
        assert_eq!(
            invalid_fields(&query(&format!("after={id}&order=newest")).unwrap_err()),
            ["order"]
        );
        let next = cursor::for_events_after(7);
        assert_eq!(
            invalid_fields(&query(&format!("after={id}&cursor={next}")).unwrap_err()),
            ["after"]
        );
        assert_eq!(
            invalid_fields(&query(&format!("order=newest&cursor={next}")).unwrap_err()),
            ["order"]
        );
        assert_eq!(
            query(&format!("order=oldest&cursor={next}")).unwrap().start,
            EventStart::Known(EventDirection::OldestAfter(7))
        );
        assert_eq!(invalid_fields(&query("after=7").unwrap_err()), ["after"]);
    }
}
