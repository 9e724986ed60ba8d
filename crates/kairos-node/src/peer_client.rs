//! Client side of the peer API: storing a piece on a peer and fetching one back.
//!
//! Invariants: stores are signed by this node's identity (the uploader) for the holder's key
//! (so they cannot be replayed to another node) over method, path, time, nonce and the piece's
//! header and hash ([`PieceBody::signed_bytes`]); a fetched body
//! is never read past the size the manifest allows, so a hostile peer cannot make a
//! downloader buffer more than one shard; in direct mode only
//! loopback peers are contacted. Requests are spread over a pool of HTTP clients — in Tor mode
//! each has its own SOCKS credentials, hence its own circuit (`docs/architecture.md`, "Transport").
//! Requests to this node's own advertised address (an uploader can be one of its file's
//! holders) go straight to its own loopback listener ([`PeerClient::with_self`]), the same
//! signed API without a trip through tor to its own onion service — such a connection hung in
//! tor for the whole 60 s connect timeout now and then, stalling a put by a minute.

use crate::piece::{hash_to_text, OutgoingPiece};
use bytes::{Bytes, BytesMut};
use kairos_net::{ErrorBody, Transport};
use kairos_proto::addr::AddrKind;
use kairos_proto::{Identity, PublicKey};
use kairos_seal::PieceHash;
use reqwest::StatusCode;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;

/// Most HTTP clients (circuits) in the pool.
const MAX_CLIENTS: usize = 32;
/// Clients (over Tor, circuits) the requests to one holder are spread over.
const CLIENTS_PER_HOLDER: usize = 4;

/// Why a peer request failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PeerError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("locked until {}", kairos_proto::time::rfc3339(*until))]
    Locked { until: u64 },
    #[error("does not have the piece")]
    NotFound,
    #[error("refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("sent an invalid answer: {0}")]
    Invalid(String),
}

/// A pool of HTTP clients for peer requests.
pub struct PeerClient {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
    timeout: Duration,
    direct: bool,
    /// This node's advertised address, its own listener, and a plain client for it.
    own: Option<(String, SocketAddr, reqwest::Client)>,
}

impl PeerClient {
    pub fn new(transport: &Transport, size: usize) -> Result<Self, kairos_net::TransportError> {
        let size = size.clamp(1, MAX_CLIENTS);
        let clients = (0..size)
            .map(|i| transport.client(&format!("peer-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PeerClient {
            clients,
            next: AtomicUsize::new(0),
            timeout: if transport.is_anonymous() {
                Duration::from_secs(180)
            } else {
                Duration::from_secs(60)
            },
            direct: !transport.is_anonymous(),
            own: None,
        })
    }

    /// Routes requests to `advertise` (this node's own address) to `listen`, its own peer
    /// listener, which must be on loopback; other addresses keep the transport.
    pub fn with_self(
        mut self,
        advertise: String,
        listen: SocketAddr,
    ) -> Result<Self, kairos_net::TransportError> {
        if listen.ip().is_loopback() {
            let client = Transport::Direct.client("self")?;
            self.own = Some((advertise, listen, client));
        }
        Ok(self)
    }

    /// A request to `addr`, with its timeout: to this node itself over loopback, to anyone
    /// else through the transport.
    fn request(&self, method: reqwest::Method, addr: &str, path: &str) -> reqwest::RequestBuilder {
        let req = match self.own_route(addr) {
            Some((listen, client)) => client.request(method, format!("http://{listen}{path}")),
            None => (self.client_for(addr)).request(method, Transport::url(addr, path)),
        };
        req.timeout(self.timeout)
    }

    /// Whether a request to `addr` goes to this node's own listener (see [`Self::with_self`]).
    pub fn is_self(&self, addr: &str) -> bool {
        self.own_route(addr).is_some()
    }

    /// This node's own listener and its client, if `addr` is this node's advertised address.
    fn own_route(&self, addr: &str) -> Option<(&SocketAddr, &reqwest::Client)> {
        match &self.own {
            Some((own, listen, client)) if own == addr => Some((listen, client)),
            _ => None,
        }
    }

    /// The client for a request to `addr`: one of [`CLIENTS_PER_HOLDER`] clients chosen by the
    /// address, in turn. Spreading every request over the whole pool would open a connection
    /// (over Tor, a rendezvous circuit) from every client to every holder, each idle one keeping
    /// hyper's read buffer of up to 400 KiB: 16 clients × 6 holders held ~40 MiB in a download.
    fn client_for(&self, addr: &str) -> &reqwest::Client {
        let n = self.clients.len();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        addr.hash(&mut h);
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % CLIENTS_PER_HOLDER.min(n);
        &self.clients[(h.finish() as usize).wrapping_add(turn) % n]
    }

    /// Whether `addr` may be contacted with this transport: over Tor only onion services (a
    /// clearnet name in a hostile manifest or record would leave the Tor network through an
    /// exit), directly only loopback.
    pub fn allowed(&self, addr: &str) -> bool {
        if self.direct {
            kairos_net::check_direct_addr(addr, false).is_ok()
        } else {
            matches!(kairos_proto::addr::kind(addr), AddrKind::Onion(_))
        }
    }

    fn check(&self, addr: &str) -> Result<(), PeerError> {
        if self.allowed(addr) {
            Ok(())
        } else {
            Err(PeerError::Unreachable(if self.direct {
                format!("{addr} is not a loopback address and the direct transport only talks to loopback")
            } else {
                format!(
                    "{addr} is not an onion address; over Tor kairos only talks to onion services"
                )
            }))
        }
    }

    /// `PUT /v1/pieces/{hash}` with a body signed for `holder` (the key of the node at
    /// `addr`). Ok(true) = newly stored, Ok(false) = the peer already had it.
    pub async fn store(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        hash: &PieceHash,
        body: OutgoingPiece,
        now: u64,
    ) -> Result<bool, PeerError> {
        self.check(addr)?;
        let path = format!("/v1/pieces/{}", hash_to_text(hash));
        let req = self
            .request(reqwest::Method::PUT, addr, &path)
            .header("content-type", "application/octet-stream");
        let signed = body.signed_bytes(hash);
        let req = kairos_net::signed::sign(req, identity, holder, "PUT", &path, &signed, now)
            .body(reqwest::Body::wrap(Parts::of(body)));
        let resp = req.send().await.map_err(unreachable)?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::OK => Ok(false),
            _ => Err(refusal(resp).await),
        }
    }

