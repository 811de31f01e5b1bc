//! Starting the real `bookstore` binary and talking to it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A `bookstore` process on a free local port, with its standard error captured.
pub(crate) struct Server {
    /// The process.
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// Lines the process wrote to standard error so far.
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind to a free port");
    listener.local_addr().expect("local address").port()
}

impl Server {
    /// Starts `bookstore` with `args` and `env`, and waits until `/health/live` answers.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
        command.args(["--port", &port.to_string()]);
        if !args.contains(&"--database-url") {
            command.args(["--database-url", "memory"]);
        }
        command
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("BOOKSTORE_API_KEYS")
            .env_remove("RUST_LOG")
            .env_remove("BOOKSTORE_LOG_FORMAT")
            .env_remove("BOOKSTORE_RATE_LIMIT_REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start bookstore");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let lines = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("log lines").push(line);
            }
        });
        let server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            stderr,
        };
        server.wait_until_live();
        server
    }

    fn wait_until_live(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/health/live", self.base_url);
        while Instant::now() < deadline {
            if let Ok(response) = blocking_client().get(&url).send()
                && response.status().is_success()
            {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "bookstore did not answer /health/live within 30 s; stderr: {:?}",
            self.stderr_text()
        );
    }

    /// Everything the process wrote to standard error so far.
    pub(crate) fn stderr_text(&self) -> String {
        self.stderr.lock().expect("log lines").join("\n")
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the process").is_none()
    }

    /// Polls standard error until a line contains `text`, for at most `limit`.
    pub(crate) fn wait_for_log(&self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stderr_text().contains(text) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "bookstore did not log {text:?} within {limit:?}; stderr:\n{}",
            self.stderr_text()
        );
    }

    /// Waits for the process to exit (at most `limit`), returning whether it exited 0.
    pub(crate) fn wait_for_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                return status.success();
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("bookstore did not exit within {limit:?}");
    }

    /// Stops the process and returns its captured standard error.
    pub(crate) fn stop(mut self) -> String {
        self.terminate();
        self.wait_for_exit(Duration::from_secs(30));
        // Give the reader thread a moment to drain the closed pipe.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut previous = usize::MAX;
        while Instant::now() < deadline {
            let now = self.stderr.lock().expect("log lines").len();
            if now == previous {
                break;
            }
            previous = now;
            thread::sleep(Duration::from_millis(50));
        }
        self.stderr_text()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client: the tests drive the server from plain threads.
pub(crate) fn blocking_client() -> BlockingClient {
    BlockingClient
}

/// A tiny blocking wrapper around reqwest's async client, run on a private runtime.
pub(crate) struct BlockingClient;

/// A request being built.
pub(crate) struct RequestBuilder {
    inner: reqwest::RequestBuilder,
}

/// A response read in full.
pub(crate) struct Response {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    /// The body.
    pub(crate) body: String,
}

impl Response {
    /// The status.
    pub(crate) fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

impl BlockingClient {
    /// GET `url`.
    pub(crate) fn get(&self, url: &str) -> RequestBuilder {
        RequestBuilder {
            inner: client().get(url),
        }
    }

    /// POST `url`.
    pub(crate) fn post(&self, url: &str) -> RequestBuilder {
        RequestBuilder {
            inner: client().post(url),
        }
    }
}

impl RequestBuilder {
    /// Adds a header.
    pub(crate) fn header(self, name: &str, value: &str) -> Self {
        Self {
            inner: self.inner.header(name, value),
        }
    }

    /// Sends `value` as a JSON body.
    pub(crate) fn json(self, value: &serde_json::Value) -> Self {
        Self {
            inner: self.inner.json(value),
        }
    }

    /// Sends the request and reads the whole response.
    pub(crate) fn send(self) -> Result<Response, reqwest::Error> {
        runtime().block_on(async move {
            let response = self.inner.timeout(Duration::from_secs(30)).send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.text().await?;
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

/// Runs `bookstore` with `args` and `env`, expecting it to stop by itself (a refused flag, an
/// unusable database, a file in use). It gets a free port unless `args` name one, and a
/// clean environment (no `DATABASE_URL`, `RUST_LOG` or log format of the caller's). Returns
/// its exit status and standard error, or `None` (after killing it) if it still runs after
/// `limit`.
pub(crate) fn run_until_exit(
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Option<(std::process::ExitStatus, String)> {
    use std::io::Read as _;

    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
    if !args.contains(&"--port") {
        command.args(["--port", &free_port().to_string()]);
    }
    let mut child = command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("BOOKSTORE_LOG_FORMAT")
        .envs(env.iter().copied())
        // A panic would print its backtrace: make sure there is none to print.
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bookstore");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the process") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Some((status, stderr))
}
