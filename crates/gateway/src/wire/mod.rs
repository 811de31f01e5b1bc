//! The JSON bodies of the API, and their conversion to and from domain types: one module
//! per resource ([`books`], [`orders`], [`deliveries`], [`tracking`]), the opaque page
//! [`cursor`]s, and here the exact text formats every resource reads.
//!
//! Domain crates know nothing of JSON field names or the OpenAPI schema: these types are
//! the wire contract described in `docs/openapi.json`. Requests arrive as plain JSON values
//! (strings, integers) and are parsed into domain types, collecting every field error into
//! one 422; responses are built from domain types.

pub mod books;
pub mod cursor;
pub mod deliveries;
pub mod event_data;
pub mod events;
pub mod orders;
pub mod tracking;
pub mod webhooks;

use bookstore_types::PageLimit;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::problem::{ApiError, FieldError};

/// Renders a timestamp as RFC 3339 in UTC with millisecond precision.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// Strict text formats
//
// Each value the API reads from text has one spelling. The general-purpose parsers are
// more forgiving than the contract (chrono reads `2030-1-1` and ` +2030-01-01` as a date,
// uuid reads braced, `urn:uuid:` and unhyphenated forms, integer parsing takes a `+`), so
// these check the exact shape first and then let those parsers compute the value.

/// A calendar date written exactly `YYYY-MM-DD`: four digits, two, two, with hyphens.
pub fn parse_date(text: &str) -> Result<NaiveDate, &'static str> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err("must be a date written exactly YYYY-MM-DD, e.g. 2030-01-31");
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "is not a date of the calendar")
}

/// A UUID written as 36 characters, hexadecimal digits grouped 8-4-4-4-12 by hyphens
/// (either case, as RFC 9562 asks of readers); no braces, no `urn:uuid:`, no bare 32 digits.
pub fn parse_uuid(text: &str) -> Result<Uuid, &'static str> {
    const MESSAGE: &str =
        "must be a UUID: 36 characters, hexadecimal digits grouped 8-4-4-4-12 by hyphens";
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        });
    if !shaped {
        return Err(MESSAGE);
    }
    Uuid::try_parse(text).map_err(|_| MESSAGE)
}

/// Deserializes a path segment with [`parse_uuid`].
fn deserialize_uuid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    parse_uuid(&text).map_err(|message| serde::de::Error::custom(format!("the id {message}")))
}

/// Deserializes the `limit` query parameter: decimal digits only (no sign, no leading zero,
/// no spaces). The range is checked by [`page_limit`].
fn deserialize_limit<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    let plain = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    if !plain {
        return Err(serde::de::Error::custom(
            "limit must be an integer from 1 to 100, written in plain digits",
        ));
    }
    // Digits only: the one way to fail is a number too large for u64, which is out of range.
    Ok(Some(text.parse().unwrap_or(u64::MAX)))
}

/// The schema of a status enum as a string with an `enum` list. schemars describes an enum
/// whose variants have doc comments as a `oneOf` of one-value schemas, which generators turn
/// into untagged unions or plain strings; the `enum` list becomes an enum type everywhere.
pub fn string_enum(schema: &mut apistos::schemars::Schema) {
    let Some(serde_json::Value::Array(variants)) = schema.remove("oneOf") else {
        return;
    };
    let values: Vec<serde_json::Value> = variants
        .iter()
        .filter_map(|variant| variant.get("const").cloned())
        .collect();
    schema.insert("type".to_owned(), "string".into());
    schema.insert("enum".to_owned(), values.into());
}

/// Page bodies always carry `next_cursor` (a cursor, or `null` on the last page), so their
/// schemas list it as required; schemars leaves an `Option` out of `required` on its own.
fn next_cursor_is_always_present(schema: &mut apistos::schemars::Schema) {
    let required = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let serde_json::Value::Array(names) = required
        && !names.iter().any(|name| name == "next_cursor")
    {
        names.push("next_cursor".into());
    }
}

/// Checks a `limit` query parameter (400 outside the [`PageLimit`] range).
pub fn page_limit(limit: Option<u64>) -> Result<PageLimit, ApiError> {
    let Some(value) = limit else {
        return Ok(PageLimit::default());
    };
    PageLimit::new(value).map_err(|_| {
        ApiError::malformed(format!(
            "limit must be between {} and {}, got {value}",
            PageLimit::MIN,
            PageLimit::MAX
        ))
    })
}

fn collect<T, E: std::fmt::Display>(
    field: &str,
    result: Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    result
        .map_err(|error| errors.push(FieldError::new(field, error)))
        .ok()
}

/// Fails with one 422 listing every field error, if there are any.
fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::orders::ListOrdersQuery;

    #[test]
    fn page_limits_outside_one_to_one_hundred_are_rejected() {
        assert_eq!(page_limit(None).unwrap().get(), 20);
        assert_eq!(page_limit(Some(100)).unwrap().get(), 100);
        for bad in [0, 101, u64::MAX] {
            assert_eq!(
                page_limit(Some(bad)).unwrap_err().kind().status().as_u16(),
                400
            );
        }
    }

    #[test]
    fn dates_are_read_only_when_written_exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2030-01-31"),
            Ok(NaiveDate::from_ymd_opt(2030, 1, 31).unwrap())
        );
        assert_eq!(
            parse_date("2028-02-29"),
            Ok(NaiveDate::from_ymd_opt(2028, 2, 29).unwrap())
        );
        for bad in [
            "2030-1-1",
            "2030-01-1",
            "2030-1-01",
            " 2030-01-01",
            "2030-01-01 ",
            "+2030-01-01",
            "02030-01-01",
            "2030/01/01",
            "20300101",
            "2030-01-01T00:00:00Z",
            "２０３０-01-01",
            "",
        ] {
            assert!(
                parse_date(bad).unwrap_err().contains("YYYY-MM-DD"),
                "{bad:?}"
            );
        }
        for impossible in ["2030-02-29", "2030-13-01", "2030-00-10", "2030-04-31"] {
            assert_eq!(
                parse_date(impossible),
                Err("is not a date of the calendar"),
                "{impossible:?}"
            );
        }
    }

    #[test]
    fn uuids_are_read_only_in_their_hyphenated_form() {
        let id = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        assert_eq!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"), Ok(id));
        assert_eq!(parse_uuid("67E55044-10B1-426F-9247-BB680E5FE0C8"), Ok(id));
        for bad in [
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c8",
            " 67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e55044-10b1-426f-9247_bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
            "",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_read_only_as_plain_digits() {
        let limit = |query: &str| {
            actix_web::web::Query::<ListOrdersQuery>::from_query(query)
                .map(|query| query.into_inner().limit)
        };
        assert_eq!(limit("").unwrap(), None);
        assert_eq!(limit("limit=1").unwrap(), Some(1));
        assert_eq!(limit("limit=100").unwrap(), Some(100));
        // Out of range, but plainly written: `page_limit` answers with the range.
        assert_eq!(limit("limit=0").unwrap(), Some(0));
        assert_eq!(
            limit("limit=99999999999999999999999").unwrap(),
            Some(u64::MAX)
        );
        for bad in [
            "limit=%2B20",
            "limit=020",
            "limit=+20",
            "limit=%2020",
            "limit=20%20",
            "limit=-1",
            "limit=1e2",
            "limit=20.0",
            "limit=",
            "limit=20&limit=30",
        ] {
            assert!(limit(bad).is_err(), "{bad:?}");
        }
    }
}