    /// `DELETE /v1/pieces/{hash}` signed by `identity` (the key that stored it) for `holder`.
    /// Ok(true) = deleted, Ok(false) = the holder did not have it.
    pub async fn delete(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        hash: &PieceHash,
        now: u64,
    ) -> Result<bool, PeerError> {
        self.check(addr)?;
        let path = format!("/v1/pieces/{}", hash_to_text(hash));
        let req = self.request(reqwest::Method::DELETE, addr, &path);
        let req = kairos_net::signed::sign(req, identity, holder, "DELETE", &path, b"", now);
        let resp = req.send().await.map_err(unreachable)?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            _ => match refusal(resp).await {
                PeerError::NotFound => Ok(false),
                e => Err(e),
            },
        }
    }

    /// `POST /v1/commit/{id}` signed by `identity` (the file's uploader key): asks `holder` to
    /// keep the pieces of file `id` that its newest published placement puts there. Returns
    /// how many of them were still pending.
    pub async fn commit(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        id: &kairos_proto::FileId,
        now: u64,
    ) -> Result<u64, PeerError> {
        let path = format!("/v1/commit/{id}");
        let to = (identity, holder, addr);
        let body = (self.signed(reqwest::Method::POST, to, &path, 4096, now)).await?;
        let answer: crate::wire::CommitResponse = serde_json::from_slice(&body)
            .map_err(|e| PeerError::Invalid(format!("not a commit answer: {e}")))?;
        Ok(answer.committed)
    }

    /// `GET /v1/pieces/{hash}`; the body may be at most `max_len` bytes.
    pub async fn fetch(
        &self,
        addr: &str,
        hash: &PieceHash,
        max_len: usize,
    ) -> Result<Bytes, PeerError> {
        self.check(addr)?;
        let path = format!("/v1/pieces/{}", hash_to_text(hash));
        let resp = self
            .request(reqwest::Method::GET, addr, &path)
            .send()
            .await
            .map_err(unreachable)?;
        if resp.status() != StatusCode::OK {
            return Err(refusal(resp).await);
        }
        read_capped(resp, max_len).await
    }

    /// `GET /v1/pieces/{hash}/audit?chunks=…` signed by `identity` (the key that stored it)
    /// for `holder`: the holder's proofs, unverified (the caller checks them against the
    /// manifest with [`kairos_seal::audit::verify`]).
    pub async fn audit(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        hash: &PieceHash,
        chunks: &[u64],
        now: u64,
    ) -> Result<Vec<kairos_seal::audit::ChunkProof>, PeerError> {
        let list: Vec<String> = chunks.iter().map(u64::to_string).collect();
        let path = format!(
            "/v1/pieces/{}/audit?chunks={}",
            hash_to_text(hash),
            list.join(",")
        );
        // A proof is a chunk and at most 48 chaining values.
        let cap = chunks.len() * (8 + 2 + 1024 + 1 + 48 * 32);
        let bytes = self
            .signed_get(identity, holder, addr, &path, cap, now)
            .await?;
        kairos_seal::audit::decode(&bytes)
            .ok_or_else(|| PeerError::Invalid("a malformed audit answer".into()))
    }

    /// `GET /v1/pieces/{hash}/shard` signed by `identity` for `holder`: the shard part of the
    /// piece (at most `max_len` bytes), for a repair.
    pub async fn fetch_shard(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        hash: &PieceHash,
        max_len: usize,
        now: u64,
    ) -> Result<Bytes, PeerError> {
        let path = format!("/v1/pieces/{}/shard", hash_to_text(hash));
        self.signed_get(identity, holder, addr, &path, max_len, now)
            .await
    }

    async fn signed_get(
        &self,
        identity: &Identity,
        holder: &PublicKey,
        addr: &str,
        path: &str,
        max_len: usize,
        now: u64,
    ) -> Result<Bytes, PeerError> {
        let to = (identity, holder, addr);
        self.signed(reqwest::Method::GET, to, path, max_len, now)
            .await
    }

    /// A bodiless `method path` to `holder` at `addr`, signed by `identity`; the 200 answer's
    /// body, at most `max_len` bytes.
    async fn signed(
        &self,
        method: reqwest::Method,
        (identity, holder, addr): (&Identity, &PublicKey, &str),
        path: &str,
        max_len: usize,
        now: u64,
    ) -> Result<Bytes, PeerError> {
        self.check(addr)?;
        let name = method.as_str().to_owned();
        let req = self.request(method, addr, path);
        let req = kairos_net::signed::sign(req, identity, holder, &name, path, b"", now);
        let resp = req.send().await.map_err(unreachable)?;
        if resp.status() != StatusCode::OK {
            return Err(refusal(resp).await);
        }
        read_capped(resp, max_len).await
    }
}

