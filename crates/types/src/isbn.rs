//! International Standard Book Numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A valid ISBN-13, stored as its 13 ASCII digits.
///
/// [`Isbn::parse`] accepts ISBN-13 or ISBN-10, with or without hyphens and spaces, verifies
/// the check digit and always yields the bare 13-digit form. Ordering is the ordering of
/// those digit strings, so a sorted list of `Isbn`s is sorted as the API renders them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Isbn([u8; 13]);

/// Why a string is not an ISBN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsbnError {
    /// A character other than a digit, a hyphen, a space, or a final `X` in an ISBN-10.
    #[error("an ISBN may only contain digits, hyphens and spaces")]
    InvalidCharacter,
    /// Neither 10 nor 13 digits once separators are removed.
    #[error("an ISBN has 10 or 13 digits, got {digits}")]
    WrongLength {
        /// How many digits and check characters were found.
        digits: usize,
    },
    /// The check digit does not match the other digits.
    #[error("the ISBN check digit is wrong")]
    BadChecksum,
    /// An ISBN-13 must start with the prefix 978 or 979.
    #[error("an ISBN-13 starts with 978 or 979")]
    BadPrefix,
}

impl Isbn {
    /// Parses an ISBN-13 or ISBN-10 written with optional hyphens or spaces.
    pub fn parse(input: &str) -> Result<Self, IsbnError> {
        let mut chars = [0u8; 13];
        let mut len = 0usize;
        // Hyphens and spaces are skipped wherever they are; any other character, other
        // whitespace (tabs, line breaks, no-break spaces) included, is refused.
        for c in input.bytes() {
            match c {
                b'-' | b' ' => continue,
                b'0'..=b'9' | b'X' | b'x' => {
                    if len < chars.len() {
                        chars[len] = c.to_ascii_uppercase();
                    }
                    len += 1;
                }
                _ => return Err(IsbnError::InvalidCharacter),
            }
        }
        match len {
            13 => Self::from_isbn13(chars),
            10 => {
                let mut ten = [0u8; 10];
                ten.copy_from_slice(&chars[..10]);
                Self::from_isbn10(ten)
            }
            digits => Err(IsbnError::WrongLength { digits }),
        }
    }

    fn from_isbn13(digits: [u8; 13]) -> Result<Self, IsbnError> {
        if digits.contains(&b'X') {
            return Err(IsbnError::InvalidCharacter);
        }
        if !(digits.starts_with(b"978") || digits.starts_with(b"979")) {
            return Err(IsbnError::BadPrefix);
        }
        if isbn13_check_digit(&digits[..12]) != digits[12] {
            return Err(IsbnError::BadChecksum);
        }
        Ok(Self(digits))
    }

