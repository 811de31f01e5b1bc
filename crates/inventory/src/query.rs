//! Listing the catalogue a page at a time: [`BookQuery`] in, [`BookPage`] out.
//!
//! Paging uses the ISBN as a cursor: a page holds the first matching books whose ISBN is
//! strictly greater than [`BookQuery::after`], in ISBN order. Because ISBNs never change and
//! books are never removed, following [`BookPage::next_after`] visits every book that existed
//! when paging started exactly once, whatever is inserted meanwhile.

use bookstore_types::{Isbn, PageLimit};

use crate::Book;

/// Which books to list: a cursor, a page size and optional filters (all must match).
#[derive(Debug, Clone, Default)]
pub struct BookQuery {
    /// Only books whose ISBN is strictly greater than this one (the previous page's
    /// [`BookPage::next_after`]); `None` starts at the beginning.
    pub after: Option<Isbn>,
    /// At most this many books.
    pub limit: PageLimit,
    /// Only books whose author is exactly this, ignoring case and surrounding whitespace.
    pub author: Option<String>,
    /// Only books whose title or author contains this text, ignoring case.
    pub text: Option<String>,
}

/// One page of books, in ISBN order.
#[derive(Debug, Clone)]
pub struct BookPage {
    /// The matching books, at most [`BookQuery::limit`] of them.
    pub books: Vec<Book>,
    /// The ISBN of the last book on this page when more matching books follow it: pass it as
    /// [`BookQuery::after`] to get the next page. `None` on the last page.
    pub next_after: Option<Isbn>,
}

/// The form in which the author filter compares authors: surrounding whitespace removed,
/// then every character lower-cased on its own (Unicode `char::to_lowercase`).
///
/// A book matches [`BookQuery::author`] exactly when `author_filter_key(book author) ==
/// author_filter_key(filter)`. Stores that filter elsewhere (in SQL, say) must compare these
/// keys, computed by this function, to behave exactly as [`InMemoryCatalogue`](crate::InMemoryCatalogue).
pub fn author_filter_key(author: &str) -> String {
    author.trim().chars().flat_map(char::to_lowercase).collect()
}

/// The form in which the text filter compares: the whole string lower-cased (Unicode
/// `str::to_lowercase`, context-sensitive for a final sigma).
///
/// A book matches [`BookQuery::text`] exactly when `text_filter_key(filter)` is a substring of
/// `text_filter_key(title)` or of `text_filter_key(author)`.
pub fn text_filter_key(text: &str) -> String {
    text.to_lowercase()
}

/// The filters of a [`BookQuery`], prepared once for checking many books.
#[derive(Debug)]
pub(crate) struct BookFilter {
    author_key: Option<String>,
    text_key: Option<String>,
}

impl BookFilter {
    pub(crate) fn new(query: &BookQuery) -> Self {
        Self {
            author_key: query.author.as_deref().map(author_filter_key),
            text_key: query.text.as_deref().map(text_filter_key),
        }
    }

    /// True when no filter is set, so every book matches.
    pub(crate) fn matches_everything(&self) -> bool {
        self.author_key.is_none() && self.text_key.is_none()
    }

    /// True when `book` passes every filter.
    pub(crate) fn matches(&self, book: &Book) -> bool {
        // Compares keys as `author_filter_key` builds them, without allocating (a book's
        // author is already trimmed).
        if let Some(author_key) = &self.author_key
            && !book
                .author
                .as_str()
                .chars()
                .flat_map(char::to_lowercase)
                .eq(author_key.chars())
        {
            return false;
        }
        if let Some(text) = &self.text_key
            && !text_filter_key(book.title.as_str()).contains(text.as_str())
            && !text_filter_key(book.author.as_str()).contains(text.as_str())
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::book;

    #[test]
    fn a_query_asks_for_twenty_books_unless_told_otherwise() {
        assert_eq!(BookQuery::default().limit.get(), 20);
    }

    #[test]
    fn the_author_filter_matches_the_whole_author_ignoring_case() {
        let rust_book = book(
            1,
            "The Rust Programming Language",
            "Steve Klabnik and Carol Nichols",
            3995,
            1,
        );
        let filter = |author: &str| {
            BookFilter::new(&BookQuery {
                author: Some(author.to_owned()),
                ..BookQuery::default()
            })
        };
        assert!(filter("Steve Klabnik and Carol Nichols").matches(&rust_book));
        assert!(filter("STEVE KLABNIK AND CAROL NICHOLS").matches(&rust_book));
        assert!(filter("  steve klabnik and carol nichols ").matches(&rust_book));
        assert!(!filter("Steve Klabnik").matches(&rust_book));
        assert!(!filter("").matches(&rust_book));
    }

    #[test]
    fn the_author_filter_ignores_case_beyond_ascii() {
        let novel = book(1, "Преступление и наказание", "Фёдор Достоевский", 1500, 1);
        let filter = BookFilter::new(&BookQuery {
            author: Some("ФЁДОР ДОСТОЕВСКИЙ".to_owned()),
            ..BookQuery::default()
        });
        assert!(filter.matches(&novel));
    }

    #[test]
    fn the_text_filter_finds_a_substring_of_the_title_or_the_author() {
        let rust_book = book(
            1,
            "The Rust Programming Language",
            "Steve Klabnik and Carol Nichols",
            3995,
            1,
        );
        let filter = |text: &str| {
            BookFilter::new(&BookQuery {
                text: Some(text.to_owned()),
                ..BookQuery::default()
            })
        };
        assert!(filter("rust").matches(&rust_book));
        assert!(filter("PROGRAMMING LANG").matches(&rust_book));
        assert!(filter("nichols").matches(&rust_book));
        assert!(filter("").matches(&rust_book));
        assert!(!filter("java").matches(&rust_book));
        assert!(!filter("language steve").matches(&rust_book));
    }

    #[test]
    fn both_filters_must_match() {
        let rust_book = book(
            1,
            "The Rust Programming Language",
            "Steve Klabnik and Carol Nichols",
            3995,
            1,
        );
        let filter = |author: &str, text: &str| {
            BookFilter::new(&BookQuery {
                author: Some(author.to_owned()),
                text: Some(text.to_owned()),
                ..BookQuery::default()
            })
        };
        assert!(filter("steve klabnik and carol nichols", "rust").matches(&rust_book));
        assert!(!filter("steve klabnik and carol nichols", "java").matches(&rust_book));
        assert!(!filter("joshua bloch", "rust").matches(&rust_book));
        assert!(BookFilter::new(&BookQuery::default()).matches_everything());
    }
}
