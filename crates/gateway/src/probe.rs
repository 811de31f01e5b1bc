//! `bookstore probe`: asks the server on this machine whether it is ready, for container
//! health checks (`HEALTHCHECK`, compose `healthcheck`) in images that have no HTTP client.
//!
//! It sends `GET /health/ready` over plain HTTP/1.0 to `--host` and `--port` (the loopback
//! address when the server listens on every interface) and succeeds only on a 200.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the probe waits to connect, and then for the answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The address to probe for a server listening on `host`: the loopback address of the same
/// family when `host` means every interface.
pub fn probe_address(host: IpAddr, port: u16) -> SocketAddr {
    let host = match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(host, port)
}

/// `Ok` when `GET /health/ready` at `address` answers 200; otherwise what went wrong.
pub fn check_ready(address: SocketAddr) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("{address}: {error}");
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT).map_err(failed)?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(failed)?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(failed)?;
    stream
        .write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(failed)?;
    // The status line is all we need; the body is a few bytes.
    let mut head = Vec::with_capacity(256);
    stream.take(4096).read_to_end(&mut head).map_err(failed)?;
    let status_line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(status) => Err(format!("{address}/health/ready answered {status}")),
        None => Err(format!("{address}/health/ready: no HTTP answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_every_interface_is_probed_on_the_loopback_address() {
        assert_eq!(
            probe_address("0.0.0.0".parse().unwrap(), 5001).to_string(),
            "127.0.0.1:5001"
        );
        assert_eq!(
            probe_address("::".parse().unwrap(), 5001).to_string(),
            "[::1]:5001"
        );
        assert_eq!(
            probe_address("10.0.0.7".parse().unwrap(), 80).to_string(),
            "10.0.0.7:80"
        );
    }

    #[test]
    fn nothing_listening_is_a_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        assert!(check_ready(probe_address("127.0.0.1".parse().unwrap(), port)).is_err());
    }
}
