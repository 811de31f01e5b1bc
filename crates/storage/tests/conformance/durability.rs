//! What only a database can do: keep everything across a restart, share it between
//! instances, and fail cleanly when it is gone.

use bookstore_delivery::{DeliveryError, DeliveryStatus};
use bookstore_inventory::{BookQuery, InventoryError};
use bookstore_sales::CustomerId as Owner;
use bookstore_sales::{CustomerId, PaymentError, PaymentToken, SalesError};
use bookstore_storage::idempotency::{Fingerprint, IdempotencyUnavailable};
use bookstore_storage::{ConnectOptions, StorageError, connect, migrate};
use bookstore_types::OrderId;
use chrono::{Duration, Utc};

use crate::harness::{
    Backend, book, delivery_for_order_in_status, fresh_reservation, isbn, line, order_for,
    stock_catalogue, usd,
};

crate::conformance!(; sql_only:
    everything_survives_closing_and_reopening_the_database,
    a_closed_database_makes_every_store_unavailable,
    migrating_again_changes_nothing,
);

async fn everything_survives_closing_and_reopening_the_database(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [book(
            1,
            "Преступление и наказание",
            "Фёдор Достоевский",
            1500,
            5,
        )],
    )
    .await;
    let reservation = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 2)])
        .await
        .unwrap();
    let order = order_for("alice");
    stores.orders.insert(order.clone()).await.unwrap();
    let delivery = delivery_for_order_in_status(order.id(), DeliveryStatus::Scheduled);
    stores.deliveries.insert(delivery.clone()).await.unwrap();
    let reference = OrderId::generate();
    let token = PaymentToken::parse("tok_visa").unwrap();
    let transaction_id = stores
        .payments
        .capture(&token, usd(3000), reference)
        .await
        .unwrap();
    stores.database.as_ref().unwrap().close().await;

    let database = stores.location.as_ref().unwrap().open().await;
    let reopened = database.stores(&bookstore_storage::events::Outbox::id_only());
    let (catalogue, orders, deliveries, payments) = (
        reopened.catalogue,
        reopened.orders,
        reopened.deliveries,
        reopened.payments,
    );

    let reread = catalogue.get(&isbn(1)).await.unwrap();
    assert_eq!(reread.stock, 3);
    assert_eq!(reread.author.as_str(), "Фёдор Достоевский");
    let by_author = catalogue
        .list(&BookQuery {
            author: Some("ФЁДОР ДОСТОЕВСКИЙ".to_owned()),
            ..BookQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_author.books.len(), 1);
    assert_eq!(
        catalogue
            .reservations_older_than(Utc::now() + Duration::days(1))
            .await
            .unwrap(),
        vec![reservation]
    );
    catalogue.cancel_reservation(reservation).await.unwrap();
    assert_eq!(catalogue.get(&isbn(1)).await.unwrap().stock, 5);

    assert_eq!(orders.get(order.id()).await.unwrap(), order);
    let page = orders
        .list_by_owner(&CustomerId::new("alice"), None, 10)
        .await
        .unwrap();
    assert_eq!(page.orders, vec![order.clone()]);
    assert_eq!(deliveries.get(delivery.id()).await.unwrap(), delivery);
    assert_eq!(
        payments
            .capture_for(reference)
            .await
            .unwrap()
            .map(|c| c.transaction_id),
        Some(transaction_id)
    );
}

async fn a_closed_database_makes_every_store_unavailable(backend: Backend) {
    let stores = backend.stores().await;
    let database = stores.database.clone().unwrap();
    database.close().await;
    assert!(matches!(
        database.check_ready().await,
        Err(StorageError::Unavailable(_))
    ));

    let closed = database.stores(&bookstore_storage::events::Outbox::id_only());
    let catalogue = closed.catalogue;
    assert!(matches!(
        catalogue.get(&isbn(1)).await,
        Err(InventoryError::Unavailable(_))
    ));
    assert!(matches!(
        catalogue
            .reserve_all(fresh_reservation(), &[line(1, 1)])
            .await,
        Err(InventoryError::Unavailable(_))
    ));
    assert!(matches!(
        catalogue.check_ready().await,
        Err(InventoryError::Unavailable(_))
    ));
    let orders = closed.orders;
    assert!(matches!(
        orders.insert(order_for("alice")).await,
        Err(SalesError::Unavailable(_))
    ));
    assert!(matches!(
        orders.check_ready().await,
        Err(SalesError::Unavailable(_))
    ));
    let deliveries = closed.deliveries;
    assert!(matches!(
        deliveries.get_by_order(OrderId::generate()).await,
        Err(DeliveryError::Unavailable(_))
    ));
    let payments = closed.payments;
    let token = PaymentToken::parse("tok_visa").unwrap();
    assert!(matches!(
        payments.capture(&token, usd(1), OrderId::generate()).await,
        Err(PaymentError::Unavailable(_))
    ));
    assert!(matches!(
        closed
            .idempotency
            .claim(
                &Owner::new("alice"),
                "k",
                Fingerprint::from_bytes([0; 32]),
                Utc::now()
            )
            .await,
        Err(IdempotencyUnavailable(_))
    ));
    assert!(matches!(
        stores
            .idempotency
            .claim(
                &Owner::new("alice"),
                "k",
                Fingerprint::from_bytes([0; 32]),
                Utc::now()
            )
            .await,
        Err(IdempotencyUnavailable(_))
    ));

    // A server that is not there fails to connect, within the timeout.
    let unreachable = match backend {
        Backend::Postgres => "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
        _ => format!(
            "sqlite://{}",
            std::env::temp_dir()
                .join("no-such-directory-for-bookstore")
                .join("db.sqlite")
                .display()
        ),
    };
    let options = ConnectOptions {
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(2),
    };
    let result = connect(&unreachable, &options).await;
    assert!(
        matches!(result, Err(StorageError::Connect(_))),
        "{result:?}"
    );
    assert!(matches!(
        connect("mysql://localhost/db", &options).await,
        Err(StorageError::UnsupportedUrl)
    ));
}

async fn migrating_again_changes_nothing(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Title", "Author", 100, 1)]).await;
    let database = stores.database.as_ref().unwrap();
    migrate(database).await.unwrap();
    migrate(database).await.unwrap();
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap().stock, 1);
}
