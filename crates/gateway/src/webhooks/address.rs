//! The address rules of webhook endpoints: `https://` only, and never an address inside
//! the operator's network (loopback, private, link-local, unique-local, CGNAT, multicast,
//! unspecified, the cloud metadata addresses), unless the operator allows private
//! addresses (`--webhook-allow-private-addresses`, for local development and tests).
//!
//! The rules are checked when an endpoint is created or changed (the scheme, and the host
//! when it is an IP address) and again at every delivery on the addresses the host
//! resolves to then ([`CheckedResolver`]): the connection goes to an address that was
//! checked, so a DNS answer that changes after creation (DNS rebinding) cannot reach
//! inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a URL.
    #[error("is not a URL")]
    NotAUrl,
    /// Not `https://` (or `http://` when private addresses are allowed).
    #[error("must be an https:// URL")]
    NotHttps,
    /// A user name or password in the URL.
    #[error("must not hold a user name or password")]
    Credentials,
    /// The host is (or resolves to) an address inside the operator's network.
    #[error("{0} is a {1} address, which webhooks may not reach")]
    Forbidden(IpAddr, &'static str),
    /// The host does not resolve.
    #[error("the host {0} does not resolve")]
    Unresolved(String),
}

/// The longest endpoint URL.
pub const MAX_URL_LENGTH: usize = 2_000;

/// Checks what can be checked of `text` without resolving it: the scheme, no
/// credentials, and the host when it is an IP address. Answers the parsed URL.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, AddressError> {
    if text.len() > MAX_URL_LENGTH {
        return Err(AddressError::NotAUrl);
    }
    let url = Url::parse(text).map_err(|_| AddressError::NotAUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(AddressError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AddressError::Credentials);
    }
    match url.host() {
        None => return Err(AddressError::NotAUrl),
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_private)?,
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_private)?,
        Some(Host::Domain(_)) => {}
    }
    Ok(url)
}

/// `Ok` if webhooks may connect to `ip`.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), AddressError> {
    if allow_private {
        return Ok(());
    }
    match forbidden_kind(ip) {
        Some(kind) => Err(AddressError::Forbidden(ip, kind)),
        None => Ok(()),
    }
}

/// What kind of inside address `ip` is, if it is one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return forbidden_v4(mapped);
            }
            forbidden_v6(ip)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The resolver of the webhook client: resolves with the system's resolver and refuses a
/// host any of whose addresses breaks the rules, so the client connects only to checked
/// addresses.
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    /// Whether private addresses are allowed (then nothing is refused).
    pub allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| AddressError::Unresolved(host.clone()))?
                .collect();
            if addresses.is_empty() {
                return Err(AddressError::Unresolved(host).into());
            }
            for address in &addresses {
                check_ip(address.ip(), allow_private)?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_refused_and_public_ones_accepted() {
        for (text, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(forbidden_kind(ip), Some(kind), "{text}");
            assert!(check_ip(ip, true).is_ok());
        }
        for text in ["93.184.215.14", "100.128.0.1", "2606:2800:21f:cb07::1"] {
            assert_eq!(forbidden_kind(text.parse().unwrap()), None, "{text}");
        }
    }

    #[test]
    fn only_https_urls_without_credentials_or_inside_addresses_are_accepted() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/x", false),
            Err(AddressError::NotHttps)
        );
        assert!(check_url("http://127.0.0.1:9000/x", true).is_ok());
        assert_eq!(
            check_url("ftp://hooks.example.com/x", true),
            Err(AddressError::NotHttps)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", false),
            Err(AddressError::Credentials)
        );
        assert!(matches!(
            check_url("https://[::1]/x", false),
            Err(AddressError::Forbidden(_, "loopback"))
        ));
        assert!(matches!(
            check_url("https://169.254.169.254/latest", false),
            Err(AddressError::Forbidden(_, "cloud metadata"))
        ));
        assert_eq!(check_url("not a url", false), Err(AddressError::NotAUrl));
    }
}
