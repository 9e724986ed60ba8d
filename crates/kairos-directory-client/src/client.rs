//! The client of the directory API, used by nodes and the CLI.
//!
//! A client knows several directories and uses whichever answers: each call starts at a random
//! one and moves on when a directory is unreachable, overloaded, failing, or (for manifests)
//! does not have the item yet or says it is locked (a lying directory must not be able to
//! hold a released file back: the earliest release any directory claims is reported). A
//! request the directory refuses as invalid ends the call at once.
//!
//! Invariant: nothing a directory returns is trusted. Listed node records are decoded and
//! their signatures and address bindings verified here; fetched manifests must verify under
//! the requested file id. A directory that sends anything else is skipped as faulty.
//! Signed requests name the directory's key as recipient, so they cannot be replayed to another
//! directory; an onion address names that key itself, any other address is asked once
//! (`GET /v1/info`) and cached.

use crate::wire::{
    Info, ListedNode, NodeList, PlacementResponse, PublishResponse, SubscribeResponse,
};
use data_encoding::BASE64;
use kairos_net::{ErrorBody, Transport};
use kairos_proto::clock::Clock;
use kairos_proto::{
    AnyManifest, FileId, Identity, ManifestError, PublicKey, SignedContentManifest, SignedManifest,
    SignedNodeRecord, SignedPlacement,
};
use rand::Rng;
use reqwest::StatusCode;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Why a directory call failed. Messages say what to do.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("the manifest is time-locked until {} (Unix {until}); try again after that time", kairos_proto::time::rfc3339(*until))]
    Locked { until: u64 },
    #[error("no directory has this manifest: check the file id; it may also have expired (directories delete manifests a retention period after release) or not have reached these directories yet")]
    NotFound,
    #[error("the file was revoked by its uploader before its release: it will never open")]
    Revoked,
    #[error("no directory has a placement record of this file yet: its upload may not have finished, or it has not reached these directories; try again later")]
    NoPlacement,
    #[error("no directory holds a live record of node {0}: it is offline or has not subscribed to these directories")]
    UnknownNode(PublicKey),
    #[error("the directory refused the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// `reason` says what failed (per directory when several were tried); the hint names
    /// what to check for the client's transport.
    #[error("no directory could be reached; check the directory addresses and that {}: {reason}", running_hint(*over_tor))]
    Unreachable { reason: String, over_tor: bool },
    #[error("a directory sent invalid data (faulty or malicious directory): {0}")]
    Invalid(String),
    #[error("directory client setup: {0}")]
    Config(String),
    /// No directory has the beacon of the round yet (drand publishes it at the round's time;
    /// relays fetch it on demand).
    #[error("no directory has the beacon of drand round {round} yet")]
    BeaconPending { round: u64 },
}

/// What must be running for a directory to be reached: tor's SOCKS port carries every request
/// over Tor; direct, the directories themselves answer on loopback.
fn running_hint(over_tor: bool) -> &'static str {
    if over_tor {
        "Tor is running"
    } else {
        "the directories are running"
    }
}

/// What one attempt at one directory produced.
pub(crate) enum Attempt<T> {
    Done(T),
    /// Stop trying: the answer would be the same elsewhere.
    Final(ClientError),
    /// Try the next directory.
    Next(ClientError),
}

/// Client of a set of directories (see the module docs).
#[derive(Clone, Debug)]
pub struct DirectoryClient {
    http: reqwest::Client,
    addrs: Vec<String>,
    timeout: Duration,
    allow_loopback: bool,
    /// Whether requests go through tor (for the hint of an unreachable directory).
    over_tor: bool,
    clock: Clock,
    /// Directory keys by address, learnt from `GET /v1/info`.
    keys: Arc<Mutex<HashMap<String, PublicKey>>>,
}

