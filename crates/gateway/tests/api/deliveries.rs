//! `/api/delivery`: scheduling (the business-day rule, address checks, one per order) and
//! reading deliveries, and what cancelling an order does to its delivery.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ADMIN, CUSTOMER, EFFECTIVE_JAVA, OTHER_CUSTOMER, RUST_BOOK, address, delivery_request,
    spawn_app,
};

fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn first_business_day_on_or_after(mut date: NaiveDate) -> NaiveDate {
    while !is_business_day(date) {
        date = date + Days::new(1);
    }
    date
}

fn first_after(today: NaiveDate, weekday: Weekday) -> NaiveDate {
    let mut date = today + Days::new(1);
    while date.weekday() != weekday {
        date = date + Days::new(1);
    }
    date
}

fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[actix_web::test]
async fn scheduling_a_delivery_returns_201_with_the_delivery_and_its_location() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let response = app
        .post_json("/api/delivery", CUSTOMER, &delivery_request(order_id))
        .await;
    let delivery = response.success(201);

    let keys: BTreeSet<&str> = delivery
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "order_id",
            "status",
            "address",
            "scheduled_date",
            "promised_date",
            "late",
            "tracking_number",
            "carrier",
            "carrier_tracking_number",
            "history",
            "created_at",
        ])
    );
    let id = delivery["id"].as_str().unwrap();
    assert_eq!(id, Uuid::parse_str(id).unwrap().hyphenated().to_string());
    assert_eq!(delivery["order_id"], order_id);
    assert_eq!(delivery["status"], "scheduled");
    assert_eq!(delivery["address"], address());
    let scheduled =
        NaiveDate::parse_from_str(delivery["scheduled_date"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    assert!(
        scheduled > Utc::now().date_naive() && is_business_day(scheduled),
        "{scheduled}"
    );
    let tracking = delivery["tracking_number"].as_str().unwrap();
    assert!(
        tracking.starts_with("BK") && tracking.len() > 2,
        "{tracking}"
    );
    let created_at =
        chrono::DateTime::parse_from_rfc3339(delivery["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(created_at.offset().local_minus_utc(), 0);
    assert_eq!(
        response.header("location"),
        Some(format!("/api/delivery/{id}").as_str())
    );
}

#[actix_web::test]
async fn the_scheduled_date_is_the_requested_business_day_or_the_next_business_day_from_tomorrow() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let tomorrow = today + Days::new(1);
    let weekday_two_days_ahead = first_business_day_on_or_after(today + Days::new(2));
    let weekday_a_month_ahead = first_business_day_on_or_after(today + Days::new(30));
    let saturday = first_after(today, Weekday::Sat);
    let sunday = first_after(today, Weekday::Sun);
    let cases: Vec<(&str, Option<NaiveDate>, NaiveDate)> = vec![
        (
            "a business day two or more days ahead",
            Some(weekday_two_days_ahead),
            weekday_two_days_ahead,
        ),
        (
            "a business day a month ahead",
            Some(weekday_a_month_ahead),
            weekday_a_month_ahead,
        ),
        ("no date", None, first_business_day_on_or_after(tomorrow)),
        (
            "today",
            Some(today),
            first_business_day_on_or_after(tomorrow),
        ),
        (
            "tomorrow",
            Some(tomorrow),
            first_business_day_on_or_after(tomorrow),
        ),
        ("a saturday", Some(saturday), saturday + Days::new(2)),
        ("a sunday", Some(sunday), sunday + Days::new(1)),
    ];
    for (case, requested, expected) in cases {
        let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
        let mut body = delivery_request(order["id"].as_str().unwrap());
        if let Some(requested) = requested {
            body["requested_date"] = json!(day(requested));
        }
        let delivery = app
            .post_json("/api/delivery", CUSTOMER, &body)
            .await
            .success(201);
        assert_eq!(
            delivery["scheduled_date"],
            day(expected),
            "{case} ({requested:?}), today {today}"
        );
    }
}

#[actix_web::test]
async fn a_requested_date_before_today_is_422() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    for past in [today - Days::new(1), today - Days::new(400)] {
        let mut body = delivery_request(order_id);
        body["requested_date"] = json!(day(past));
        let fields = app
            .post_json("/api/delivery", CUSTOMER, &body)
            .await
            .field_errors();
        assert_eq!(fields, ["requested_date"], "{past}");
    }
    app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .problem(404);
}

#[actix_web::test]
async fn a_requested_date_not_written_exactly_yyyy_mm_dd_is_422_naming_the_field() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    for date in [
        "2030-1-1",
        "2030-01-1",
        "2030-1-01",
        " 2030-01-01",
        "+2030-01-01",
        "2030-01-01T00:00:00Z",
        "2030/01/01",
        "20300101",
        "2030-02-30",
    ] {
        let mut body = delivery_request(order_id);
        body["requested_date"] = json!(date);
        let response = app.post_json("/api/delivery", CUSTOMER, &body).await;
        let problem = response.problem(422);
        assert_eq!(problem["type"], "/problems/validation-failed", "{date:?}");
        assert_eq!(response.field_errors(), ["requested_date"], "{date:?}");
    }
    // Nothing was scheduled; the exact spelling of the same day is accepted.
    app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .problem(404);
    let mut body = delivery_request(order_id);
    body["requested_date"] = json!("2030-01-01");
    let delivery = app
        .post_json("/api/delivery", CUSTOMER, &body)
        .await
        .success(201);
    assert_eq!(delivery["scheduled_date"], "2030-01-01");
}

