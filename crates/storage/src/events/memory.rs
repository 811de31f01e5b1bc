//! [`InMemoryEventLog`]: the event log of the in-memory stores.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::EventTypePattern;
use super::{Event, EventDirection, EventLog, EventPage, EventQuery, EventsUnavailable, NewEvent};

/// The event log of a process that keeps everything in memory.
///
/// [`record`](InMemoryEventLog::record) gives each event the next position and its
/// resource's next sequence number at once, under one lock: the in-memory stores call it
/// while they hold the lock of the change, so the change and its events are seen together.
#[derive(Debug, Default)]
pub struct InMemoryEventLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// In position order.
    events: Vec<Event>,
    sequences: HashMap<String, u64>,
    last_position: u64,
}

impl InMemoryEventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole events only: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `events` in order, positioned and numbered; answers them as recorded.
    pub fn record(&self, events: impl IntoIterator<Item = NewEvent>) -> Vec<Event> {
        let mut state = self.lock();
        let mut recorded = Vec::new();
        for event in events {
            state.last_position += 1;
            let position = state.last_position;
            let sequence = state
                .sequences
                .entry(event.resource_id.clone())
                .and_modify(|last| *last += 1)
                .or_insert(1);
            let event = Event {
                id: event.id,
                position: Some(position),
                event_type: event.event_type,
                resource_id: event.resource_id,
                sequence: *sequence,
                created_at: event.created_at,
                data: event.data,
            };
            state.events.push(event.clone());
            recorded.push(event);
        }
        recorded
    }
}

fn selected(query: &EventQuery, event: &Event) -> bool {
    (query.types.is_empty() || EventTypePattern::any_matches(&query.types, event.event_type))
        && query
            .resource_id
            .as_ref()
            .is_none_or(|resource| *resource == event.resource_id)
}

#[async_trait]
impl EventLog for InMemoryEventLog {
    async fn list(&self, query: &EventQuery) -> Result<EventPage, EventsUnavailable> {
        let state = self.lock();
        let limit = query.limit.get() as usize;
        let position = |event: &Event| event.position.unwrap_or(0);
        let mut matching: Box<dyn Iterator<Item = &Event>> = match query.direction {
            EventDirection::NewestBefore(before) => Box::new(
                state
                    .events
                    .iter()
                    .rev()
                    .filter(move |event| before.is_none_or(|before| position(event) < before)),
            ),
            EventDirection::OldestAfter(after) => {
                let start = state
                    .events
                    .partition_point(|event| position(event) <= after);
                Box::new(state.events[start..].iter())
            }
        };
        let mut events = Vec::with_capacity(limit);
        for event in matching.by_ref().filter(|event| selected(query, event)) {
            if events.len() == limit {
                return Ok(EventPage {
                    events,
                    has_more: true,
                });
            }
            events.push(event.clone());
        }
        Ok(EventPage {
            events,
            has_more: false,
        })
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, EventsUnavailable> {
        Ok(self
            .lock()
            .events
            .iter()
            .find(|event| event.id == id)
            .cloned())
    }

    async fn after(&self, position: u64, limit: usize) -> Result<Vec<Event>, EventsUnavailable> {
        let state = self.lock();
        let start = state
            .events
            .partition_point(|event| event.position.unwrap_or(0) <= position);
        Ok(state.events[start..].iter().take(limit).cloned().collect())
    }

    async fn sequence(&self) -> Result<u64, EventsUnavailable> {
        Ok(0)
    }

    async fn last_position(&self) -> Result<u64, EventsUnavailable> {
        Ok(self.lock().last_position)
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, EventsUnavailable> {
        // The newest event is kept, as the SQL logs keep it.
        let mut state = self.lock();
        let Some(newest) = state.events.last().map(|event| event.id) else {
            return Ok(0);
        };
        let count = state.events.len();
        state
            .events
            .retain(|event| event.created_at >= before || event.id == newest);
        Ok((count - state.events.len()) as u64)
    }
}
