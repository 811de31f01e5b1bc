//! `/api/books`: listing, paging, filtering, reading by any ISBN spelling, and the admin
//! writes (`POST`, `PATCH`) with their validation.

use std::collections::BTreeSet;

use actix_web::http::Method;
use bookstore_inventory::demo_catalogue;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, CUSTOMER, EFFECTIVE_JAVA, EFFECTIVE_JAVA_10, TestApp, book, isbn_with, spawn_app,
    spawn_app_with_books, spawn_app_with_empty_catalogue, unknown_isbn,
};

fn isbns_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|b| b["isbn"].as_str().expect("isbn").to_owned())
        .collect()
}

fn demo_isbns_sorted() -> Vec<String> {
    let mut isbns: Vec<String> = demo_catalogue()
        .iter()
        .map(|b| b.isbn.as_str().to_owned())
        .collect();
    isbns.sort();
    isbns
}

/// Follows `next_cursor` from the first page to the last, calling `between_pages` after
/// each page with the ISBNs seen so far.
async fn visit_all_pages(
    app: &TestApp,
    limit: u32,
    mut between_pages: impl AsyncFnMut(&[String]),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let path = match &cursor {
            Some(cursor) => format!("/api/books?limit={limit}&cursor={cursor}"),
            None => format!("/api/books?limit={limit}"),
        };
        let page = app.get(&path, CUSTOMER).await.success(200);
        let isbns = isbns_of(&page);
        assert!(
            isbns.len() <= limit as usize,
            "a page longer than the limit: {page}"
        );
        seen.extend(isbns);
        between_pages(&seen).await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert_eq!(page["next_cursor"], Value::Null);
                return seen;
            }
        }
    }
    panic!("paging did not end");
}

#[actix_web::test]
async fn listing_books_returns_the_first_twenty_in_isbn_order_with_a_cursor() {
    let app = spawn_app().await;
    let page = app.get("/api/books", CUSTOMER).await.success(200);
    assert_eq!(isbns_of(&page), demo_isbns_sorted()[..20]);
    assert!(page["next_cursor"].is_string(), "{page}");
    let keys: BTreeSet<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["items", "next_cursor"]));
}

#[actix_web::test]
async fn a_book_is_listed_with_exactly_the_documented_fields() {
    let app = spawn_app().await;
    let page = app.get("/api/books?limit=100", CUSTOMER).await.success(200);
    let effective_java = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["isbn"] == EFFECTIVE_JAVA)
        .unwrap();
    assert_eq!(
        effective_java,
        &json!({
            "isbn": "9780134685991", "title": "Effective Java", "author": "Joshua Bloch",
            "price_cents": 4499, "currency": "USD", "stock": 12
        })
    );
}