    fn from_isbn10(chars: [u8; 10]) -> Result<Self, IsbnError> {
        // Only the check character may be an X (standing for 10).
        if chars[..9].contains(&b'X') {
            return Err(IsbnError::InvalidCharacter);
        }
        let sum: u32 = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let value = if c == b'X' { 10 } else { u32::from(c - b'0') };
                value * (10 - i as u32)
            })
            .sum();
        if !sum.is_multiple_of(11) {
            return Err(IsbnError::BadChecksum);
        }
        let mut digits = [0u8; 13];
        digits[..3].copy_from_slice(b"978");
        digits[3..12].copy_from_slice(&chars[..9]);
        digits[12] = isbn13_check_digit(&digits[..12]);
        Ok(Self(digits))
    }

    /// The ISBN-13 made of `first_twelve` followed by their check digit.
    ///
    /// This is the one place that computes an ISBN-13 check digit for a caller: generated
    /// catalogues, tests and examples make their ISBNs with it. Fails with
    /// [`IsbnError::InvalidCharacter`] on anything but ASCII digits,
    /// [`IsbnError::WrongLength`] (counting the check digit) unless there are exactly twelve,
    /// and [`IsbnError::BadPrefix`] unless they start with 978 or 979.
    pub fn from_first_twelve_digits(first_twelve: &str) -> Result<Self, IsbnError> {
        let given = first_twelve.as_bytes();
        if !given.iter().all(u8::is_ascii_digit) {
            return Err(IsbnError::InvalidCharacter);
        }
        if given.len() != 12 {
            return Err(IsbnError::WrongLength {
                digits: given.len() + 1,
            });
        }
        let mut digits = [0u8; 13];
        digits[..12].copy_from_slice(given);
        digits[12] = isbn13_check_digit(given);
        Self::from_isbn13(digits)
    }

    /// The bare 13 digits.
    pub fn as_str(&self) -> &str {
        // The array only ever holds ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The ISBN-13 check digit (as an ASCII digit) of the first twelve ASCII digits.
fn isbn13_check_digit(first_twelve: &[u8]) -> u8 {
    let sum: u32 = first_twelve
        .iter()
        .enumerate()
        .map(|(i, &c)| u32::from(c - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Isbn({})", self.as_str())
    }
}

impl FromStr for Isbn {
    type Err = IsbnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Isbn {
    type Error = IsbnError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Isbn> for String {
    fn from(isbn: Isbn) -> String {
        isbn.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_isbns_in_every_accepted_spelling_normalise_to_thirteen_digits() {
        for (input, expected) in [
            ("9780134685991", "9780134685991"),
            ("978-0-13-468599-1", "9780134685991"),
            ("978 0 13 468599 1", "9780134685991"),
            (" 9780134685991 ", "9780134685991"),
            ("0134685997", "9780134685991"),
            ("0-13-468599-7", "9780134685991"),
            ("080442957X", "9780804429573"),
            ("080442957x", "9780804429573"),
            ("9791032305690", "9791032305690"),
        ] {
            assert_eq!(
                Isbn::parse(input).unwrap().as_str(),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn malformed_isbns_are_rejected_with_the_reason() {
        for (input, expected) in [
            ("9780134685992", IsbnError::BadChecksum),
            ("0134685998", IsbnError::BadChecksum),
            ("978013468599", IsbnError::WrongLength { digits: 12 }),
            ("", IsbnError::WrongLength { digits: 0 }),
            ("97801346859910", IsbnError::WrongLength { digits: 14 }),
            ("978013468599a", IsbnError::InvalidCharacter),
            ("978013468599X", IsbnError::InvalidCharacter),
            ("X134685997", IsbnError::InvalidCharacter),
            ("1234567890128", IsbnError::BadPrefix),
            ("９７８0134685991", IsbnError::InvalidCharacter),
            ("\t9780134685991", IsbnError::InvalidCharacter),
            ("9780134685991\n", IsbnError::InvalidCharacter),
            ("\u{a0}9780134685991", IsbnError::InvalidCharacter),
        ] {
            assert_eq!(Isbn::parse(input), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn twelve_digits_are_completed_with_their_check_digit() {
        for (first_twelve, expected) in [
            ("978013468599", "9780134685991"),
            ("978080442957", "9780804429573"),
            ("979103230569", "9791032305690"),
            ("978000000000", "9780000000002"),
        ] {
            assert_eq!(
                Isbn::from_first_twelve_digits(first_twelve),
                Ok(Isbn::parse(expected).unwrap()),
                "first twelve {first_twelve:?}"
            );
        }
    }

    #[test]
    fn completing_anything_but_twelve_digits_after_978_or_979_fails_with_the_reason() {
        for (first_twelve, expected) in [
            ("97801346859", IsbnError::WrongLength { digits: 12 }),
            ("9780134685991", IsbnError::WrongLength { digits: 14 }),
            ("", IsbnError::WrongLength { digits: 1 }),
            ("978-01346859", IsbnError::InvalidCharacter),
            ("97801346859X", IsbnError::InvalidCharacter),
            ("123456789012", IsbnError::BadPrefix),
        ] {
            assert_eq!(
                Isbn::from_first_twelve_digits(first_twelve),
                Err(expected),
                "first twelve {first_twelve:?}"
            );
        }
    }

    #[test]
    fn isbns_serialize_as_bare_strings_and_reject_invalid_ones() {
        let isbn: Isbn = serde_json::from_str("\"978-0-13-468599-1\"").unwrap();
        assert_eq!(serde_json::to_string(&isbn).unwrap(), "\"9780134685991\"");
        assert!(serde_json::from_str::<Isbn>("\"9780134685992\"").is_err());
    }

    fn isbn13_strategy() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("978"), Just("979")],
            proptest::collection::vec(0u8..10, 9),
        )
            .prop_map(|(prefix, rest)| {
                let mut digits: Vec<u8> = prefix
                    .bytes()
                    .chain(rest.iter().map(|d| b'0' + d))
                    .collect();
                digits.push(isbn13_check_digit(&digits));
                String::from_utf8(digits).unwrap()
            })
    }

    proptest! {
        #[test]
        fn every_valid_isbn13_round_trips_through_any_separators(
            isbn in isbn13_strategy(),
            separators in proptest::collection::vec(prop_oneof![Just(""), Just("-"), Just(" ")], 13),
        ) {
            let written: String = isbn.chars().zip(&separators).map(|(c, s)| format!("{c}{s}")).collect();
            let parsed = Isbn::parse(&written).unwrap();
            prop_assert_eq!(parsed.as_str(), isbn.as_str());
        }

        #[test]
        fn changing_one_digit_of_a_valid_isbn13_is_always_detected(
            isbn in isbn13_strategy(), position in 3usize..13, delta in 1u8..10,
        ) {
            let mut bytes = isbn.into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(Isbn::parse(&changed).is_err());
        }

        #[test]
        fn isbn10_and_its_isbn13_form_parse_to_the_same_isbn(body in proptest::collection::vec(0u8..10, 9)) {
            let sum: u32 = body.iter().enumerate().map(|(i, &d)| u32::from(d) * (10 - i as u32)).sum();
            let check = (11 - sum % 11) % 11;
            let mut ten: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            ten.push(if check == 10 { 'X' } else { char::from(b'0' + check as u8) });
            let from_ten = Isbn::parse(&ten).unwrap();
            prop_assert!(from_ten.as_str().starts_with("978"));
            prop_assert_eq!(&from_ten.as_str()[3..12], &ten[..9]);
            prop_assert_eq!(Isbn::parse(from_ten.as_str()).unwrap(), from_ten);
        }

        #[test]
        fn completing_the_first_twelve_digits_of_a_valid_isbn13_gives_it_back(isbn in isbn13_strategy()) {
            let completed = Isbn::from_first_twelve_digits(&isbn[..12]).unwrap();
            prop_assert_eq!(completed.as_str(), isbn.as_str());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in ".{0,40}") {
            let _ = Isbn::parse(&input);
        }
    }
}