impl DirectoryClient {
    /// A client of the directories at `addrs` (`host:port`), reached over `transport`.
    pub fn new(transport: Transport, addrs: Vec<String>) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::Config(
                "no directory addresses configured; pass at least one with --directory".into(),
            ));
        }
        for a in &addrs {
            kairos_proto::addr::validate(a)
                .map_err(|e| ClientError::Config(format!("directory address {a:?}: {e}")))?;
        }
        let http = transport
            .client("directory-client")
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(DirectoryClient {
            http,
            addrs,
            timeout: if transport.is_anonymous() {
                Duration::from_secs(90)
            } else {
                Duration::from_secs(10)
            },
            allow_loopback: !transport.is_anonymous(),
            over_tor: transport.is_anonymous(),
            clock: Clock::system(),
            keys: Arc::default(),
        })
    }

    /// Per-request timeout (default 10 s direct, 90 s over Tor).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock that stamps signed requests (default the system clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    pub(crate) fn url(addr: &str, path: &str) -> String {
        Transport::url(addr, path)
    }

    /// Runs `attempt` against each directory, from a random one on, until one settles it.
    pub(crate) async fn each<T, F, Fut>(&self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let start = rand::thread_rng().gen_range(0..self.addrs.len());
        let mut not_found = false;
        let mut revoked = false;
        let mut locked: Option<u64> = None;
        let mut errors = Vec::new();
        for i in 0..self.addrs.len() {
            let addr = &self.addrs[(start + i) % self.addrs.len()];
            match attempt(addr.clone()).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Final(e) => return Err(e),
                Attempt::Next(ClientError::NotFound) => not_found = true,
                Attempt::Next(ClientError::Revoked) => revoked = true,
                Attempt::Next(ClientError::Locked { until }) => {
                    locked = Some(locked.map_or(until, |l| l.min(until)));
                }
                Attempt::Next(e) => {
                    tracing::debug!("directory {addr}: {e}");
                    errors.push((addr, e));
                }
            }
        }
        // A directory's "revoked" cannot be checked without the manifest it withholds: it
        // counts only when no directory served the file.
        if revoked {
            return Err(ClientError::Revoked);
        }
        // The earliest time any directory claims: a directory that lies about the release
        // time can delay a download only until the others have been asked.
        if let Some(until) = locked {
            return Err(ClientError::Locked { until });
        }
        if not_found {
            return Err(ClientError::NotFound);
        }
        if errors.len() == 1 {
            if let Some((_, e)) = errors.pop() {
                return Err(e);
            }
        }
        // The hint is said once, for all of them.
        let all: Vec<String> = (errors.iter())
            .map(|(a, e)| match e {
                ClientError::Unreachable { reason, .. } => format!("{a}: {reason}"),
                e => format!("{a}: {e}"),
            })
            .collect();
        Err(self.unreachable(all.join("; ")))
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable {
            reason,
            over_tor: self.over_tor,
        }
    }

    /// Opens a connection to each directory of this client in turn (`GET /v1/info`), which later
    /// requests reuse. Over Tor the first request to a directory pays for its circuits (the
    /// descriptor fetch, introduction and rendezvous: about 0.4 s on a private network); a
    /// node about to join warms up while its own descriptor uploads. Errors are left to the
    /// real requests to report.
    pub async fn warm_up(&self) {
        for addr in &self.addrs {
            let req = (self.http.get(Self::url(addr, "/v1/info"))).timeout(self.timeout);
            if let Err(Attempt::Next(e) | Attempt::Final(e)) = self.send::<()>(req).await {
                tracing::debug!("warming up the connection to directory {addr}: {e}");
            }
        }
    }

    /// Registers or refreshes a node with a freshly signed record.
    pub async fn subscribe(&self, record: &SignedNodeRecord) -> Result<(), ClientError> {
        self.each(|addr| async move {
            let req = self
                .http
                .post(Self::url(&addr, "/v1/nodes"))
                .timeout(self.timeout)
                .header("content-type", "application/octet-stream")
                .body(record.as_bytes().to_vec());
            match self.send(req).await {
                Err(e) => e,
                Ok((StatusCode::OK, body)) => {
                    match serde_json::from_slice::<SubscribeResponse>(&body) {
                        Ok(_) => Attempt::Done(()),
                        Err(e) => Attempt::Next(ClientError::Invalid(format!(
                            "{addr}: bad subscribe answer: {e}"
                        ))),
                    }
                }
                Ok((status, body)) => refusal(status, &body),
            }
        })
        .await
    }

    /// Up to `count` live nodes at random, never `exclude`; every record verified here.
    pub async fn list_nodes(
        &self,
        count: usize,
        exclude: Option<&PublicKey>,
    ) -> Result<Vec<SignedNodeRecord>, ClientError> {
        let mut path = format!("/v1/nodes?count={count}");
        if let Some(k) = exclude {
            path.push_str(&format!("&exclude={k}"));
        }
        let path = &path;
        self.each(|addr| async move {
            let req = self.http.get(Self::url(&addr, path)).timeout(self.timeout);
            match self.send(req).await {
                Err(e) => e,
                Ok((StatusCode::OK, body)) => match self.verify_list(&body, count, exclude) {
                    Ok(v) => Attempt::Done(v),
                    Err(e) => Attempt::Next(ClientError::Invalid(format!("{addr}: {e}"))),
                },
                Ok((status, body)) => refusal(status, &body),
            }
        })
        .await
    }

    fn verify_list(
        &self,
        body: &[u8],
        count: usize,
        exclude: Option<&PublicKey>,
    ) -> Result<Vec<SignedNodeRecord>, String> {
        let list: NodeList =
            serde_json::from_slice(body).map_err(|e| format!("bad node list: {e}"))?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for n in list.nodes {
            let rec = BASE64
                .decode(n.record.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|b| SignedNodeRecord::from_bytes(b).map_err(|e| e.to_string()));
            match rec {
                Ok(rec)
                    if rec.address_is_bound(self.allow_loopback)
                        && Some(&rec.record().key) != exclude
                        && seen.insert(rec.record().key) =>
                {
                    out.push(rec)
                }
                Ok(_) => tracing::warn!("directory listed an unusable or duplicate node record"),
                Err(e) => tracing::warn!("directory listed an invalid node record: {e}"),
            }
        }
        out.truncate(count);
        Ok(out)
    }

    /// Publishes a signed version 1 manifest (idempotent).
    pub async fn publish(&self, manifest: &SignedManifest) -> Result<(), ClientError> {
        self.put_bytes::<PublishResponse>(
            &format!("/v1/manifests/{}", manifest.id()),
            manifest.as_bytes(),
        )
        .await
    }

    /// Publishes a signed manifest of either version (idempotent).
    pub async fn publish_any(&self, manifest: &AnyManifest) -> Result<(), ClientError> {
        let path = format!("/v1/manifests/{}", manifest.file_id());
        self.put_bytes::<PublishResponse>(&path, manifest.as_bytes())
            .await
    }

    /// Publishes a signed placement record of a version 2 file whose manifest the directory
    /// already holds (idempotent; a record with a lower seq than the held one is refused,
    /// `409 stale_placement`).
    pub async fn publish_placement(&self, placement: &SignedPlacement) -> Result<(), ClientError> {
        let path = format!("/v1/placements/{}", placement.file_id());
        self.put_bytes::<PlacementResponse>(&path, placement.as_bytes())
            .await
    }

    /// `PUT path` with `bytes`, expecting 200/201 and a JSON `R`.
    async fn put_bytes<R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), ClientError> {
        self.each(|addr| async move { self.put_one::<R>(&addr, path, bytes).await })
            .await
    }

    /// One `PUT path` of [`Self::put_bytes`] at the directory at `addr`.
    pub(crate) async fn put_one<R: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        bytes: &[u8],
    ) -> Attempt<()> {
        let req = self
            .http
            .put(Self::url(addr, path))
            .timeout(self.timeout)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec());
        match self.send(req).await {
            Err(e) => e,
            Ok((StatusCode::OK | StatusCode::CREATED, body)) => {
                match serde_json::from_slice::<R>(&body) {
                    Ok(_) => Attempt::Done(()),
                    Err(e) => Attempt::Next(ClientError::Invalid(format!(
                        "{addr}: bad answer to PUT {path}: {e}"
                    ))),
                }
            }
            Ok((status, body)) => refusal(status, &body),
        }
    }

    /// Fetches and verifies the version 1 manifest of `id`. Before its release time only its
    /// uploader gets it: pass the uploader identity to sign the request.
    pub async fn fetch_manifest(
        &self,
        id: &FileId,
        as_uploader: Option<&Identity>,
    ) -> Result<SignedManifest, ClientError> {
        let path = format!("/v1/manifests/{id}");
        self.fetch_withheld(&path, as_uploader, |body| {
            SignedManifest::verify(body, id).map_err(|e| format!("manifest does not verify: {e}"))
        })
        .await
    }

    /// Fetches and verifies the manifest of `id`, version 1 or 2, as [`Self::fetch_manifest`]
    /// (for v2 the uploader is the file's per-file identity).
    pub async fn fetch_any_manifest(
        &self,
        id: &FileId,
        as_uploader: Option<&Identity>,
    ) -> Result<AnyManifest, ClientError> {
        let path = format!("/v1/manifests/{id}");
        self.fetch_withheld(&path, as_uploader, |body| {
            AnyManifest::verify(body, id)
                .map_err(|e: ManifestError| format!("manifest does not verify: {e}"))
        })
        .await
    }

    /// Fetches the placement record of the version 2 file of `manifest`, verified: signed by
    /// the manifest's uploader key and fitting the manifest. Withheld before release like the
    /// manifest (pass the per-file identity to sign as uploader). The first valid record
    /// returned is used; a directory may hold an older seq than another.
    pub async fn fetch_placement(
        &self,
        manifest: &SignedContentManifest,
        as_uploader: Option<&Identity>,
    ) -> Result<SignedPlacement, ClientError> {
        let path = format!("/v1/placements/{}", manifest.id());
        let result = self
            .fetch_withheld(&path, as_uploader, |body| {
                SignedPlacement::verify(body, manifest)
                    .map_err(|e| format!("placement does not verify: {e}"))
            })
            .await;
        match result {
            Err(ClientError::NotFound) => Err(ClientError::NoPlacement),
            other => other,
        }
    }

    /// The pieces of file `id` that the newest placement a directory holds puts on `holder`
    /// (`GET /v1/placements/{id}/held`, signed by the holder's node key): how a holder learns
    /// that pieces it stored are referenced by a published placement. Before release too; only
    /// the holder's own pieces.
    pub async fn held_pieces(
        &self,
        id: &FileId,
        holder: &Identity,
    ) -> Result<crate::wire::HeldPieces, ClientError> {
        let path = format!("/v1/placements/{id}/held");
        self.fetch_withheld(&path, Some(holder), |body| {
            serde_json::from_slice(&body).map_err(|e| format!("not a held-pieces answer: {e}"))
        })
        .await
    }

    /// `GET path`, signed by `as_uploader` if given, until one directory answers 200 with a
    /// body `verify` accepts; 404 and `locked` move on (see [`Self::each`]).
    pub(crate) async fn fetch_withheld<T>(
        &self,
        path: &str,
        as_uploader: Option<&Identity>,
        verify: impl Fn(Vec<u8>) -> Result<T, String>,
    ) -> Result<T, ClientError> {
        let verify = &verify;
        self.each(|addr| async move { self.get_one(&addr, path, as_uploader, verify).await })
            .await
    }

    /// One `GET path` of [`Self::fetch_withheld`] at the directory at `addr`.
    pub(crate) async fn get_one<T>(
        &self,
        addr: &str,
        path: &str,
        as_uploader: Option<&Identity>,
        verify: impl Fn(Vec<u8>) -> Result<T, String>,
    ) -> Attempt<T> {
        let mut req = self.http_get(addr, path);
        if let Some(identity) = as_uploader {
            let to = match self.directory_key(addr).await {
                Ok(key) => key,
                Err(e) => return e,
            };
            let now = self.clock.now();
            req = kairos_net::signed::sign(req, identity, &to, "GET", path, b"", now);
        }
        match self.send(req).await {
            Err(e) => e,
            Ok((StatusCode::OK, body)) => match verify(body) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Next(ClientError::Invalid(format!("{addr}: {e}"))),
            },
            Ok((StatusCode::NOT_FOUND, _)) => Attempt::Next(ClientError::NotFound),
            Ok((status, body)) => refusal(status, &body),
        }
    }

    /// An unsigned `GET path` at the directory at `addr`, with the client's timeout.
    pub(crate) fn http_get(&self, addr: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.get(Self::url(addr, path)).timeout(self.timeout)
    }

    /// The current signed record of node `key` (`GET /v1/nodes/{key}`), verified: signature,
    /// address bound to the key, and the key is the one asked for. How a downloader finds a
    /// holder named by identity in direct mode.
    pub async fn node_record(&self, key: &PublicKey) -> Result<SignedNodeRecord, ClientError> {
        let path = format!("/v1/nodes/{key}");
        let path = &path;
        let result = self
            .each(|addr| async move {
                let req = self.http.get(Self::url(&addr, path)).timeout(self.timeout);
                match self.send(req).await {
                    Err(e) => e,
                    Ok((StatusCode::OK, body)) => match self.verify_node(&body, key) {
                        Ok(v) => Attempt::Done(v),
                        Err(e) => Attempt::Next(ClientError::Invalid(format!("{addr}: {e}"))),
                    },
                    Ok((StatusCode::NOT_FOUND, _)) => Attempt::Next(ClientError::NotFound),
                    Ok((status, body)) => refusal(status, &body),
                }
            })
            .await;
        match result {
            Err(ClientError::NotFound) => Err(ClientError::UnknownNode(*key)),
            other => other,
        }
    }

    fn verify_node(&self, body: &[u8], key: &PublicKey) -> Result<SignedNodeRecord, String> {
        let listed: ListedNode =
            serde_json::from_slice(body).map_err(|e| format!("bad node answer: {e}"))?;
        let bytes = BASE64
            .decode(listed.record.as_bytes())
            .map_err(|e| format!("bad node record encoding: {e}"))?;
        let rec =
            SignedNodeRecord::from_bytes(bytes).map_err(|e| format!("invalid node record: {e}"))?;
        if rec.record().key != *key {
            return Err(format!(
                "asked for node {key}, got a record of {}",
                rec.record().key
            ));
        }
        if !rec.address_is_bound(self.allow_loopback) {
            return Err("node record's address is not bound to its key".into());
        }
        Ok(rec)
    }

    /// The key of the directory at `addr`, which signed requests to it must name.
    async fn directory_key<T>(&self, addr: &str) -> Result<PublicKey, Attempt<T>> {
        // An onion address is its service's key (a directory publishes its onion from its
        // identity key): no round trip over Tor needed, and nothing the directory says can
        // change it.
        if let kairos_proto::addr::AddrKind::Onion(key) = kairos_proto::addr::kind(addr) {
            return Ok(key);
        }
        if let Some(key) = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
        {
            return Ok(*key);
        }
        let req = self
            .http
            .get(Self::url(addr, "/v1/info"))
            .timeout(self.timeout);
        let (status, body) = self.send(req).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &body));
        }
        let invalid = |e: String| Attempt::Next(ClientError::Invalid(format!("{addr}: {e}")));
        let info: Info = serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
        let key = PublicKey::from_text(&info.key).map_err(|e| invalid(e.to_string()))?;
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.to_owned(), key);
        Ok(key)
    }

    /// Sends a request and reads the body (bounded by the manifest size limit).
    pub(crate) async fn send<T>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), Attempt<T>> {
        let unreachable =
            |e: reqwest::Error| Attempt::Next(self.unreachable(kairos_net::with_causes(&e)));
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let cap = kairos_proto::manifest::MAX_MANIFEST_BYTES + 4096;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > cap {
                return Err(Attempt::Next(ClientError::Invalid(
                    "response larger than any valid answer".into(),
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// Classifies an error answer: client mistakes are final; `locked` (which one directory could
/// claim falsely), overload, server failures and anything unexpected move on to the next
/// directory.
pub(crate) fn refusal<T>(status: StatusCode, body: &[u8]) -> Attempt<T> {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    if status == StatusCode::GONE && parsed.as_ref().is_some_and(|b| b.error == "revoked") {
        return Attempt::Next(ClientError::Revoked);
    }
    if let Some(ErrorBody {
        error,
        locked_until: Some(until),
        ..
    }) = &parsed
    {
        if status == StatusCode::FORBIDDEN && error == "locked" {
            return Attempt::Next(ClientError::Locked { until: *until });
        }
    }
    let (code, message) = parsed.map(|b| (b.error, b.message)).unwrap_or_else(|| {
        (
            "unknown".into(),
            String::from_utf8_lossy(body).chars().take(200).collect(),
        )
    });
    let e = ClientError::Rejected {
        status: status.as_u16(),
        code,
        message,
    };
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        Attempt::Final(e)
    } else {
        Attempt::Next(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback address with nothing listening.
    fn closed_port() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_direct_client_never_blames_tor() {
        let (a, b) = (closed_port(), closed_port());
        for addrs in [vec![a.clone()], vec![a, b]] {
            let client = DirectoryClient::new(Transport::Direct, addrs.clone()).unwrap();
            let e = client.list_nodes(1, None).await.unwrap_err();
            assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
            let text = e.to_string();
            let mut words = text.split(|c: char| !c.is_alphanumeric());
            assert!(!words.any(|w| w.eq_ignore_ascii_case("tor")), "{text}");
            assert!(text.contains("the directories are running"), "{text}");
            assert_eq!(text.matches("check the directory").count(), 1, "{text}");
            // The cause itself, not only the URL reqwest names.
            assert!(text.to_lowercase().contains("refused"), "{text}");
            for addr in &addrs {
                assert!(text.contains(addr.as_str()), "{text}");
            }
        }
    }

    #[tokio::test]
    async fn a_tor_client_says_to_check_tor() {
        // tor's SOCKS port is closed: every request fails before leaving this machine.
        let socks = closed_port().parse().unwrap();
        let onion = format!("{}:80", Identity::generate().public().onion_address());
        let client = DirectoryClient::new(Transport::Tor { socks }, vec![onion]).unwrap();
        let e = client.list_nodes(1, None).await.unwrap_err();
        assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("that Tor is running"), "{e}");
    }
}