#[actix_web::test]
async fn limits_from_one_to_one_hundred_are_accepted() {
    let app = spawn_app().await;
    let all = demo_isbns_sorted();
    for (limit, expected) in [(1, 1), (5, 5), (all.len(), all.len()), (100, all.len())] {
        let page = app
            .get(&format!("/api/books?limit={limit}"), CUSTOMER)
            .await
            .success(200);
        assert_eq!(isbns_of(&page), all[..expected], "limit {limit}");
    }
    let everything = app.get("/api/books?limit=100", CUSTOMER).await.success(200);
    assert_eq!(everything["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn limits_outside_one_to_one_hundred_or_not_integers_are_400() {
    let app = spawn_app().await;
    for limit in [
        "0",
        "101",
        "abc",
        "-1",
        "1.5",
        "",
        "99999999999999999999999",
        // Only plain digits: no sign, no leading zero, no spaces.
        "%2B20",
        "020",
        "%2020",
        "20%20",
    ] {
        let response = app
            .get(&format!("/api/books?limit={limit}"), CUSTOMER)
            .await;
        response.problem(400);
    }
}

#[actix_web::test]
async fn paging_by_cursor_visits_every_book_exactly_once_in_isbn_order() {
    let app = spawn_app().await;
    for limit in [1, 3, 7, 20, 21, 22, 23, 100] {
        let seen = visit_all_pages(&app, limit, async |_: &[String]| {}).await;
        assert_eq!(seen, demo_isbns_sorted(), "limit {limit}");
    }
}

#[actix_web::test]
async fn books_added_while_paging_neither_repeat_nor_hide_books_that_existed() {
    let existing: Vec<String> = (0..30)
        .map(|i| isbn_with("978", 100_000_000 + i * 1000))
        .collect();
    let app = spawn_app_with_books(
        existing
            .iter()
            .map(|isbn| book(isbn, "Existing", "Someone", 100, 1))
            .collect(),
    )
    .await;

    let mut added_before_cursor = Vec::new();
    let mut added_after_cursor = Vec::new();
    let mut round = 0;
    let seen = visit_all_pages(&app, 7, async |seen: &[String]| {
        round += 1;
        let last: u32 = seen.last().unwrap()[3..12].parse().unwrap();
        // One book just before the cursor (already passed) and one just after it.
        let before = isbn_with("978", last - 1 - round);
        let after = isbn_with("978", last + 1 + round);
        for isbn in [&before, &after] {
            let body = json!({"isbn": isbn, "title": "Added", "author": "Someone", "price_cents": 100, "stock": 1});
            app.post_json("/api/books", ADMIN, &body).await.assert_status(201);
        }
        added_before_cursor.push(before);
        added_after_cursor.push(after);
    })
    .await;

    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a book was visited twice: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "not in ISBN order: {seen:?}"
    );
    for isbn in &existing {
        assert!(
            seen.contains(isbn),
            "{isbn} existed before paging and was skipped"
        );
    }
    for isbn in &added_before_cursor {
        assert!(
            !seen.contains(isbn),
            "{isbn} was added behind the cursor and still listed"
        );
    }
    // The cursor is a position: books added after it are met later on.
    for isbn in added_after_cursor.iter().take(added_after_cursor.len() - 1) {
        assert!(
            seen.contains(isbn),
            "{isbn} was added ahead of the cursor and skipped"
        );
    }
}

#[actix_web::test]
async fn a_cursor_the_server_did_not_issue_is_400() {
    let app = spawn_app().await;
    for cursor in [
        "garbage",
        "zz",
        "6",
        "%00",
        "0000",
        "ffffffff",
        &"a".repeat(500),
        // A book's position (Effective Java) written otherwise than the server writes it:
        // as an ISBN-10, and hyphenated.
        "6230313334363835393937",
        "623937382d302d31332d3436383539392d31",
    ] {
        app.get(&format!("/api/books?cursor={cursor}"), CUSTOMER)
            .await
            .problem(400);
    }
}

#[actix_web::test]
async fn the_author_filter_matches_the_whole_name_ignoring_case() {
    let app = spawn_app().await;
    for author in ["Joshua%20Bloch", "joshua%20bloch", "JOSHUA%20BLOCH"] {
        let page = app
            .get(&format!("/api/books?author={author}"), CUSTOMER)
            .await
            .success(200);
        assert_eq!(isbns_of(&page), [EFFECTIVE_JAVA], "author={author}");
    }
    for partial in ["Joshua", "bloch", "Joshua%20Bloc"] {
        let page = app
            .get(&format!("/api/books?author={partial}"), CUSTOMER)
            .await
            .success(200);
        assert_eq!(
            isbns_of(&page),
            Vec::<String>::new(),
            "author={partial} is not an exact match"
        );
    }
}

#[actix_web::test]
async fn the_q_filter_matches_a_substring_of_title_or_author_ignoring_case() {
    let app = spawn_app().await;
    let expected = |needle: &str| -> Vec<String> {
        let needle = needle.to_lowercase();
        let mut isbns: Vec<String> = demo_catalogue()
            .iter()
            .filter(|b| {
                b.title.as_str().to_lowercase().contains(&needle)
                    || b.author.as_str().to_lowercase().contains(&needle)
            })
            .map(|b| b.isbn.as_str().to_owned())
            .collect();
        isbns.sort();
        isbns
    };
    for (query, needle) in [
        ("PROGRAMMING", "programming"),
        ("knuth", "knuth"),
        ("rUsT", "rust"),
        ("kernighan", "kernighan"),
    ] {
        let page = app
            .get(&format!("/api/books?limit=100&q={query}"), CUSTOMER)
            .await
            .success(200);
        let wanted = expected(needle);
        assert!(
            !wanted.is_empty(),
            "the demo catalogue has matches for {needle}"
        );
        assert_eq!(isbns_of(&page), wanted, "q={query}");
    }
    let page = app
        .get("/api/books?q=no-such-book-anywhere", CUSTOMER)
        .await
        .success(200);
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
}

#[actix_web::test]
async fn a_book_can_be_read_by_isbn_13_isbn_10_or_hyphenated_and_is_shown_with_13_digits() {
    let app = spawn_app().await;
    let canonical = app
        .get(&format!("/api/books/{EFFECTIVE_JAVA}"), CUSTOMER)
        .await
        .success(200);
    assert_eq!(canonical["isbn"], EFFECTIVE_JAVA);
    assert_eq!(canonical["title"], "Effective Java");
    for spelling in [
        EFFECTIVE_JAVA_10,
        "978-0-13-468599-1",
        "0-13-468599-7",
        "978%200134685991",
    ] {
        let response = app.get(&format!("/api/books/{spelling}"), CUSTOMER).await;
        assert_eq!(response.success(200), canonical, "{spelling}");
    }
}

#[actix_web::test]
async fn a_malformed_isbn_in_the_path_is_400() {
    let app = spawn_app().await;
    for isbn in [
        "123",
        "9780134685992",
        "abcdefghijklm",
        "978013468599X",
        "1234567890123",
        "0134685998",
    ] {
        let body = app
            .get(&format!("/api/books/{isbn}"), CUSTOMER)
            .await
            .problem(400);
        assert_eq!(body["type"], "/problems/malformed-request", "{isbn}");
    }
}

#[actix_web::test]
async fn an_unknown_valid_isbn_is_404() {
    let app = spawn_app().await;
    let body = app
        .get(&format!("/api/books/{}", unknown_isbn()), CUSTOMER)
        .await
        .problem(404);
    assert_eq!(body["type"], "/problems/not-found");
}

fn new_book(isbn: &str) -> Value {
    json!({"isbn": isbn, "title": "Zero To Production In Rust", "author": "Luca Palmieri", "price_cents": 3900, "stock": 4})
}

#[actix_web::test]
async fn an_admin_adds_a_book_and_gets_201_with_its_location() {
    let app = spawn_app_with_empty_catalogue().await;
    let isbn = isbn_with("979", 1);
    let response = app.post_json("/api/books", ADMIN, &new_book(&isbn)).await;
    let body = response.success(201);
    assert_eq!(
        body,
        json!({"isbn": isbn, "title": "Zero To Production In Rust", "author": "Luca Palmieri",
               "price_cents": 3900, "currency": "USD", "stock": 4})
    );
    assert_eq!(
        response.header("location"),
        Some(format!("/api/books/{isbn}").as_str())
    );
    assert_eq!(app.book(&isbn).await, body);
}

#[actix_web::test]
async fn a_book_added_with_a_hyphenated_isbn_10_is_stored_under_its_13_digits() {
    let app = spawn_app_with_empty_catalogue().await;
    let response = app
        .post_json("/api/books", ADMIN, &new_book("0-13-468599-7"))
        .await;
    assert_eq!(response.success(201)["isbn"], EFFECTIVE_JAVA);
    assert_eq!(
        response.header("location"),
        Some("/api/books/9780134685991")
    );
}

#[actix_web::test]
async fn adding_a_book_whose_isbn_exists_in_any_spelling_is_409() {
    let app = spawn_app().await;
    for spelling in [EFFECTIVE_JAVA, EFFECTIVE_JAVA_10, "978-0-13-468599-1"] {
        let body = app
            .post_json("/api/books", ADMIN, &new_book(spelling))
            .await
            .problem(409);
        assert_eq!(body["type"], "/problems/book-exists", "{spelling}");
    }
    assert_eq!(app.book(EFFECTIVE_JAVA).await["title"], "Effective Java");
}

#[actix_web::test]
async fn invalid_book_values_are_422_naming_the_fields_and_nothing_is_stored() {
    let app = spawn_app_with_empty_catalogue().await;
    let isbn = isbn_with("979", 2);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"isbn": "9780134685992"}), vec!["isbn"]),
        (json!({"isbn": "12345"}), vec!["isbn"]),
        (json!({"title": ""}), vec!["title"]),
        (json!({"title": "   \t "}), vec!["title"]),
        (json!({"author": " "}), vec!["author"]),
        (json!({"price_cents": -1}), vec!["price_cents"]),
        (json!({"stock": -1}), vec!["stock"]),
        (
            json!({"title": " ", "price_cents": -5, "stock": -5}),
            vec!["title", "price_cents", "stock"],
        ),
    ];
    for (change, expected_fields) in cases {
        let mut body = new_book(&isbn);
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let response = app.post_json("/api/books", ADMIN, &body).await;
        let fields = response.field_errors();
        for field in &expected_fields {
            assert!(
                fields.iter().any(|f| f == field),
                "{change}: errors {fields:?} do not name {field}"
            );
        }
        let listing = app.get("/api/books", ADMIN).await.success(200);
        assert_eq!(listing["items"], json!([]), "{change} stored a book");
    }
}

