//! A webhook receiver for trying the events out locally: it listens on 127.0.0.1, checks
//! each delivery's signature with the `standardwebhooks` crate and prints the event.
//!
//! ```text
//! WEBHOOK_SECRET=whsec_... cargo run -p bookstore-gateway --example webhook_receiver -- 9000
//! ```
//!
//! It answers 204 to a delivery whose signature verifies and 401 to any other, so a wrong
//! secret shows up as failed attempts in `GET /api/webhook-endpoints/{id}/deliveries`.

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use standardwebhooks::Webhook;

async fn receive(request: HttpRequest, body: Bytes, webhook: web::Data<Webhook>) -> HttpResponse {
    // The verifier reads the `webhook-*` headers from an `http` header map (reqwest re-exports it).
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    match webhook.verify(&body, &headers) {
        Ok(()) => {
            println!("{id} {}", String::from_utf8_lossy(&body));
            HttpResponse::NoContent().finish()
        }
        Err(error) => {
            eprintln!("{id}: signature not verified ({error})");
            HttpResponse::Unauthorized().finish()
        }
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(9000);
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_else(|_| {
        eprintln!("set WEBHOOK_SECRET to the endpoint's secret (whsec_...)");
        std::process::exit(2);
    });
    let webhook = web::Data::new(Webhook::new(&secret).unwrap_or_else(|error| {
        eprintln!("WEBHOOK_SECRET is not a whsec_ secret: {error}");
        std::process::exit(2);
    }));
    eprintln!("receiving webhooks at http://127.0.0.1:{port}/");
    HttpServer::new(move || {
        App::new()
            .app_data(webhook.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
