//! The baseline server of `cargo xtask bench`: what the same framework answers when it does
//! nothing but check a key and write a fixed book.
//!
//! It serves `GET /api/books/{isbn}` on `127.0.0.1:PORT` (`--port PORT`, default 5002),
//! answers 401 unless `X-API-Key` equals `BASELINE_API_KEY` (default `bench-customer`), and
//! otherwise answers 200 with a fixed book carrying the requested ISBN. No store, no
//! middleware, no logging: `bookstore` divided by this is the cost of everything else.

use std::env;
use std::io;

use actix_web::http::header::ContentType;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// The key `X-API-Key` must carry, unless `BASELINE_API_KEY` says otherwise.
const DEFAULT_API_KEY: &str = "bench-customer";

/// The port to listen on, unless `--port` says otherwise.
const DEFAULT_PORT: u16 = 5002;

/// The state every worker shares: the expected key.
struct ExpectedKey(String);

async fn get_book(
    request: HttpRequest,
    isbn: web::Path<String>,
    expected: web::Data<ExpectedKey>,
) -> HttpResponse {
    let key_matches = request
        .headers()
        .get("x-api-key")
        .is_some_and(|key| key.as_bytes() == expected.0.as_bytes());
    if !key_matches {
        return HttpResponse::Unauthorized().finish();
    }
    let isbn: String = isbn.chars().filter(char::is_ascii_digit).take(13).collect();
    HttpResponse::Ok().content_type(ContentType::json()).body(format!(
        r#"{{"isbn":"{isbn}","title":"The Rust Programming Language","author":"Steve Klabnik, Carol Nichols","price_cents":3999,"currency":"USD","stock":100}}"#
    ))
}

/// The value of `--port`, or the default.
fn port_from_args() -> io::Result<u16> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(DEFAULT_PORT),
        [flag, port] if flag == "--port" => port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "--port takes a number")),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: bookstore-bench-baseline [--port PORT]",
        )),
    }
}

#[actix_web::main]
async fn main() -> io::Result<()> {
    let port = port_from_args()?;
    let key = env::var("BASELINE_API_KEY").unwrap_or_else(|_| DEFAULT_API_KEY.to_owned());
    let expected = web::Data::new(ExpectedKey(key));
    HttpServer::new(move || {
        App::new()
            .app_data(expected.clone())
            .route("/api/books/{isbn}", web::get().to(get_book))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