#[actix_web::test]
async fn an_order_id_in_another_uuid_spelling_is_422_and_in_capitals_is_accepted() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    for spelling in [
        format!("{{{order_id}}}"),
        format!("urn:uuid:{order_id}"),
        order_id.replace('-', ""),
    ] {
        let fields = app
            .post_json("/api/delivery", CUSTOMER, &delivery_request(&spelling))
            .await
            .field_errors();
        assert_eq!(fields, ["order_id"], "{spelling}");
    }
    let delivery = app
        .post_json(
            "/api/delivery",
            CUSTOMER,
            &delivery_request(&order_id.to_uppercase()),
        )
        .await
        .success(201);
    assert_eq!(delivery["order_id"], order_id);
}

#[actix_web::test]
async fn addresses_with_an_unassigned_country_or_a_blank_recipient_are_422() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("country", json!("ZZ"), "address.country"),
        ("country", json!("XX"), "address.country"),
        ("country", json!("GBR"), "address.country"),
        ("country", json!("UK"), "address.country"),
        ("country", json!(""), "address.country"),
        ("recipient", json!(""), "address.recipient"),
        ("recipient", json!("   "), "address.recipient"),
        ("line1", json!(" "), "address.line1"),
        ("city", json!(""), "address.city"),
    ];
    for (field, value, expected) in cases {
        let mut body = delivery_request(order_id);
        body["address"][field] = value.clone();
        let fields = app
            .post_json("/api/delivery", CUSTOMER, &body)
            .await
            .field_errors();
        assert!(
            fields.iter().any(|f| f == expected),
            "{field} = {value}: {fields:?}"
        );
    }
    app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .problem(404);
}

#[actix_web::test]
async fn an_order_id_that_is_not_a_uuid_is_422() {
    let app = spawn_app().await;
    let fields = app
        .post_json("/api/delivery", CUSTOMER, &delivery_request("order-42"))
        .await
        .field_errors();
    assert_eq!(fields, ["order_id"]);
}

#[actix_web::test]
async fn a_second_delivery_for_one_order_is_409() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let first = app.schedule_delivery(CUSTOMER, order_id).await;
    let problem = app
        .post_json("/api/delivery", CUSTOMER, &delivery_request(order_id))
        .await
        .problem(409);
    assert_eq!(problem["type"], "/problems/delivery-exists");
    assert_eq!(
        app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
            .await
            .success(200),
        first
    );
}

#[actix_web::test]
async fn a_cancelled_order_cannot_be_delivered() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    app.cancel(order_id, CUSTOMER).await.assert_status(200);
    app.post_json("/api/delivery", CUSTOMER, &delivery_request(order_id))
        .await
        .problem(409);
    app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .problem(404);
}

