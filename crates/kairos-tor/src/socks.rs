//! A minimal SOCKS5 client (RFC 1928, username/password RFC 1929) for tor's SOCKS port.
//!
//! Invariants:
//! * The target is always sent as a hostname (ATYP 3), so tor resolves it — nothing is ever
//!   resolved locally (the `socks5h` behaviour).
//! * The proxy must be a loopback address.
//! * With an isolation string, it is sent as the SOCKS username (password `x`): tor puts
//!   streams with different credentials on different circuits.
//! * Tor's extended error codes (`ExtendedErrors` on the SocksPort, 0xF0–0xF7) are decoded so
//!   an unreachable onion service says why.
//!
//! Note for HTTP clients (measured with reqwest 0.12.28): reqwest built *without* a TLS
//! feature cannot use any SOCKS proxy — its plain-HTTP connector enforces the `http` scheme on
//! the proxy URI and every request fails with "invalid URL, scheme is not http". Either enable
//! a reqwest TLS feature (its TLS connectors lift that check) or run hyper over a stream from
//! [`connect`].

use std::net::SocketAddr;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Error)]
pub enum SocksError {
    #[error("refusing SOCKS proxy {0}: only a loopback tor SOCKS port is allowed")]
    NotLoopback(SocketAddr),
    #[error("cannot reach tor's SOCKS port {addr}: {source} (is tor running?)")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("i/o error talking to tor's SOCKS port: {0}")]
    Io(#[from] std::io::Error),
    #[error("SOCKS protocol error: {0}")]
    Protocol(&'static str),
    #[error("invalid SOCKS request: {0}")]
    BadRequest(&'static str),
    #[error("tor did not open the stream within {0:?}")]
    Timeout(std::time::Duration),
    #[error("tor could not open the stream to {target}: {message} (SOCKS reply {code:#04x})")]
    Refused {
        target: String,
        code: u8,
        message: &'static str,
    },
}

impl SocksError {
    /// True for failures where retrying later may succeed (e.g. an onion descriptor that is not
    /// on the HSDirs yet, or a circuit that timed out).
    pub fn is_retryable(&self) -> bool {
        match self {
            SocksError::Refused { code, .. } => !matches!(code, 0x02 | 0x07 | 0x08 | 0xF4..=0xF6),
            SocksError::Io(_) | SocksError::Timeout(_) => true,
            _ => false,
        }
    }
}

fn reply_message(code: u8) -> &'static str {
    match code {
        0x01 => "general failure",
        0x02 => "not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable (for an onion service: its descriptor could not be fetched yet)",
        0x05 => "connection refused",
        0x06 => "TTL expired (circuit timed out)",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        0xF0 => "onion service descriptor not found (not published yet, or offline)",
        0xF1 => "onion service descriptor is invalid",
        0xF2 => "onion service introduction failed",
        0xF3 => "onion service rendezvous failed",
        0xF4 => "onion service requires client authorization",
        0xF5 => "onion service client authorization is wrong",
        0xF6 => "invalid onion address",
        0xF7 => "onion service introduction timed out",
        _ => "unknown error",
    }
}

/// Opens a stream to `host:port` through tor's SOCKS port at `proxy`.
pub async fn connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    isolation: Option<&str>,
) -> Result<TcpStream, SocksError> {
    check_request(proxy, host, isolation)?;
    let mut s = TcpStream::connect(proxy)
        .await
        .map_err(|source| SocksError::Connect {
            addr: proxy,
            source,
        })?;
    s.set_nodelay(true)?;
    negotiate(&mut s, isolation).await?;
    request_stream(&mut s, host, port).await?;
    Ok(s)
}

/// Refuses what SOCKS5 cannot carry (or we never send): a non-loopback proxy, an empty or
/// over-long hostname or isolation string.
fn check_request(proxy: SocketAddr, host: &str, isolation: Option<&str>) -> Result<(), SocksError> {
    if !proxy.ip().is_loopback() {
        return Err(SocksError::NotLoopback(proxy));
    }
    if host.is_empty() || host.len() > 255 {
        return Err(SocksError::BadRequest("hostname must be 1..=255 bytes"));
    }
    if let Some(user) = isolation {
        if user.is_empty() || user.len() > 255 {
            return Err(SocksError::BadRequest(
                "isolation string must be 1..=255 bytes",
            ));
        }
    }
    Ok(())
}

/// Method negotiation: no authentication, or username/password carrying the isolation string.
async fn negotiate(s: &mut TcpStream, isolation: Option<&str>) -> Result<(), SocksError> {
    let method = if isolation.is_some() { 0x02 } else { 0x00 };
    s.write_all(&[0x05, 0x01, method]).await?;
    let mut hello = [0u8; 2];
    s.read_exact(&mut hello).await?;
    if hello[0] != 0x05 {
        return Err(SocksError::Protocol("proxy is not SOCKS5"));
    }
    if hello[1] != method {
        return Err(SocksError::Protocol(
            "proxy refused our authentication method",
        ));
    }
    if let Some(user) = isolation {
        let mut auth = vec![0x01, user.len() as u8];
        auth.extend_from_slice(user.as_bytes());
        auth.extend_from_slice(&[0x01, b'x']);
        s.write_all(&auth).await?;
        let mut r = [0u8; 2];
        s.read_exact(&mut r).await?;
        if r != [0x01, 0x00] {
            return Err(SocksError::Protocol("proxy rejected the SOCKS credentials"));
        }
    }
    Ok(())
}

/// CONNECT to `host:port` by name (ATYP 3); reads the whole reply so the stream starts clean.
async fn request_stream(s: &mut TcpStream, host: &str, port: u16) -> Result<(), SocksError> {
    let mut req = vec![0x05, 0x01, 0x00, 0x03, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != 0x05 {
        return Err(SocksError::Protocol("bad reply version"));
    }
    if head[1] != 0x00 {
        return Err(SocksError::Refused {
            target: format!("{host}:{port}"),
            code: head[1],
            message: reply_message(head[1]),
        });
    }
    let addr_len = match head[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await?;
            usize::from(l[0])
        }
        _ => return Err(SocksError::Protocol("bad address type in reply")),
    };
    let mut rest = vec![0u8; addr_len + 2];
    s.read_exact(&mut rest).await?;
    Ok(())
}