#[actix_web::test]
async fn book_fields_of_the_wrong_json_type_are_400() {
    let app = spawn_app_with_empty_catalogue().await;
    let isbn = isbn_with("979", 3);
    let mut cases: Vec<Value> = [
        json!({"price_cents": "3900"}),
        json!({"price_cents": 39.99}),
        json!({"price_cents": 3900.0}),
        json!({"stock": "4"}),
        json!({"stock": 1.5}),
        json!({"title": 42}),
        json!({"isbn": 9791000000011_u64}),
    ]
    .into_iter()
    .map(|change| {
        let mut body = new_book(&isbn);
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        body
    })
    .collect();
    cases.push(json!([new_book(&isbn)]));
    cases.push(json!("a book"));
    for body in cases {
        app.post_json("/api/books", ADMIN, &body).await.problem(400);
    }
    assert!(!app.stores.has_book(&isbn).await);
}

#[actix_web::test]
async fn a_book_without_a_required_field_is_a_malformed_request() {
    let app = spawn_app_with_empty_catalogue().await;
    for missing in ["isbn", "title", "author", "price_cents", "stock"] {
        let mut body = new_book(&isbn_with("979", 4));
        body.as_object_mut().unwrap().remove(missing);
        let response = app.post_json("/api/books", ADMIN, &body).await;
        assert_eq!(response.status, 400, "without {missing}");
        let problem = response.problem(400);
        assert_eq!(
            problem["type"], "/problems/malformed-request",
            "without {missing}"
        );
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("missing field `{missing}`")),
            "without {missing}: {detail}"
        );
    }
}

