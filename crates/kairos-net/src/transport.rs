//! Outgoing connections.
//!
//! Invariant: a client built for [`Transport::Tor`] can only open connections to tor's SOCKS
//! port; requests name their target host, which tor resolves (`socks5h`). Nothing here falls
//! back to a direct connection.

use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;

/// How this process reaches others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP to loopback addresses. Not anonymous: development and tests only.
    Direct,
    /// Everything through tor's SOCKS port.
    Tor { socks: SocketAddr },
}

/// Why a client or address was refused.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("could not build an HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0} is not a loopback address; the direct transport is not anonymous and only talks to 127.0.0.0/8 or ::1 (use --transport tor, or --allow-non-loopback if you really mean it)")]
    NotLoopback(String),
}

const WARNING: &str = "DIRECT TRANSPORT: traffic is plain HTTP, NOT anonymous, NOT over Tor. Use it for local development and tests only.";

impl Transport {
    /// Whether traffic of this transport hides the real IP address.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Transport::Tor { .. })
    }

    /// Says loudly that direct mode is not anonymous: once per process, however many servers
    /// it starts, and as one line on stderr — a log event when warnings are logged (the
    /// binary's log goes to stderr), a plain `WARNING:` line otherwise, never both.
    pub fn warn_if_direct(&self) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        if !self.is_anonymous() {
            WARNED.call_once(|| {
                if tracing::enabled!(tracing::Level::WARN) {
                    tracing::warn!("{WARNING}");
                } else {
                    eprintln!("WARNING: {WARNING}");
                }
            });
        }
    }

    /// An HTTP client. `isolation` names a circuit: in Tor mode, clients with different
    /// isolation strings use different SOCKS credentials and so different circuits.
    pub fn client(&self, isolation: &str) -> Result<reqwest::Client, TransportError> {
        let builder = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .pool_idle_timeout(Duration::from_secs(60))
            // A redirect would carry the signed `x-kairos-*` headers to a place the signer
            // never chose (and, over Tor, possibly off the onion network).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("kairos");
        let builder = match self {
            Transport::Direct => builder
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true),
            Transport::Tor { socks } => {
                // socks5h: the target hostname goes to tor unresolved.
                let url = format!("socks5h://{isolation}:kairos@{socks}");
                builder
                    .proxy(reqwest::Proxy::all(url)?)
                    // A new onion circuit can take several seconds; descriptors may still be
                    // propagating right after a service starts.
                    .connect_timeout(Duration::from_secs(60))
            }
        };
        Ok(builder.build()?)
    }

    /// `http://{addr}` — onion services are end-to-end encrypted by tor, loopback needs no TLS.
    pub fn url(addr: &str, path: &str) -> String {
        format!("http://{addr}{path}")
    }
}

/// Refuses non-loopback `host:port` targets for the direct transport unless `force`.
pub fn check_direct_addr(addr: &str, force: bool) -> Result<(), TransportError> {
    if force || kairos_proto::addr::kind(addr) == kairos_proto::addr::AddrKind::Loopback {
        Ok(())
    } else {
        Err(TransportError::NotLoopback(addr.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_refuses_non_loopback() {
        assert!(check_direct_addr("127.0.0.1:80", false).is_ok());
        assert!(check_direct_addr("[::1]:80", false).is_ok());
        assert!(check_direct_addr("192.168.1.1:80", false).is_err());
        assert!(check_direct_addr("example.com:80", false).is_err());
        assert!(check_direct_addr("example.com:80", true).is_ok());
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let location = format!("http://{addr}/elsewhere");
        let serve = tokio::spawn(async move {
            let mut paths = Vec::new();
            // Answer every connection with a 302 until the client is done.
            while let Ok(Ok((mut sock, _))) =
                tokio::time::timeout(Duration::from_secs(2), server.accept()).await
            {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                paths.push(head.split(' ').nth(1).unwrap_or("").to_owned());
                let resp = format!(
                    "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
            paths
        });
        let client = Transport::Direct.client("test").unwrap();
        let resp = client
            .get(Transport::url(&addr, "/start"))
            .header("x-kairos-key", "k")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
        assert_eq!(serve.await.unwrap(), vec!["/start".to_owned()]);
    }

    #[tokio::test]
    async fn tor_client_never_connects_directly() {
        // A SOCKS "proxy" that is a plain listener: the client must connect there and nowhere
        // else, even for a loopback target with a live server.
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Transport::Tor {
            socks: proxy.local_addr().unwrap(),
        };
        let client = t.client("test").unwrap();
        let url = Transport::url(&target.local_addr().unwrap().to_string(), "/");
        let req =
            tokio::spawn(
                async move { client.get(url).timeout(Duration::from_secs(2)).send().await },
            );
        let (mut sock, _) = tokio::time::timeout(Duration::from_secs(5), proxy.accept())
            .await
            .expect("the client never contacted the SOCKS port")
            .unwrap();
        use tokio::io::AsyncReadExt;
        let mut greeting = [0u8; 2];
        sock.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting[0], 5, "SOCKS5 greeting expected");
        drop(sock);
        let res = tokio::time::timeout(Duration::from_secs(5), req)
            .await
            .expect("request hung");
        assert!(res.unwrap().is_err());
        let accepted = tokio::time::timeout(Duration::from_millis(200), target.accept()).await;
        assert!(accepted.is_err(), "the target was contacted directly");
    }
}
