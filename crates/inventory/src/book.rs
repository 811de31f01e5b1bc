//! Catalogue records: a [`Book`], the validated [`Title`] and [`Author`] it carries, and the
//! [`BookPatch`] that changes some of its fields.

use std::fmt;

use bookstore_types::{Isbn, Money};

use crate::InventoryError;

/// The longest title or author, in Unicode scalar values (`char`s), after trimming.
const MAX_NAME_CHARS: usize = 500;

/// Checks the rules shared by titles and authors; on success returns the trimmed text.
fn parse_name(input: String) -> Result<String, &'static str> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("must not be empty");
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err("must be at most 500 characters");
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if trimmed.len() == input.len() {
        Ok(input)
    } else {
        Ok(trimmed.to_owned())
    }
}

/// The title of a book: trimmed, not empty, at most 500 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// The longest title, in characters.
    pub const MAX_CHARS: usize = MAX_NAME_CHARS;

    /// Trims `input` and checks it is a valid title.
    pub fn parse(input: impl Into<String>) -> Result<Self, InventoryError> {
        parse_name(input.into())
            .map(Self)
            .map_err(|reason| InventoryError::InvalidTitle { reason })
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The author (or authors, in one line) of a book: same rules as a [`Title`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author(String);

impl Author {
    /// The longest author line, in characters.
    pub const MAX_CHARS: usize = MAX_NAME_CHARS;

    /// Trims `input` and checks it is a valid author line.
    pub fn parse(input: impl Into<String>) -> Result<Self, InventoryError> {
        parse_name(input.into())
            .map(Self)
            .map_err(|reason| InventoryError::InvalidAuthor { reason })
    }

    /// The author text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One book in the catalogue and the number of copies in stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// The book's identity; it never changes.
    pub isbn: Isbn,
    /// The title.
    pub title: Title,
    /// The author or authors.
    pub author: Author,
    /// The price of one copy.
    pub price: Money,
    /// Copies in stock.
    pub stock: u32,
}

/// New values for some fields of a [`Book`]; `None` leaves a field as it is.
///
/// The ISBN cannot be patched: it is the book's identity.
#[derive(Debug, Clone, Default)]
pub struct BookPatch {
    /// A new title.
    pub title: Option<Title>,
    /// A new author.
    pub author: Option<Author>,
    /// A new price.
    pub price: Option<Money>,
    /// A new stock count (replaces the count; it is not added to it).
    pub stock: Option<u32>,
}

impl BookPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.author.is_none()
            && self.price.is_none()
            && self.stock.is_none()
    }

    /// Writes the given fields into `book`.
    pub(crate) fn apply_to(self, book: &mut Book) {
        let BookPatch {
            title,
            author,
            price,
            stock,
        } = self;
        if let Some(title) = title {
            book.title = title;
        }
        if let Some(author) = author {
            book.author = author;
        }
        if let Some(price) = price {
            book.price = price;
        }
        if let Some(stock) = stock {
            book.stock = stock;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{book, usd};

    #[test]
    fn titles_are_trimmed_and_checked_against_every_rule() {
        let longest = "é".repeat(500);
        let too_long = "a".repeat(501);
        for (input, expected) in [
            ("Effective Java", Ok("Effective Java")),
            ("  Effective Java\t\n", Ok("Effective Java")),
            ("1984", Ok("1984")),
            (longest.as_str(), Ok(longest.as_str())),
            ("", Err("must not be empty")),
            ("   \t ", Err("must not be empty")),
            (too_long.as_str(), Err("must be at most 500 characters")),
            (
                "Effective\0Java",
                Err("must not contain control characters"),
            ),
            (
                "Effective\nJava",
                Err("must not contain control characters"),
            ),
        ] {
            let parsed = Title::parse(input);
            match expected {
                Ok(text) => assert_eq!(parsed.unwrap().as_str(), text, "input {input:?}"),
                Err(reason) => assert!(
                    matches!(parsed, Err(InventoryError::InvalidTitle { reason: r }) if r == reason),
                    "input {input:?}: {parsed:?}"
                ),
            }
        }
    }

    #[test]
    fn authors_follow_the_title_rules_but_report_an_author_error() {
        let too_long = "b".repeat(501);
        for (input, expected) in [
            ("Joshua Bloch", Ok("Joshua Bloch")),
            (
                " Steve Klabnik and Carol Nichols ",
                Ok("Steve Klabnik and Carol Nichols"),
            ),
            (
                "Fyodor Dostoyevsky / Фёдор Достоевский",
                Ok("Fyodor Dostoyevsky / Фёдор Достоевский"),
            ),
            ("", Err("must not be empty")),
            (" ", Err("must not be empty")),
            (too_long.as_str(), Err("must be at most 500 characters")),
            (
                "Joshua\u{7}Bloch",
                Err("must not contain control characters"),
            ),
        ] {
            let parsed = Author::parse(input);
            match expected {
                Ok(text) => assert_eq!(parsed.unwrap().as_str(), text, "input {input:?}"),
                Err(reason) => assert!(
                    matches!(parsed, Err(InventoryError::InvalidAuthor { reason: r }) if r == reason),
                    "input {input:?}: {parsed:?}"
                ),
            }
        }
    }

    #[test]
    fn titles_and_authors_display_as_their_text() {
        assert_eq!(
            Title::parse(" Clean Code ").unwrap().to_string(),
            "Clean Code"
        );
        assert_eq!(
            Author::parse("Robert C. Martin").unwrap().to_string(),
            "Robert C. Martin"
        );
    }

    #[test]
    fn invalid_titles_explain_themselves_in_lower_case() {
        let error = Title::parse("").unwrap_err();
        assert_eq!(error.to_string(), "invalid title: must not be empty");
    }

    #[test]
    fn a_default_patch_is_empty_and_changes_nothing() {
        let patch = BookPatch::default();
        assert!(patch.is_empty());
        let original = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
        let mut patched = original.clone();
        patch.apply_to(&mut patched);
        assert_eq!(patched, original);
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let original = book(1, "Clean Code", "Robert C. Martin", 3999, 5);
        let patch = BookPatch {
            price: Some(usd(2999)),
            stock: Some(0),
            ..BookPatch::default()
        };
        assert!(!patch.is_empty());
        let mut patched = original.clone();
        patch.apply_to(&mut patched);
        assert_eq!(
            patched,
            Book {
                price: usd(2999),
                stock: 0,
                ..original
            }
        );
    }
}
