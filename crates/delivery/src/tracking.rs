//! Tracking numbers that customers quote to follow a parcel.

use std::fmt;

use uuid::Uuid;

use crate::error::DeliveryError;

/// The letters every tracking number starts with.
const PREFIX: &str = "BK";

/// How many random characters follow the prefix.
const RANDOM_CHARACTERS: usize = 10;

/// The characters a tracking number is made of after its prefix.
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A tracking number: `BK` followed by 10 upper-case ASCII letters or digits, e.g.
/// `BK7Q2M9X4KD1`.
///
/// Generated numbers are uniformly random (about 51 bits), so they cannot be guessed from
/// one another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackingNumber(String);

impl TrackingNumber {
    /// A new random tracking number, drawn from the random bytes of version 4 UUIDs.
    pub fn generate() -> Self {
        let mut number = String::with_capacity(PREFIX.len() + RANDOM_CHARACTERS);
        number.push_str(PREFIX);
        let mut added = 0;
        while added < RANDOM_CHARACTERS {
            for byte in random_bytes() {
                // 252 is the largest multiple of 36 that fits a byte; rejecting the bytes
                // above it keeps every character equally likely.
                if added < RANDOM_CHARACTERS && byte < 252 {
                    number.push(char::from(ALPHABET[usize::from(byte % 36)]));
                    added += 1;
                }
            }
        }
        Self(number)
    }

    /// Parses a stored tracking number. Only the exact, upper-case form is accepted.
    pub fn parse(input: &str) -> Result<Self, DeliveryError> {
        let random_part = input
            .strip_prefix(PREFIX)
            .ok_or(DeliveryError::InvalidTrackingNumber)?;
        let well_formed = random_part.len() == RANDOM_CHARACTERS
            && random_part.bytes().all(|byte| ALPHABET.contains(&byte));
        if !well_formed {
            return Err(DeliveryError::InvalidTrackingNumber);
        }
        Ok(Self(input.to_owned()))
    }

    /// The tracking number as text, e.g. `"BK7Q2M9X4KD1"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 14 bytes of a fresh version 4 UUID that are random: bytes 6 and 8 carry the
/// version and variant bits and are left out.
fn random_bytes() -> impl Iterator<Item = u8> {
    let bytes = Uuid::new_v4().into_bytes();
    bytes
        .into_iter()
        .enumerate()
        .filter(|&(index, _)| index != 6 && index != 8)
        .map(|(_, byte)| byte)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_well_formed(text: &str) -> bool {
        text.len() == 12
            && text.starts_with("BK")
            && text[2..]
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte.is_ascii_uppercase())
    }

    #[test]
    fn generated_tracking_numbers_are_bk_and_ten_upper_case_letters_or_digits() {
        for _ in 0..1_000 {
            let number = TrackingNumber::generate();
            assert!(is_well_formed(number.as_str()), "{number}");
            assert_eq!(TrackingNumber::parse(number.as_str()).unwrap(), number);
        }
    }

    #[test]
    fn generated_tracking_numbers_differ() {
        let numbers: HashSet<_> = (0..10_000).map(|_| TrackingNumber::generate()).collect();
        assert_eq!(numbers.len(), 10_000);
    }

    #[test]
    fn generated_tracking_numbers_use_the_whole_alphabet_in_every_position() {
        let mut seen = [[false; 36]; RANDOM_CHARACTERS];
        for _ in 0..5_000 {
            let number = TrackingNumber::generate();
            for (position, byte) in number.as_str().bytes().skip(2).enumerate() {
                let index = ALPHABET.iter().position(|&c| c == byte).unwrap();
                seen[position][index] = true;
            }
        }
        assert!(seen.iter().flatten().all(|&seen| seen));
    }

    #[test]
    fn only_well_formed_tracking_numbers_parse() {
        let cases = [
            ("BK7Q2M9X4KD1", true),
            ("BK0000000000", true),
            ("BKZZZZZZZZZZ", true),
            ("bk7q2m9x4kd1", false),
            ("BK7q2M9X4KD1", false),
            ("BK7Q2M9X4KD", false),
            ("BK7Q2M9X4KD12", false),
            ("XX7Q2M9X4KD1", false),
            ("7Q2M9X4KD1", false),
            ("BK7Q2M-X4KD1", false),
            (" BK7Q2M9X4KD1", false),
            ("BK7Q2M9X4KDÉ", false),
            ("", false),
        ];
        for (input, valid) in cases {
            let parsed = TrackingNumber::parse(input);
            assert_eq!(parsed.is_ok(), valid, "{input:?}");
            if let Err(error) = parsed {
                assert!(matches!(error, DeliveryError::InvalidTrackingNumber));
            }
        }
    }
}
