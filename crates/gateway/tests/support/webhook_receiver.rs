//! A webhook receiver on 127.0.0.1 for the tests: it answers as a test scripts it (then
//! 200), records every request it got, and checks signatures with the `standardwebhooks`
//! crate's own verifier. Shared by the webhook and durability test binaries.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// How long [`Receiver::wait_for`] waits.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// This status, at once.
    Status(u16),
    /// This status with `Retry-After: SECONDS`.
    RetryAfter(u16, u64),
    /// 200 after this long.
    Stall(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// When it arrived.
    pub(crate) at: Instant,
    /// Its headers, as an `http` header map (what the verifier takes).
    pub(crate) headers: reqwest::header::HeaderMap,
    /// Its body.
    pub(crate) body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    received: Vec<Received>,
}

/// A webhook receiver on 127.0.0.1: answers the scripted answers in order, then 200.
pub(crate) struct Receiver {
    /// Its URL.
    pub(crate) url: String,
    script: Arc<Mutex<Script>>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

async fn receive(
    request: HttpRequest,
    body: Bytes,
    script: web::Data<Arc<Mutex<Script>>>,
) -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let answer = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            at: Instant::now(),
            headers,
            body,
        });
        script.answers.pop_front().unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
        }
        Answer::RetryAfter(status, seconds) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .insert_header(("Retry-After", seconds.to_string()))
                .finish()
        }
        Answer::Stall(wait) => {
            tokio::time::sleep(wait).await;
            HttpResponse::Ok().finish()
        }
    }
}

impl Receiver {
    /// A receiver answering `answers` in order, then 200.
    pub(crate) fn start(answers: Vec<Answer>) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.into(),
            received: Vec::new(),
        }));
        let shared = Arc::clone(&script);
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
            script,
            handle,
            thread: Some(thread),
        }
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Waits until at least `count` requests arrived; answers them all.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, not {count}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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

/// Checks `received`'s signature with the `standardwebhooks` crate's verifier and `secret`.
pub(crate) fn verifies(secret: &str, received: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .expect("a whsec_ secret")
        .verify(&received.body, &received.headers)
        .is_ok()
}
