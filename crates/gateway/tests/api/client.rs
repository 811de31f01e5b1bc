//! The typed Rust client, `bookstore-client`, against a real server: a customer's whole
//! flow (browse, order, retry, deliver, cancel) and an admin's, and every problem the client
//! can provoke, each decoded into its kind.
//!
//! Three problems cannot be provoked through the client: 405 (it has no call with a method
//! the path lacks), 415 (it always sends JSON) and 500 (the API has no failure to provoke).

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bookstore_client::types::{
    Address, BookPatchRequest, DeliveryStatus, HealthStatus, NewBookRequest, OrderItemRequest,
    OrderStatus, PaymentRequest, PaymentStatus, PlaceOrderRequest, ScheduleDeliveryRequest,
};
use bookstore_client::{
    ApiKey, BookQuery, Client, Error, IdempotencyKey, Problem, ProblemKind, reqwest,
};
use bookstore_inventory::demo_catalogue;
use futures_util::TryStreamExt;
use uuid::Uuid;

use crate::helpers::{
    ADMIN, AppConfig, CUSTOMER, DESIGN_PATTERNS, EFFECTIVE_JAVA, EFFECTIVE_JAVA_10, RUST_BOOK,
    RunningServer, UnavailableOrderStore, unknown_isbn,
};

/// A client of `server` calling as `api_key`, with no proxy and a timeout.
fn client(server: &RunningServer, api_key: &str) -> Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    Client::with_builder(&server.url(""), ApiKey::new(api_key), builder)
        .expect("a client of the test server")
}

fn order_of(lines: &[(&str, u32)], token: &str) -> PlaceOrderRequest {
    PlaceOrderRequest {
        items: lines
            .iter()
            .map(|(isbn, quantity)| OrderItemRequest {
                isbn: isbn.parse().expect("a test ISBN the client accepts"),
                quantity: NonZeroU32::new(*quantity).expect("a positive quantity"),
            })
            .collect(),
        payment: PaymentRequest {
            token: token.parse().expect("a token the client accepts"),
        },
    }
}

fn delivery_of(order_id: Uuid) -> ScheduleDeliveryRequest {
    ScheduleDeliveryRequest {
        order_id,
        address: Address {
            recipient: "Ada Lovelace".parse().unwrap(),
            line1: "1 Main St".parse().unwrap(),
            line2: None,
            city: "London".parse().unwrap(),
            postal_code: "N1 9GU".parse().unwrap(),
            country: "GB".parse().unwrap(),
        },
        requested_date: None,
    }
}

