//! Postal addresses: the raw input a client sends and the checked [`Address`] made from it.
//!
//! An address is personal data. Neither type prints its contents through `Debug`, so an
//! address cannot reach a log by accident.

use std::fmt;

use crate::country::CountryCode;

/// The most characters a recipient, street line or city may have, after trimming.
const MAX_LINE_CHARS: usize = 200;

/// The most characters a postal code may have, after trimming.
const MAX_POSTAL_CODE_CHARS: usize = 20;

/// An address exactly as a client sent it, as plain strings; [`Address::parse`] checks it.
///
/// `Debug` is redacted by hand, as for [`Address`].
#[derive(Clone, Default)]
pub struct AddressInput {
    /// The person or company the parcel is for.
    pub recipient: String,
    /// The first street line.
    pub line1: String,
    /// An optional second street line; blank counts as absent.
    pub line2: Option<String>,
    /// The city or town.
    pub city: String,
    /// The postal code.
    pub postal_code: String,
    /// The ISO 3166-1 alpha-2 country code, in either case.
    pub country: String,
}

impl fmt::Debug for AddressInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddressInput(<redacted>)")
    }
}

/// A checked postal address.
///
/// Every text field is trimmed, non-empty, free of control characters and at most 200
/// characters long; the postal code is at most 20 ASCII letters, digits, spaces and hyphens;
/// the country is an assigned ISO 3166-1 code. `Debug` prints `Address(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    recipient: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    country: CountryCode,
}

/// One problem with one field of an [`AddressInput`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AddressFieldError {
    /// The field's name as it appears in JSON: `recipient`, `line1`, `line2`, `city`,
    /// `postal_code` or `country`.
    pub field: &'static str,
    /// What is wrong with it, lower-case, without the value itself.
    pub message: String,
}

impl Address {
    /// Checks every field of `input` and reports the problems of all bad fields at once
    /// (at most one problem per field, in field order).
    pub fn parse(input: AddressInput) -> Result<Self, Vec<AddressFieldError>> {
        let mut errors = Vec::new();
        let recipient = keep_or_record("recipient", parse_text_line(&input.recipient), &mut errors);
        let line1 = keep_or_record("line1", parse_text_line(&input.line1), &mut errors);
        let line2 = keep_or_record(
            "line2",
            parse_optional_text_line(input.line2.as_deref()),
            &mut errors,
        );
        let city = keep_or_record("city", parse_text_line(&input.city), &mut errors);
        let postal_code = keep_or_record(
            "postal_code",
            parse_postal_code(&input.postal_code),
            &mut errors,
        );
        let country = keep_or_record(
            "country",
            CountryCode::parse(input.country.trim()).map_err(|error| error.to_string()),
            &mut errors,
        );
        let (
            Some(recipient),
            Some(line1),
            Some(line2),
            Some(city),
            Some(postal_code),
            Some(country),
        ) = (recipient, line1, line2, city, postal_code, country)
        else {
            return Err(errors);
        };
        Ok(Self {
            recipient,
            line1,
            line2,
            city,
            postal_code,
            country,
        })
    }

    /// The person or company the parcel is for.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The first street line.
    pub fn line1(&self) -> &str {
        &self.line1
    }

    /// The second street line, if there is one.
    pub fn line2(&self) -> Option<&str> {
        self.line2.as_deref()
    }

    /// The city or town.
    pub fn city(&self) -> &str {
        &self.city
    }

    /// The postal code, as entered apart from surrounding whitespace.
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }

    /// The country.
    pub fn country(&self) -> CountryCode {
        self.country
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(<redacted>)")
    }
}

/// Returns the parsed value, or records the problem under `field` and returns `None`.
fn keep_or_record<T>(
    field: &'static str,
    parsed: Result<T, String>,
    errors: &mut Vec<AddressFieldError>,
) -> Option<T> {
    parsed
        .map_err(|message| errors.push(AddressFieldError { field, message }))
        .ok()
}

