//! A webhook receiver for the benchmark: answers `204 No Content` to every request and
//! counts them, with nothing but the standard library (xtask depends on `serde_json` only).
//!
//! It reads HTTP/1.1 requests with a `Content-Length` body (what the server's webhook client
//! sends), keeps connections alive, and never checks signatures: the tests do that; the
//! benchmark only measures what delivering costs the server, and the delivery lag: from
//! the event's `timestamp` (when it was recorded) to its arrival here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A running receiver; stops accepting when dropped.
pub(super) struct Sink {
    port: u16,
    received: Arc<Received>,
    stopped: Arc<AtomicBool>,
}

/// What the sink has received: a count, and the lag of each delivery in milliseconds.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    lags_ms: Mutex<Vec<u64>>,
}

impl Sink {
    /// Listens on a free port of 127.0.0.1.
    pub(super) fn start() -> Result<Sink, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding the sink: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the sink's address: {e}"))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("the sink's listener: {e}"))?;
        let received = Arc::new(Received::default());
        let stopped = Arc::new(AtomicBool::new(false));
        {
            let (received, stopped) = (Arc::clone(&received), Arc::clone(&stopped));
            thread::spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let received = Arc::clone(&received);
                            thread::spawn(move || serve(stream, &received));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Ok(Sink {
            port,
            received,
            stopped,
        })
    }

    /// The URL to register as a webhook endpoint.
    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Requests answered so far.
    pub(super) fn received(&self) -> u64 {
        self.received.count.load(Ordering::Relaxed)
    }

    /// The 50th and 99th percentile of the delivery lag so far, in milliseconds.
    pub(super) fn lag_percentiles_ms(&self) -> Option<(u64, u64)> {
        let mut lags = self
            .received
            .lags_ms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        let at = |share: f64| lags[((lags.len() - 1) as f64 * share).round() as usize];
        Some((at(0.5), at(0.99)))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// Answers every request on `stream` until the client closes it (or 60 s pass idle).
fn serve(stream: TcpStream, received: &Received) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        // The request line, then headers up to the empty line.
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        received.count.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = event_timestamp_ms(&body) {
            let lag = now_ms().saturating_sub(sent);
            received
                .lags_ms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(lag);
        }
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The body's `"timestamp":"YYYY-MM-DDTHH:MM:SS.mmmZ"` as milliseconds since the epoch.
fn event_timestamp_ms(body: &[u8]) -> Option<u64> {
    let body = std::str::from_utf8(body).ok()?;
    let start = body.find("\"timestamp\":\"")? + "\"timestamp\":\"".len();
    let text = body.get(start..start + 24)?;
    parse_rfc3339_millis(text)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds) as milliseconds since the epoch.
fn parse_rfc3339_millis(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 24 || bytes[23] != b'Z' || bytes[10] != b'T' || bytes[19] != b'.' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, millis) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let (year, month) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_milliseconds_since_the_epoch() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2026-12-03T10:00:00.123Z"),
            Some(1_796_292_000_123)
        );
        assert_eq!(
            parse_rfc3339_millis("2000-02-29T23:59:59.999Z"),
            Some(951_868_799_999)
        );
        assert_eq!(parse_rfc3339_millis("2026-12-03 10:00:00.123Z"), None);
        let body = br#"{"type":"order.placed","timestamp":"1970-01-01T00:00:01.500Z","data":{}}"#;
        assert_eq!(event_timestamp_ms(body), Some(1_500));
    }
}
