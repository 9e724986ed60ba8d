//! Peer addresses: `host:port` strings as they appear in node records and manifests.
//!
//! An address is at most 255 bytes of printable ASCII with a numeric port. Onion hosts are bound
//! to a key ([`AddrKind::Onion`]); anything else is only meaningful on a development network.

use crate::identity::{parse_onion_address, PublicKey};
use std::net::IpAddr;

/// Virtual port of every kairos onion service: a holder named by its key alone (a version 2
/// placement) is reached at `<onion of the key>:ONION_PORT` over Tor.
pub const ONION_PORT: u16 = 80;

/// The Tor address of the node with identity `key`.
pub fn onion_peer_addr(key: &PublicKey) -> String {
    format!("{}:{ONION_PORT}", key.onion_address())
}

/// What kind of host an address names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrKind {
    /// A v3 onion service, with the key its name encodes.
    Onion(PublicKey),
    /// A loopback IP address (development only).
    Loopback,
    /// Any other host: never accepted by kairos, listed so callers can say so.
    Other,
}

/// Checks the syntax of `host:port` and returns the port.
pub fn validate(addr: &str) -> Result<u16, &'static str> {
    if addr.is_empty() || addr.len() > 255 {
        return Err("must be 1..=255 bytes");
    }
    if !addr.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces");
    }
    let (host, port) = addr.rsplit_once(':').ok_or("must be host:port")?;
    if host.is_empty() {
        return Err("empty host");
    }
    let port: u16 = port.parse().map_err(|_| "port is not a number 0..=65535")?;
    if port == 0 {
        return Err("port 0");
    }
    Ok(port)
}

/// Classifies the host part of a syntactically valid address.
pub fn kind(addr: &str) -> AddrKind {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    if host.to_ascii_lowercase().ends_with(".onion") {
        return match parse_onion_address(host) {
            Ok(k) => AddrKind::Onion(k),
            Err(_) => AddrKind::Other,
        };
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => AddrKind::Loopback,
        _ => AddrKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn classifies() {
        let id = Identity::generate();
        let onion = format!("{}:80", id.public().onion_address());
        assert_eq!(validate(&onion), Ok(80));
        assert_eq!(kind(&onion), AddrKind::Onion(id.public()));
        assert_eq!(kind("127.0.0.1:4000"), AddrKind::Loopback);
        assert_eq!(kind("[::1]:4000"), AddrKind::Loopback);
        assert_eq!(kind("10.0.0.1:4000"), AddrKind::Other);
        assert_eq!(kind("example.com:80"), AddrKind::Other);
        assert!(validate("127.0.0.1").is_err());
        assert!(validate("127.0.0.1:0").is_err());
        assert!(validate("a b:1").is_err());
        assert!(validate(":1").is_err());
    }
}
