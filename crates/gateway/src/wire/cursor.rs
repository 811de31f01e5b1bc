//! Opaque page cursors: a tag letter and a position, hex-encoded. A cursor holds a
//! position (the last item seen), never an offset.

use bookstore_delivery::DeliveryId;
use bookstore_storage::events::EventDirection;
use bookstore_types::{Isbn, OrderId};

use crate::http::problem::ApiError;

fn encode(tag: u8, position: &str) -> String {
    let mut bytes = Vec::with_capacity(1 + position.len());
    bytes.push(tag);
    bytes.extend_from_slice(position.as_bytes());
    hex::encode(bytes)
}

fn decode(tag: u8, cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::malformed("the cursor is not one this server issued");
    // Only what `encode` writes: lowercase hexadecimal digits (the decoder also takes
    // capitals, which no issued cursor holds).
    let lowercase_hex = |byte: u8| matches!(byte, b'0'..=b'9' | b'a'..=b'f');
    if cursor.len() > 200 || !cursor.bytes().all(lowercase_hex) {
        return Err(invalid());
    }
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    match bytes.split_first() {
        Some((&first, rest)) if first == tag => {
            String::from_utf8(rest.to_vec()).map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

/// The cursor after book `isbn`.
pub fn for_book(isbn: &Isbn) -> String {
    encode(b'b', isbn.as_str())
}

/// The book position a cursor holds (400 if it is not a book cursor as [`for_book`]
/// writes it).
pub fn book_position(cursor: &str) -> Result<Isbn, ApiError> {
    let text = decode(b'b', cursor)?;
    Isbn::parse(&text)
        .ok()
        .filter(|isbn| isbn.as_str() == text)
        .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
}

/// The cursor after order `id`.
pub fn for_order(id: &OrderId) -> String {
    encode(b'o', &id.to_string())
}

/// The order position a cursor holds (400 if it is not an order cursor as [`for_order`]
/// writes it).
pub fn order_position(cursor: &str) -> Result<OrderId, ApiError> {
    let text = decode(b'o', cursor)?;
    text.parse::<OrderId>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
}

/// The cursor after delivery `id`.
pub fn for_delivery(id: &DeliveryId) -> String {
    encode(b'd', &id.to_string())
}

/// The delivery position a cursor holds (400 if it is not a delivery cursor as
/// [`for_delivery`] writes it).
pub fn delivery_position(cursor: &str) -> Result<DeliveryId, ApiError> {
    let text = decode(b'd', cursor)?;
    text.parse::<DeliveryId>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
}

/// The cursor after webhook endpoint `id`.
pub fn for_webhook_endpoint(id: &uuid::Uuid) -> String {
    encode(b'w', &id.to_string())
}

/// The webhook endpoint position a cursor holds (400 if [`for_webhook_endpoint`] did not
/// write it).
pub fn webhook_endpoint_position(cursor: &str) -> Result<uuid::Uuid, ApiError> {
    uuid_position(b'w', cursor)
}

/// The cursor after delivery attempt `id` (the delivery log goes newest first).
pub fn for_delivery_attempt(id: &uuid::Uuid) -> String {
    encode(b'a', &id.to_string())
}

/// The attempt position a cursor holds (400 if [`for_delivery_attempt`] did not write it).
pub fn delivery_attempt_position(cursor: &str) -> Result<uuid::Uuid, ApiError> {
    uuid_position(b'a', cursor)
}

fn uuid_position(tag: u8, cursor: &str) -> Result<uuid::Uuid, ApiError> {
    let text = decode(tag, cursor)?;
    text.parse::<uuid::Uuid>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| ApiError::malformed("the cursor is not one this server issued"))
}

/// The cursor of the newest-first page of events before `position`.
pub fn for_events_before(position: u64) -> String {
    encode(b'e', &position.to_string())
}

/// The cursor of the oldest-first page of events after `position`.
pub fn for_events_after(position: u64) -> String {
    encode(b'f', &position.to_string())
}

/// The direction and position an events cursor holds (400 if it is not an events cursor
/// as [`for_events_before`] or [`for_events_after`] writes it).
pub fn events_position(cursor: &str) -> Result<EventDirection, ApiError> {
    let invalid = || ApiError::malformed("the cursor is not one this server issued");
    let (text, direction): (String, fn(u64) -> EventDirection) = match decode(b'e', cursor) {
        Ok(text) => (text, |position| {
            EventDirection::NewestBefore(Some(position))
        }),
        Err(_) => (decode(b'f', cursor)?, EventDirection::OldestAfter),
    };
    text.parse::<u64>()
        .ok()
        .filter(|position| position.to_string() == text)
        .map(direction)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::cursor;

    fn hex(text: &str) -> String {
        hex::encode(text)
    }

    #[test]
    fn cursors_are_read_only_as_this_server_writes_them() {
        let isbn = Isbn::parse("9780134685991").unwrap();
        let issued = cursor::for_book(&isbn);
        assert_eq!(issued, hex("b9780134685991"));
        for other_spelling in [
            hex("b978-0-13-468599-1"),
            hex("b0134685997"),
            hex("b 9780134685991"),
        ] {
            assert_ne!(other_spelling, issued);
            assert!(
                cursor::book_position(&other_spelling).is_err(),
                "{other_spelling:?}"
            );
        }
        let order = OrderId::generate();
        let issued = cursor::for_order(&order);
        assert_eq!(cursor::order_position(&issued).unwrap(), order);
        let text = order.to_string();
        assert_ne!(issued.to_uppercase(), issued, "a UUID's hex holds letters");
        for other_spelling in [
            issued.to_uppercase(),
            hex(&format!("o{}", text.to_uppercase())),
            hex(&format!("o{{{text}}}")),
            hex(&format!("o{}", text.replace('-', ""))),
        ] {
            assert!(
                cursor::order_position(&other_spelling).is_err(),
                "{other_spelling:?}"
            );
        }
        let delivery = DeliveryId::generate();
        let issued = cursor::for_delivery(&delivery);
        assert_eq!(cursor::delivery_position(&issued).unwrap(), delivery);
        assert!(cursor::delivery_position(&issued.to_uppercase()).is_err());
        let text = delivery.to_string();
        assert!(cursor::delivery_position(&hex(&format!("d{}", text.replace('-', "")))).is_err());
    }

    #[test]
    fn cursors_round_trip_and_foreign_cursors_are_rejected() {
        let isbn = Isbn::parse("9780134685991").unwrap();
        // Clients keep cursors across deploys: the encoding is fixed (hex of `b` + ISBN).
        assert_eq!(cursor::for_book(&isbn), "6239373830313334363835393931");
        assert_eq!(
            cursor::book_position(&cursor::for_book(&isbn)).unwrap(),
            isbn
        );
        let order = OrderId::generate();
        assert_eq!(
            cursor::order_position(&cursor::for_order(&order)).unwrap(),
            order
        );
        for bad in [
            "",
            "zz",
            "6",
            &cursor::for_order(&order),
            "62393738",
            "ffff",
        ] {
            assert!(cursor::book_position(bad).is_err(), "{bad:?}");
        }
        assert!(cursor::order_position(&cursor::for_book(&isbn)).is_err());
    }

    #[test]
    fn events_cursors_keep_their_direction_and_only_plain_positions() {
        assert_eq!(
            cursor::events_position(&cursor::for_events_before(42)).unwrap(),
            EventDirection::NewestBefore(Some(42))
        );
        assert_eq!(
            cursor::events_position(&cursor::for_events_after(42)).unwrap(),
            EventDirection::OldestAfter(42)
        );
        for bad in [
            hex("e+42"),
            hex("f042"),
            hex("e"),
            hex("f-1"),
            cursor::for_order(&OrderId::generate()),
        ] {
            assert!(cursor::events_position(&bad).is_err(), "{bad:?}");
        }
    }
}