#[actix_web::test]
async fn a_customer_may_not_add_or_change_books() {
    let app = spawn_app().await;
    let isbn = isbn_with("979", 5);
    let body = app
        .post_json("/api/books", CUSTOMER, &new_book(&isbn))
        .await
        .problem(403);
    assert_eq!(body["type"], "/problems/forbidden");
    let body = app
        .patch_json(
            &format!("/api/books/{EFFECTIVE_JAVA}"),
            CUSTOMER,
            &json!({"price_cents": 1}),
        )
        .await
        .problem(403);
    assert_eq!(body["type"], "/problems/forbidden");
    assert!(!app.stores.has_book(&isbn).await);
    assert_eq!(app.book(EFFECTIVE_JAVA).await["price_cents"], 4499);
}

#[actix_web::test]
async fn adding_or_changing_a_book_without_a_key_is_401() {
    let app = spawn_app().await;
    let isbn = isbn_with("979", 6);
    app.request(Method::POST, "/api/books")
        .json(&new_book(&isbn))
        .send()
        .await
        .problem(401);
    app.request(Method::PATCH, &format!("/api/books/{EFFECTIVE_JAVA}"))
        .json(&json!({"stock": 0}))
        .send()
        .await
        .problem(401);
    assert!(!app.stores.has_book(&isbn).await);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn an_admin_changes_some_fields_of_a_book_and_keeps_the_others() {
    let app = spawn_app().await;
    let path = format!("/api/books/{EFFECTIVE_JAVA}");
    let changed = app
        .patch_json(&path, ADMIN, &json!({"price_cents": 3999}))
        .await
        .success(200);
    assert_eq!(
        changed,
        json!({"isbn": EFFECTIVE_JAVA, "title": "Effective Java", "author": "Joshua Bloch",
               "price_cents": 3999, "currency": "USD", "stock": 12})
    );
    let changed = app
        .patch_json(
            &format!("/api/books/{EFFECTIVE_JAVA_10}"),
            ADMIN,
            &json!({"title": "Effective Java, 3rd ed.", "stock": 30}),
        )
        .await
        .success(200);
    assert_eq!(changed["title"], "Effective Java, 3rd ed.");
    assert_eq!(changed["stock"], 30);
    assert_eq!(changed["price_cents"], 3999);
    assert_eq!(app.book(EFFECTIVE_JAVA).await, changed);
}

#[actix_web::test]
async fn changing_an_unknown_book_is_404() {
    let app = spawn_app().await;
    let body = app
        .patch_json(
            &format!("/api/books/{}", unknown_isbn()),
            ADMIN,
            &json!({"stock": 1}),
        )
        .await
        .problem(404);
    assert_eq!(body["type"], "/problems/not-found");
}

#[actix_web::test]
async fn invalid_changes_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let path = format!("/api/books/{EFFECTIVE_JAVA}");
    let before = app.book(EFFECTIVE_JAVA).await;
    for (change, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "  "}), "title"),
        (json!({"author": "\t"}), "author"),
        (json!({"price_cents": -1}), "price_cents"),
        (json!({"stock": -3}), "stock"),
        (json!({"price_cents": 100, "stock": -3}), "stock"),
    ] {
        let fields = app.patch_json(&path, ADMIN, &change).await.field_errors();
        assert!(fields.iter().any(|f| f == field), "{change}: {fields:?}");
        assert_eq!(
            app.book(EFFECTIVE_JAVA).await,
            before,
            "{change} changed the book"
        );
    }
}

#[actix_web::test]
async fn changes_of_the_wrong_json_type_are_400() {
    let app = spawn_app().await;
    let path = format!("/api/books/{EFFECTIVE_JAVA}");
    for change in [
        json!({"price_cents": "1"}),
        json!({"price_cents": 12.5}),
        json!({"stock": true}),
        json!([]),
    ] {
        app.patch_json(&path, ADMIN, &change).await.problem(400);
    }
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn changing_a_book_with_a_malformed_isbn_is_400() {
    let app = spawn_app().await;
    app.patch_json("/api/books/not-an-isbn", ADMIN, &json!({"stock": 1}))
        .await
        .problem(400);
}