/// A recipient, street line or city: trimmed, non-empty, short, without control characters.
fn parse_text_line(input: &str) -> Result<String, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().count() > MAX_LINE_CHARS {
        return Err(format!("must be at most {MAX_LINE_CHARS} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// An optional line: absent, empty or whitespace-only means `None`.
fn parse_optional_text_line(input: Option<&str>) -> Result<Option<String>, String> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_text_line(text).map(Some),
    }
}

/// A postal code: trimmed, non-empty, at most 20 ASCII letters, digits, spaces and hyphens.
fn parse_postal_code(input: &str) -> Result<String, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().count() > MAX_POSTAL_CODE_CHARS {
        return Err(format!(
            "must be at most {MAX_POSTAL_CODE_CHARS} characters"
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return Err("may contain only letters, digits, spaces and hyphens".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete, valid address input for tests to start from.
    pub(crate) fn valid_address_input() -> AddressInput {
        AddressInput {
            recipient: "Ada Lovelace".to_owned(),
            line1: "12 St James's Square".to_owned(),
            line2: Some("Flat 3".to_owned()),
            city: "London".to_owned(),
            postal_code: "SW1Y 4JH".to_owned(),
            country: "GB".to_owned(),
        }
    }

    /// A valid address for tests that need one.
    pub(crate) fn valid_address() -> Address {
        Address::parse(valid_address_input()).unwrap()
    }

    #[test]
    fn a_valid_address_is_trimmed_and_its_country_upper_cased() {
        let address = Address::parse(AddressInput {
            recipient: "  Ada Lovelace ".to_owned(),
            line1: "\t12 St James's Square\n".to_owned(),
            line2: Some(" Flat 3 ".to_owned()),
            city: " London".to_owned(),
            postal_code: "SW1Y 4JH ".to_owned(),
            country: " gb ".to_owned(),
        })
        .unwrap();
        assert_eq!(address.recipient(), "Ada Lovelace");
        assert_eq!(address.line1(), "12 St James's Square");
        assert_eq!(address.line2(), Some("Flat 3"));
        assert_eq!(address.city(), "London");
        assert_eq!(address.postal_code(), "SW1Y 4JH");
        assert_eq!(address.country().as_str(), "GB");
    }

    #[test]
    fn a_missing_or_blank_second_line_is_absent() {
        for line2 in [None, Some(""), Some("   \t")] {
            let input = AddressInput {
                line2: line2.map(str::to_owned),
                ..valid_address_input()
            };
            assert_eq!(Address::parse(input).unwrap().line2(), None, "{line2:?}");
        }
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let input = AddressInput {
            city: "é".repeat(MAX_LINE_CHARS),
            postal_code: "1".repeat(MAX_POSTAL_CODE_CHARS),
            ..valid_address_input()
        };
        assert!(Address::parse(input).is_ok());
    }

    #[test]
    fn each_bad_field_is_reported_with_its_json_name() {
        type Change = fn(&mut AddressInput);
        let cases: Vec<(&str, Change, &str, &str)> = vec![
            (
                "empty recipient",
                |i| i.recipient = String::new(),
                "recipient",
                "must not be empty",
            ),
            (
                "blank recipient",
                |i| i.recipient = " \t ".to_owned(),
                "recipient",
                "must not be empty",
            ),
            (
                "long recipient",
                |i| i.recipient = "a".repeat(201),
                "recipient",
                "must be at most 200 characters",
            ),
            (
                "recipient with newline",
                |i| i.recipient = "Ada\nLovelace".to_owned(),
                "recipient",
                "must not contain control characters",
            ),
            (
                "empty line1",
                |i| i.line1 = String::new(),
                "line1",
                "must not be empty",
            ),
            (
                "long line1",
                |i| i.line1 = "a".repeat(201),
                "line1",
                "must be at most 200 characters",
            ),
            (
                "line1 with escape",
                |i| i.line1 = "12\u{1b}[31m Road".to_owned(),
                "line1",
                "must not contain control characters",
            ),
            (
                "long line2",
                |i| i.line2 = Some("a".repeat(201)),
                "line2",
                "must be at most 200 characters",
            ),
            (
                "line2 with nul",
                |i| i.line2 = Some("Flat\u{0}3".to_owned()),
                "line2",
                "must not contain control characters",
            ),
            (
                "empty city",
                |i| i.city = String::new(),
                "city",
                "must not be empty",
            ),
            (
                "long city",
                |i| i.city = "a".repeat(201),
                "city",
                "must be at most 200 characters",
            ),
            (
                "city with tab",
                |i| i.city = "Lon\tdon".to_owned(),
                "city",
                "must not contain control characters",
            ),
            (
                "empty postal code",
                |i| i.postal_code = String::new(),
                "postal_code",
                "must not be empty",
            ),
            (
                "long postal code",
                |i| i.postal_code = "1".repeat(21),
                "postal_code",
                "must be at most 20 characters",
            ),
            (
                "postal code with slash",
                |i| i.postal_code = "SW1Y/4JH".to_owned(),
                "postal_code",
                "may contain only letters, digits, spaces and hyphens",
            ),
            (
                "postal code with accent",
                |i| i.postal_code = "É1".to_owned(),
                "postal_code",
                "may contain only letters, digits, spaces and hyphens",
            ),
            (
                "empty country",
                |i| i.country = String::new(),
                "country",
                "a country code is two letters, such as GB or US",
            ),
            (
                "three-letter country",
                |i| i.country = "GBR".to_owned(),
                "country",
                "a country code is two letters, such as GB or US",
            ),
            (
                "reserved country",
                |i| i.country = "UK".to_owned(),
                "country",
                "UK is not an assigned ISO 3166-1 alpha-2 country code",
            ),
            (
                "user-assigned country",
                |i| i.country = "zz".to_owned(),
                "country",
                "ZZ is not an assigned ISO 3166-1 alpha-2 country code",
            ),
        ];
        for (name, change, field, message) in cases {
            let mut input = valid_address_input();
            change(&mut input);
            let errors = Address::parse(input).unwrap_err();
            assert_eq!(
                errors,
                [AddressFieldError {
                    field,
                    message: message.to_owned()
                }],
                "{name}"
            );
        }
    }

    #[test]
    fn several_bad_fields_are_reported_together_in_field_order() {
        let input = AddressInput {
            recipient: String::new(),
            line1: "ok".to_owned(),
            line2: Some("a\u{7}".to_owned()),
            city: " ".to_owned(),
            postal_code: "12#45".to_owned(),
            country: "EU".to_owned(),
        };
        let fields: Vec<_> = Address::parse(input)
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(
            fields,
            ["recipient", "line2", "city", "postal_code", "country"]
        );
    }

    #[test]
    fn an_empty_input_reports_every_required_field() {
        let fields: Vec<_> = Address::parse(AddressInput::default())
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(
            fields,
            ["recipient", "line1", "city", "postal_code", "country"]
        );
    }

    #[test]
    fn debug_output_does_not_reveal_the_address() {
        let input = valid_address_input();
        let address = valid_address();
        for printed in [
            format!("{input:?}"),
            format!("{address:?}"),
            format!("{address:#?}"),
        ] {
            for secret in ["Ada", "Lovelace", "James", "Flat", "London", "SW1Y"] {
                assert!(!printed.contains(secret), "{printed} reveals {secret}");
            }
        }
        assert_eq!(format!("{address:?}"), "Address(<redacted>)");
    }

    #[test]
    fn field_errors_do_not_repeat_the_rejected_value() {
        let input = AddressInput {
            postal_code: "Secret/Code".to_owned(),
            ..valid_address_input()
        };
        let errors = Address::parse(input).unwrap_err();
        assert!(!errors[0].to_string().contains("Secret"));
    }
}