/// The problem a call failed with; panics on success or on any other error.
#[track_caller]
fn problem<T: std::fmt::Debug>(result: Result<T, Error>) -> Problem {
    match result {
        Err(Error::Problem(problem)) => *problem,
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_customer_browses_orders_retries_schedules_and_cancels_through_the_client() {
    let server = RunningServer::start(AppConfig::default());
    let customer = client(&server, CUSTOMER);

    // Every book, three per page: each exactly once, in ISBN order.
    let books: Vec<_> = customer
        .list_books(BookQuery::all().with_limit(NonZeroU32::new(3).unwrap()))
        .try_collect()
        .await
        .expect("the catalogue");
    let isbns: Vec<String> = books.iter().map(|book| book.isbn.to_string()).collect();
    let mut expected: Vec<String> = demo_catalogue()
        .iter()
        .map(|book| book.isbn.to_string())
        .collect();
    expected.sort();
    assert_eq!(isbns, expected);

    let rust_books: Vec<_> = customer
        .list_books(BookQuery::matching("rust"))
        .try_collect()
        .await
        .unwrap();
    assert!(
        rust_books
            .iter()
            .any(|book| book.isbn.as_str() == RUST_BOOK)
    );
    assert!(rust_books.iter().all(|book| {
        let text = format!("{} {}", book.title, book.author).to_lowercase();
        text.contains("rust")
    }));

    let java = customer.get_book(EFFECTIVE_JAVA_10).await.unwrap();
    assert_eq!(java.isbn.as_str(), EFFECTIVE_JAVA);
    assert_eq!((java.price_cents, java.stock), (4499, 12));

    // Order, then retry with the same key: the first answer again, charged once.
    let order = order_of(&[(EFFECTIVE_JAVA, 2)], "tok_visa");
    let key = IdempotencyKey::random();
    let placed = customer.create_order(&order, &key).await.unwrap();
    assert!(!placed.replayed);
    assert_eq!(placed.value.status, OrderStatus::Confirmed);
    assert_eq!(placed.value.payment.status, PaymentStatus::Captured);
    assert_eq!(placed.value.total_cents, 8998);
    let retried = customer.create_order(&order, &key).await.unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.value, placed.value);
    assert_eq!(server.stores.captured_count(), 1);
    assert_eq!(server.stores.stock_of(EFFECTIVE_JAVA).await, 10);

    let order_id = placed.value.id;
    assert_eq!(customer.get_order(order_id).await.unwrap(), placed.value);
    let second = customer
        .create_order(
            &order_of(&[(RUST_BOOK, 1)], "tok_mastercard"),
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let mine: Vec<Uuid> = customer
        .list_orders(NonZeroU32::new(1))
        .map_ok(|order| order.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        mine,
        [second.value.id, order_id],
        "newest first, one per page"
    );

    // Delivery, retried too.
    let delivery_key = IdempotencyKey::random();
    let scheduled = customer
        .create_delivery(&delivery_of(order_id), &delivery_key)
        .await
        .unwrap();
    assert!(!scheduled.replayed);
    assert_eq!(scheduled.value.status, DeliveryStatus::Scheduled);
    assert_eq!(scheduled.value.order_id, order_id);
    assert!(scheduled.value.scheduled_date > chrono::Utc::now().date_naive());
    let again = customer
        .create_delivery(&delivery_of(order_id), &delivery_key)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, scheduled.value);
    assert_eq!(
        customer.get_delivery(scheduled.value.id).await.unwrap(),
        scheduled.value
    );
    assert_eq!(
        customer.get_order_delivery(order_id).await.unwrap(),
        scheduled.value
    );

    // Cancel, retried: refunded once, stock back, delivery cancelled.
    let cancel_key = IdempotencyKey::random();
    let cancelled = customer.cancel_order(order_id, &cancel_key).await.unwrap();
    assert!(!cancelled.replayed);
    assert_eq!(cancelled.value.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.value.payment.status, PaymentStatus::Refunded);
    let cancelled_again = customer.cancel_order(order_id, &cancel_key).await.unwrap();
    assert!(cancelled_again.replayed);
    assert_eq!(cancelled_again.value, cancelled.value);
    assert_eq!(server.stores.refunded_count(), 1);
    assert_eq!(server.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(
        customer.get_order_delivery(order_id).await.unwrap().status,
        DeliveryStatus::Cancelled
    );

    assert_eq!(
        customer.get_liveness().await.unwrap().status,
        HealthStatus::Live
    );
    assert_eq!(
        customer.get_readiness().await.unwrap().status,
        HealthStatus::Ready
    );
    server.stop().await;
}

#[actix_web::test]
async fn an_admin_adds_and_changes_a_book_through_the_client() {
    let server = RunningServer::start(AppConfig::default());
    let admin = client(&server, ADMIN);

    let added = admin
        .create_book(&NewBookRequest {
            isbn: "978-1-61729-455-6".parse().unwrap(),
            title: "Rust in Action".parse().unwrap(),
            author: "Tim McNamara".parse().unwrap(),
            price_cents: 4999,
            stock: 3,
            currency: None,
        })
        .await
        .unwrap();
    assert_eq!(added.isbn.as_str(), "9781617294556");
    assert_eq!(added.currency.as_str(), "USD");

    let patch = BookPatchRequest {
        stock: Some(2),
        ..Default::default()
    };
    let changed = admin
        .update_book("978 1 61729 455 6", &patch)
        .await
        .unwrap();
    assert_eq!(
        (changed.stock, changed.title.as_str()),
        (2, "Rust in Action")
    );
    server.stop().await;
}

#[actix_web::test]
async fn every_problem_the_client_can_provoke_decodes_into_its_kind() {
    let server = RunningServer::start(AppConfig::default());
    let customer = client(&server, CUSTOMER);
    let admin = client(&server, ADMIN);
    let mut seen = Vec::new();
    let mut check = |problem: Problem, kind: ProblemKind, status: u16| {
        assert_eq!(
            (&problem.kind, problem.status),
            (&kind, status),
            "{problem:?}"
        );
        assert!(
            !problem.title.is_empty() && !problem.detail.is_empty(),
            "{problem:?}"
        );
        assert!(problem.request_id.is_some(), "{problem:?}");
        seen.push(kind);
        problem
    };

    // 400: a well-formed ISBN-10 with a wrong check digit; a cursor the server never issued.
    check(
        problem(customer.get_book("0134685998").await),
        ProblemKind::MalformedRequest,
        400,
    );
    check(
        problem(
            customer
                .list_books_page(&BookQuery::all(), Some("zz"))
                .await,
        ),
        ProblemKind::MalformedRequest,
        400,
    );
    // 401: an unknown key.
    check(
        problem(
            client(&server, "no-such-key")
                .get_book(EFFECTIVE_JAVA)
                .await,
        ),
        ProblemKind::Unauthenticated,
        401,
    );
    // 402: a declined card.
    let declined = order_of(&[(EFFECTIVE_JAVA, 1)], "tok_chargeDeclined");
    check(
        problem(
            customer
                .create_order(&declined, &IdempotencyKey::random())
                .await,
        ),
        ProblemKind::PaymentDeclined,
        402,
    );
    // 403: a customer changing the catalogue.
    let patch = BookPatchRequest {
        stock: Some(1),
        ..Default::default()
    };
    check(
        problem(customer.update_book(EFFECTIVE_JAVA, &patch).await),
        ProblemKind::Forbidden,
        403,
    );
    // 404: an unknown order, and an order with no delivery.
    check(
        problem(customer.get_order(Uuid::new_v4()).await),
        ProblemKind::NotFound,
        404,
    );
    let placed = customer
        .create_order(
            &order_of(&[(EFFECTIVE_JAVA, 1)], "tok_visa"),
            &IdempotencyKey::random(),
        )
        .await
        .unwrap()
        .value;
    check(
        problem(customer.get_order_delivery(placed.id).await),
        ProblemKind::NotFound,
        404,
    );
    // 409: not enough stock, with the book and the counts.
    let sold_out = check(
        problem(
            customer
                .create_order(
                    &order_of(&[(DESIGN_PATTERNS, 1)], "tok_visa"),
                    &IdempotencyKey::random(),
                )
                .await,
        ),
        ProblemKind::OutOfStock,
        409,
    );
    assert_eq!(sold_out.isbn.as_deref(), Some(DESIGN_PATTERNS));
    assert_eq!((sold_out.requested, sold_out.available), (Some(1), Some(0)));
    // 409: a book that exists.
    let existing = NewBookRequest {
        isbn: EFFECTIVE_JAVA.parse().unwrap(),
        title: "Effective Java".parse().unwrap(),
        author: "Joshua Bloch".parse().unwrap(),
        price_cents: 4499,
        stock: 1,
        currency: None,
    };
    check(
        problem(admin.create_book(&existing).await),
        ProblemKind::BookExists,
        409,
    );
    // 409: a second delivery; then, once cancelled, no cancelling twice and no delivery.
    customer
        .create_delivery(&delivery_of(placed.id), &IdempotencyKey::random())
        .await
        .unwrap();
    check(
        problem(
            customer
                .create_delivery(&delivery_of(placed.id), &IdempotencyKey::random())
                .await,
        ),
        ProblemKind::DeliveryExists,
        409,
    );
    customer
        .cancel_order(placed.id, &IdempotencyKey::random())
        .await
        .unwrap();
    check(
        problem(
            customer
                .cancel_order(placed.id, &IdempotencyKey::random())
                .await,
        ),
        ProblemKind::OrderNotCancellable,
        409,
    );
    let other = customer
        .create_order(
            &order_of(&[(RUST_BOOK, 1)], "tok_visa"),
            &IdempotencyKey::random(),
        )
        .await
        .unwrap()
        .value;
    customer
        .cancel_order(other.id, &IdempotencyKey::random())
        .await
        .unwrap();
    check(
        problem(
            customer
                .create_delivery(&delivery_of(other.id), &IdempotencyKey::random())
                .await,
        ),
        ProblemKind::OrderCancelled,
        409,
    );
    // 413: an order of 2,000 lines (78 KB) is larger than the 64 KiB body limit.
    let lines: Vec<(&str, u32)> = vec![(EFFECTIVE_JAVA, 1); 2_000];
    check(
        problem(
            customer
                .create_order(&order_of(&lines, "tok_visa"), &IdempotencyKey::random())
                .await,
        ),
        ProblemKind::PayloadTooLarge,
        413,
    );
    // 414: a search longer than the 8 KiB URL limit.
    check(
        problem(
            customer
                .list_books_page(&BookQuery::matching("a".repeat(9_000)), None)
                .await,
        ),
        ProblemKind::UriTooLong,
        414,
    );
    // 422: a book that is not in the catalogue; a token that is not a test token.
    let unknown = unknown_isbn();
    let not_sold = check(
        problem(
            customer
                .create_order(
                    &order_of(&[(&unknown, 1)], "tok_visa"),
                    &IdempotencyKey::random(),
                )
                .await,
        ),
        ProblemKind::ValidationFailed,
        422,
    );
    assert_eq!(not_sold.isbn.as_deref(), Some(unknown.as_str()));
    assert_eq!(not_sold.errors.len(), 1, "{not_sold:?}");
    check(
        problem(
            customer
                .create_order(
                    &order_of(&[(RUST_BOOK, 1)], "tok_unknown"),
                    &IdempotencyKey::random(),
                )
                .await,
        ),
        ProblemKind::ValidationFailed,
        422,
    );
    // 422: a key reused for another order; the first answer is replayed for its own order.
    let key = IdempotencyKey::random();
    customer
        .create_order(&order_of(&[(RUST_BOOK, 1)], "tok_visa"), &key)
        .await
        .unwrap();
    check(
        problem(
            customer
                .create_order(&order_of(&[(RUST_BOOK, 2)], "tok_visa"), &key)
                .await,
        ),
        ProblemKind::IdempotencyKeyReused,
        422,
    );
    // A problem is replayed like any other answer.
    let declined_key = IdempotencyKey::random();
    let first = problem(customer.create_order(&declined, &declined_key).await);
    let replayed = problem(customer.create_order(&declined, &declined_key).await);
    assert!(!first.replayed && replayed.replayed);
    assert_eq!(replayed.request_id, first.request_id);
    // 431: an API key too large for the 16 KiB header limit.
    check(
        problem(
            client(&server, &"k".repeat(20_000))
                .get_book(EFFECTIVE_JAVA)
                .await,
        ),
        ProblemKind::HeadersTooLarge,
        431,
    );
    server.stop().await;

    let seen: BTreeSet<String> = seen.iter().map(ToString::to_string).collect();
    let expected: BTreeSet<String> = [
        ProblemKind::MalformedRequest,
        ProblemKind::Unauthenticated,
        ProblemKind::PaymentDeclined,
        ProblemKind::Forbidden,
        ProblemKind::NotFound,
        ProblemKind::OutOfStock,
        ProblemKind::BookExists,
        ProblemKind::DeliveryExists,
        ProblemKind::OrderNotCancellable,
        ProblemKind::OrderCancelled,
        ProblemKind::PayloadTooLarge,
        ProblemKind::UriTooLong,
        ProblemKind::ValidationFailed,
        ProblemKind::IdempotencyKeyReused,
        ProblemKind::HeadersTooLarge,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    // With the in-flight conflict, the rate limit and the unavailable store below: every
    // kind but 405, 415 and 500.
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn a_retry_while_the_first_request_is_in_flight_is_a_conflict() {
    let server = RunningServer::start(AppConfig {
        hold_payments: true,
        ..AppConfig::default()
    });
    let customer = client(&server, CUSTOMER);
    let order = order_of(&[(EFFECTIVE_JAVA, 1)], "tok_visa");
    let key = IdempotencyKey::random();

    let first = customer.create_order(&order, &key);
    let retry = async {
        server.stores.payment_started().await;
        let retry = customer.create_order(&order, &key).await;
        server.stores.release_payments(1);
        retry
    };
    let (first, retry) = tokio::join!(first, retry);

    assert!(!first.unwrap().replayed);
    let in_flight = problem(retry);
    assert_eq!(
        (in_flight.kind, in_flight.status),
        (ProblemKind::IdempotencyKeyInFlight, 409)
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_rate_limited_call_says_how_long_to_wait() {
    let server = RunningServer::start(AppConfig {
        rate_limit: Some((1, 1)),
        ..AppConfig::default()
    });
    let customer = client(&server, CUSTOMER);

    // One request a second with a burst of one: within a few calls, one is refused.
    let mut refused = None;
    for _ in 0..20 {
        if let Err(error) = customer.get_book(EFFECTIVE_JAVA).await {
            refused = Some(problem::<()>(Err(error)));
            break;
        }
    }
    let refused = refused.expect("a call over the limit is refused");
    assert_eq!(
        (&refused.kind, refused.status),
        (&ProblemKind::RateLimited, 429)
    );
    let wait = refused.retry_after.expect("Retry-After");
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn an_unavailable_store_is_a_service_unavailable_problem() {
    let server = RunningServer::start(AppConfig {
        orders: Some(Arc::new(UnavailableOrderStore)),
        ..AppConfig::default()
    });
    let customer = client(&server, CUSTOMER);

    let unavailable = problem(customer.list_orders_page(None, None).await);
    assert_eq!(
        (&unavailable.kind, unavailable.status),
        (&ProblemKind::ServiceUnavailable, 503)
    );
    assert_eq!(
        problem(customer.get_readiness().await).kind,
        ProblemKind::ServiceUnavailable
    );
    server.stop().await;
}