#[actix_web::test]
async fn an_unknown_order_or_another_keys_order_cannot_be_delivered_and_both_answer_alike() {
    let app = spawn_app().await;
    let theirs = app.place_order(OTHER_CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let theirs_id = theirs["id"].as_str().unwrap();
    let other = app
        .post_json("/api/delivery", CUSTOMER, &delivery_request(theirs_id))
        .await
        .problem(404);
    let unknown = app
        .post_json(
            "/api/delivery",
            CUSTOMER,
            &delivery_request(&Uuid::new_v4().to_string()),
        )
        .await
        .problem(404);
    for field in ["type", "title", "status", "detail"] {
        assert_eq!(other[field], unknown[field], "{field}");
    }
    // An admin schedules deliveries of its own orders only.
    app.post_json("/api/delivery", ADMIN, &delivery_request(theirs_id))
        .await
        .problem(404);
    app.get(&format!("/api/orders/{theirs_id}/delivery"), OTHER_CUSTOMER)
        .await
        .problem(404);
}

#[actix_web::test]
async fn a_delivery_is_read_by_its_id_and_through_its_order() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(CUSTOMER, order_id).await;
    let id = delivery["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/delivery/{id}"), CUSTOMER)
            .await
            .success(200),
        delivery
    );
    assert_eq!(
        app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
            .await
            .success(200),
        delivery
    );
}

#[actix_web::test]
async fn an_order_without_a_delivery_or_an_unknown_delivery_is_404() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .problem(404);
    app.get(&format!("/api/delivery/{}", Uuid::new_v4()), CUSTOMER)
        .await
        .problem(404);
    app.get(
        &format!("/api/orders/{}/delivery", Uuid::new_v4()),
        CUSTOMER,
    )
    .await
    .problem(404);
    app.get("/api/delivery/not-a-uuid", CUSTOMER)
        .await
        .problem(400);
}

#[actix_web::test]
async fn another_customer_cannot_read_a_delivery_and_it_answers_as_an_unknown_one() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(CUSTOMER, order_id).await;
    let id = delivery["id"].as_str().unwrap();
    let by_id = app
        .get(&format!("/api/delivery/{id}"), OTHER_CUSTOMER)
        .await
        .problem(404);
    let unknown = app
        .get(&format!("/api/delivery/{}", Uuid::new_v4()), OTHER_CUSTOMER)
        .await
        .problem(404);
    for field in ["type", "title", "status", "detail"] {
        assert_eq!(by_id[field], unknown[field], "{field}");
    }
    app.get(&format!("/api/orders/{order_id}/delivery"), OTHER_CUSTOMER)
        .await
        .problem(404);
}

#[actix_web::test]
async fn cancelling_an_order_cancels_its_scheduled_delivery() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 2)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(CUSTOMER, order_id).await;
    let id = delivery["id"].as_str().unwrap();

    app.cancel(order_id, CUSTOMER).await.success(200);
    let after = app
        .get(&format!("/api/delivery/{id}"), CUSTOMER)
        .await
        .success(200);
    let mut expected = delivery.clone();
    expected["status"] = json!("cancelled");
    assert_eq!(after, expected);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
}

#[actix_web::test]
async fn an_order_whose_delivery_was_dispatched_cannot_be_cancelled_and_nothing_changes() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 2)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(CUSTOMER, order_id).await;
    let id = delivery["id"].as_str().unwrap();
    app.stores.dispatch_delivery(id).await;

    let problem = app.cancel(order_id, CUSTOMER).await.problem(409);
    assert_eq!(problem["type"], "/problems/order-not-cancellable");
    assert_eq!(
        app.get(&format!("/api/orders/{order_id}"), CUSTOMER)
            .await
            .success(200),
        order
    );
    assert_eq!(
        app.get(&format!("/api/delivery/{id}"), CUSTOMER)
            .await
            .success(200)["status"],
        "dispatched"
    );
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 73);
    assert_eq!(app.stores.captured_count(), 1);
    assert_eq!(app.stores.refunded_count(), 0);
}
