//! A graceful restart (SIGTERM, then a new process on the same database) keeps orders,
//! stock, deliveries and idempotency keys, and does not load the demo catalogue again.

use bookstore_inventory::demo_catalogue;
use serde_json::{Value, json};

use crate::harness::{
    Api, Backend, EFFECTIVE_JAVA, RUST_BOOK, Reply, order_request, per_backend, start_server,
    stop_gracefully,
};

per_backend!(orders_stock_deliveries_and_idempotency_keys_survive_a_graceful_restart);

/// Everything the test expects a restart to keep, as the API shows it.
#[derive(Debug, PartialEq)]
struct Visible {
    books: Vec<Value>,
    orders: Vec<Value>,
    order_list: Vec<Value>,
    delivery: Value,
}

impl Visible {
    async fn read(api: &Api, order_ids: &[String]) -> Visible {
        let mut orders = Vec::new();
        for id in order_ids {
            orders.push(ok(api.get(&format!("/api/orders/{id}")).await));
        }
        Visible {
            books: api.all_books().await,
            orders,
            order_list: api.all_orders().await,
            delivery: ok(api
                .get(&format!("/api/orders/{}/delivery", order_ids[0]))
                .await),
        }
    }
}

/// The body of a 200.
fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

async fn orders_stock_deliveries_and_idempotency_keys_survive_a_graceful_restart(backend: Backend) {
    let database = backend.fresh_database().await;
    let server = start_server(database.server_args(&[])).await;
    let api = Api::new(&server.base_url);
    assert_eq!(
        api.all_books().await.len(),
        demo_catalogue().len(),
        "a fresh database gets the demo catalogue"
    );

    api.set_stock(EFFECTIVE_JAVA, 40).await;
    api.set_stock(RUST_BOOK, 50).await;
    let keyed_request = order_request(&[(EFFECTIVE_JAVA, 2)]);
    let idempotency_key = "durability-restart-order-1";
    let keyed = api
        .place_order(&keyed_request, Some(idempotency_key))
        .await
        .expect("the keyed order is answered");
    assert_eq!(keyed.status, 201, "{}", keyed.body);
    let two_lines = api
        .place_order(&order_request(&[(EFFECTIVE_JAVA, 1), (RUST_BOOK, 3)]), None)
        .await
        .expect("the two-line order is answered");
    assert_eq!(two_lines.status, 201, "{}", two_lines.body);
    let order_ids = [keyed.id(), two_lines.id()];
    let delivery = api
        .post(
            "/api/delivery",
            &json!({
                "order_id": order_ids[0],
                "address": {"recipient": "Ada Lovelace", "line1": "1 Main St", "city": "London",
                            "postal_code": "N1 9GU", "country": "GB"},
            }),
        )
        .await;
    assert_eq!(delivery.status, 201, "{}", delivery.body);

    let before = Visible::read(&api, &order_ids).await;
    assert_eq!(api.stock_of(EFFECTIVE_JAVA).await, 37);
    assert_eq!(api.stock_of(RUST_BOOK).await, 47);
    assert_eq!(before.order_list.len(), 2);
    stop_gracefully(server).await;

    let server = start_server(database.server_args(&[])).await;
    let api = Api::new(&server.base_url);
    let after = Visible::read(&api, &order_ids).await;
    assert_eq!(
        after, before,
        "books (count and stock), orders, the order list and the delivery are as before the restart"
    );
    assert_eq!(after.orders[0], keyed.json(), "as placed");
    assert_eq!(after.orders[1], two_lines.json(), "as placed");
    assert_eq!(after.delivery, delivery.json(), "as scheduled");
    assert_eq!(api.stock_of(EFFECTIVE_JAVA).await, 37, "no stock reset");
    assert_eq!(api.stock_of(RUST_BOOK).await, 47, "no stock reset");

    let replay = api
        .place_order(&keyed_request, Some(idempotency_key))
        .await
        .expect("the retry is answered");
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert_eq!(replay.replayed.as_deref(), Some("true"));
    assert_eq!(replay.body, keyed.body, "the first response, byte for byte");
    assert_eq!(api.all_orders().await.len(), 2, "the retry placed no order");
    assert_eq!(
        api.stock_of(EFFECTIVE_JAVA).await,
        37,
        "the retry took no stock"
    );
    stop_gracefully(server).await;
}
