//! A webhook receiver on 127.0.0.1 that answers 200 at once and keeps what it got, and the
//! admin call that subscribes it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpServer};
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, Api};

/// One delivery the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// `webhook-id`: the event's id.
    pub(crate) event_id: String,
    /// The body: `{type, timestamp, data}`.
    pub(crate) body: Value,
}

/// A receiver running on a thread of its own; stopped when dropped.
pub(crate) struct Receiver {
    /// Its URL.
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

async fn receive(
    request: HttpRequest,
    body: Bytes,
    got: web::Data<Arc<Mutex<Vec<Delivery>>>>,
) -> HttpResponse {
    let event_id = request
        .headers()
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock().unwrap().push(Delivery { event_id, body });
    HttpResponse::Ok().finish()
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&got);
        let (started, on_start) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .default_service(web::to(receive))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind(("127.0.0.1", 0))
                .expect("bind a free port");
                let address: SocketAddr = server.addrs()[0];
                let server = server.run();
                started.send((address, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (address, handle) = on_start.recv().unwrap();
        Receiver {
            url: format!("http://{address}/hooks"),
            got,
            handle,
            thread: Some(thread),
        }
    }

    /// Every delivery so far.
    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Subscribes this receiver to `types` on the server `api` talks to.
    pub(crate) async fn subscribe(&self, api: &Api, types: &[&str]) {
        let reply = api
            .send(
                reqwest::Method::POST,
                "/api/webhook-endpoints",
                Some(ADMIN_KEY),
                Some(&json!({ "url": self.url, "event_types": types })),
                None,
            )
            .await
            .expect("POST /api/webhook-endpoints");
        assert_eq!(reply.status, 201, "subscribing: {}", reply.body);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let stopper = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        });
        let _ = stopper.join();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The flags that let a server deliver to the receiver (on 127.0.0.1, over http) promptly.
pub(crate) const WEBHOOK_FLAGS: &[&str] = &[
    "--webhook-allow-private-addresses",
    "--webhook-tick-ms",
    "50",
];