/// A transport error, with its causes (reqwest's own text names only the URL).
fn unreachable(e: reqwest::Error) -> PeerError {
    PeerError::Unreachable(kairos_net::with_causes(&e))
}

/// A request body sent as its parts in order, never joined (hyper writes them vectored), with
/// its exact length announced.
struct Parts(std::collections::VecDeque<Bytes>);

impl Parts {
    fn of(piece: OutgoingPiece) -> Self {
        Parts([piece.head, piece.shard].into())
    }
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.0.pop_front();
        Poll::Ready(next.map(|part| Ok(http_body::Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|p| p.len() as u64).sum())
    }
}

/// Reads a success answer's body, refusing more than `max_len` bytes.
async fn read_capped(mut resp: reqwest::Response, max_len: usize) -> Result<Bytes, PeerError> {
    let too_large = || {
        PeerError::Invalid(format!(
            "an answer larger than the {max_len} bytes expected"
        ))
    };
    if resp.content_length().is_some_and(|n| n > max_len as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(max_len.min(resp.content_length().unwrap_or(0) as usize));
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if buf.len() + chunk.len() > max_len {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads an error answer (bounded) into a [`PeerError`].
async fn refusal(resp: reqwest::Response) -> PeerError {
    let status = resp.status();
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        if body.len() + chunk.len() > 16 * 1024 {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
    match (status, parsed) {
        (StatusCode::NOT_FOUND, _) => PeerError::NotFound,
        (StatusCode::FORBIDDEN, Some(b)) if b.error == "locked" => PeerError::Locked {
            until: b.locked_until.unwrap_or(0),
        },
        (_, Some(b)) => PeerError::Refused {
            status: status.as_u16(),
            code: b.error,
            message: b.message,
        },
        (_, None) => PeerError::Refused {
            status: status.as_u16(),
            code: "http".into(),
            message: format!("HTTP {status} without a kairos error body"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::Identity;

    #[tokio::test]
    async fn requests_to_its_own_address_go_to_its_own_listener_not_through_tor() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await.unwrap();
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nself";
            conn.write_all(answer).await.unwrap();
        });
        // A SOCKS port nobody listens on: anything sent through "tor" fails.
        let socks = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socks_addr = socks.local_addr().unwrap();
        drop(socks);
        let own = format!("{}:80", Identity::generate().public().onion_address());
        let other = format!("{}:80", Identity::generate().public().onion_address());
        let peers = PeerClient::new(&Transport::Tor { socks: socks_addr }, 2)
            .unwrap()
            .with_self(own.clone(), listen)
            .unwrap();
        let resp = (peers
            .request(reqwest::Method::GET, &own, "/v1/info")
            .send()
            .await)
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "self");
        let through_tor = peers.request(reqwest::Method::GET, &other, "/v1/info");
        assert!(
            through_tor.send().await.is_err(),
            "another node goes through tor"
        );
    }

    #[test]
    fn tor_mode_talks_only_to_onion_services_direct_mode_only_to_loopback() {
        let socks = "127.0.0.1:9".parse().unwrap();
        let tor = PeerClient::new(&Transport::Tor { socks }, 1).unwrap();
        let onion = format!("{}:80", Identity::generate().public().onion_address());
        assert!(tor.allowed(&onion));
        for clearnet in [
            "example.com:80",
            "127.0.0.1:80",
            "93.184.216.34:80",
            "x.onion:80",
        ] {
            assert!(!tor.allowed(clearnet), "{clearnet} allowed over Tor");
            assert!(tor.check(clearnet).is_err());
        }
        let direct = PeerClient::new(&Transport::Direct, 1).unwrap();
        assert!(direct.allowed("127.0.0.1:80"));
        assert!(!direct.allowed("example.com:80"));
        assert!(!direct.allowed(&onion));
    }
}
