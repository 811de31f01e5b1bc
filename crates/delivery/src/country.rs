//! ISO 3166-1 alpha-2 country codes, limited to the codes that are officially assigned.

use std::fmt;

use crate::error::AddressError;

/// An officially assigned ISO 3166-1 alpha-2 country code, always stored upper-case.
///
/// Only the 249 assigned codes are accepted. User-assigned codes (`AA`, `QM`–`QZ`,
/// `XA`–`XZ`, `ZZ`), exceptionally reserved codes (`UK`, `EU`, …) and transitional or
/// withdrawn codes are rejected: a parcel cannot be sent to any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses a two-letter code, accepting lower-case letters and normalising them to
    /// upper-case (`"gb"` becomes `GB`). Surrounding whitespace is not accepted.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let &[first, second] = input.as_bytes() else {
            return Err(AddressError::CountryCodeNotTwoLetters);
        };
        if !(first.is_ascii_alphabetic() && second.is_ascii_alphabetic()) {
            return Err(AddressError::CountryCodeNotTwoLetters);
        }
        let letters = [first.to_ascii_uppercase(), second.to_ascii_uppercase()];
        let code = std::str::from_utf8(&letters).unwrap_or_default();
        if ASSIGNED_COUNTRY_CODES.binary_search(&code).is_err() {
            return Err(AddressError::CountryCodeNotAssigned {
                code: code.to_owned(),
            });
        }
        Ok(Self(letters))
    }

    /// The two upper-case letters, e.g. `"GB"`.
    pub fn as_str(&self) -> &str {
        // The array only ever holds two ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every officially assigned ISO 3166-1 alpha-2 code, sorted so that it can be binary searched.
///
/// Checked against the ISO 3166 tables shipped with tzdata (`iso3166.tab`) and Debian's
/// `iso-codes` (`iso_3166-1.xml`), which agree on these 249 codes.
#[rustfmt::skip]
const ASSIGNED_COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT",
    "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN",
    "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ",
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO",
    "CR", "CU", "CV", "CW", "CX", "CY", "CZ",
    "DE", "DJ", "DK", "DM", "DO", "DZ",
    "EC", "EE", "EG", "EH", "ER", "ES", "ET",
    "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP",
    "GQ", "GR", "GS", "GT", "GU", "GW", "GY",
    "HK", "HM", "HN", "HR", "HT", "HU",
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
    "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO",
    "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM",
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT",
    "PW", "PY",
    "QA",
    "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM",
    "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ",
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
    "TT", "TV", "TW", "TZ",
    "UA", "UG", "UM", "US", "UY", "UZ",
    "VA", "VC", "VE", "VG", "VI", "VN", "VU",
    "WF", "WS",
    "YE", "YT",
    "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_accepted_only_when_officially_assigned() {
        let cases: &[(&str, Result<&str, AddressError>)] = &[
            ("GB", Ok("GB")),
            ("US", Ok("US")),
            ("DE", Ok("DE")),
            ("AD", Ok("AD")),
            ("ZW", Ok("ZW")),
            ("gb", Ok("GB")),
            ("Gb", Ok("GB")),
            ("ZZ", Err(not_assigned("ZZ"))),
            ("XX", Err(not_assigned("XX"))),
            ("XA", Err(not_assigned("XA"))),
            ("AA", Err(not_assigned("AA"))),
            ("QM", Err(not_assigned("QM"))),
            ("UK", Err(not_assigned("UK"))),
            ("uk", Err(not_assigned("UK"))),
            ("EU", Err(not_assigned("EU"))),
            ("GBR", Err(AddressError::CountryCodeNotTwoLetters)),
            ("", Err(AddressError::CountryCodeNotTwoLetters)),
            ("G", Err(AddressError::CountryCodeNotTwoLetters)),
            ("G1", Err(AddressError::CountryCodeNotTwoLetters)),
            (" GB", Err(AddressError::CountryCodeNotTwoLetters)),
            ("É", Err(AddressError::CountryCodeNotTwoLetters)),
        ];
        for (input, expected) in cases {
            let actual = CountryCode::parse(input);
            match (expected, actual) {
                (Ok(expected), Ok(actual)) => assert_eq!(actual.as_str(), *expected, "{input:?}"),
                (Err(expected), Err(actual)) => assert_eq!(&actual, expected, "{input:?}"),
                (expected, actual) => panic!("{input:?}: expected {expected:?}, got {actual:?}"),
            }
        }
    }

    #[test]
    fn the_assigned_list_has_249_sorted_distinct_upper_case_codes() {
        assert_eq!(ASSIGNED_COUNTRY_CODES.len(), 249);
        for pair in ASSIGNED_COUNTRY_CODES.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?} is not strictly ascending");
        }
        for code in ASSIGNED_COUNTRY_CODES {
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()),
                "{code:?}"
            );
        }
    }

    #[test]
    fn every_assigned_code_parses_back_to_itself() {
        for code in ASSIGNED_COUNTRY_CODES {
            assert_eq!(CountryCode::parse(code).unwrap().to_string(), code);
        }
    }

    fn not_assigned(code: &str) -> AddressError {
        AddressError::CountryCodeNotAssigned {
            code: code.to_owned(),
        }
    }
}
