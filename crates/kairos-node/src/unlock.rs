//! The drand lock, download side: the beacon of the file's round, fetched from the
//! directories' relay and verified against the chain this node pins, opens the lock secret `T`.
//!
//! Invariants:
//! * the chain is one this node knows (quicknet pinned in the binary, or its configured test
//!   chain): a manifest naming another chain cannot make it trust a key from the network;
//! * the manifest's round is checked against its release time before anything else (an earlier
//!   round would open early);
//! * a beacon is used only once it verified and is of the lock's round (the directory client
//!   and `kairos_lock::open_secret` both check), so any relay may carry it;
//! * sources, in order: the directories' relay, then the node's own `beacon_upstreams` (drand's
//!   HTTP API, through the node's transport: over Tor in Tor mode, never directly);
//! * a beacon that is due but not yet relayed is waited for with backoff for at most
//!   `NodeConfig::beacon_wait`, then the get fails as locked ("waiting for beacon round R"),
//!   exit 3 — never a panic, never a partial file;
//! * `T` lives only in the returned schedule (zeroized on drop) and is never logged.

use crate::ops::{EventSink, OpError};
use crate::state::Node;
use kairos_directory_client::{ClientError, DirectoryClient};
use kairos_lock::{Chain, VerifiedBeacon};
use kairos_proto::manifest::{ContentManifest, DrandLock, LockSection};
use kairos_seal::{LockSecret, OpenSchedule};
use std::time::{Duration, Instant};

/// The open schedule of a version 2 file: its lock secret `T` recovered with the beacon of its
/// round (drand lock), or the zero `T` (peer lock only).
pub async fn open_schedule(
    node: &Node,
    dir: &DirectoryClient,
    m: &ContentManifest,
    sink: &EventSink,
) -> Result<OpenSchedule, OpError> {
    let lock_secret = match &m.lock {
        LockSection::None => LockSecret::none(),
        LockSection::DrandTlock(lock) => {
            let chain = node.cfg.known_chain(&lock.chain_hash).ok_or_else(|| {
                OpError::Integrity(format!(
                    "the file is locked to drand chain {}, which this node does not know (it knows quicknet{}); a hostile or foreign manifest",
                    kairos_lock::wire::hex(&lock.chain_hash),
                    if node.cfg.lock_chain.as_ref().is_some_and(Chain::is_test) {
                        " and this network's test chain"
                    } else {
                        ""
                    }
                ))
            })?;
            m.check_lock_round(chain.genesis(), chain.period())
                .map_err(|e| OpError::Integrity(format!("the manifest's drand lock: {e}")))?;
            let beacon = wait_for_beacon(node, dir, &chain, lock, sink).await?;
            let secret = kairos_lock::open_secret(&chain, &beacon, lock.round, &lock.ciphertext)
                .map_err(|e| {
                    OpError::Integrity(format!("the file's drand lock does not open: {e}"))
                })?;
            LockSecret::from_bytes(secret.expose())
        }
    };
    Ok(OpenSchedule::V2 { lock_secret })
}

/// The beacon of `round` from the first of the node's own upstreams that has it, verified.
async fn from_upstreams(node: &Node, chain: &Chain, round: u64) -> Option<VerifiedBeacon> {
    if node.cfg.beacon_upstreams.is_empty() {
        return None;
    }
    let client = match node.cfg.transport.client("beacons") {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("beacon upstreams: {e}");
            return None;
        }
    };
    for base in &node.cfg.beacon_upstreams {
        match fetch_upstream(node, &client, base, chain, round).await {
            Ok(beacon) => return Some(beacon),
            Err(e) => tracing::debug!("beacon upstream {base}: {e}"),
        }
    }
    None
}

/// `GET {base}/{chain hash}/public/{round}` (drand's HTTP API), at most 4 KiB, verified.
async fn fetch_upstream(
    node: &Node,
    client: &reqwest::Client,
    base: &str,
    chain: &Chain,
    round: u64,
) -> Result<VerifiedBeacon, String> {
    let url = reqwest::Url::parse(&format!(
        "{}/{}/public/{round}",
        base.trim_end_matches('/'),
        chain.hash_hex()
    ))
    .map_err(|e| e.to_string())?;
    if node.cfg.transport == kairos_net::Transport::Direct {
        let host = url.host_str().ok_or("no host")?;
        let port = url.port_or_known_default().ok_or("no port")?;
        kairos_net::check_direct_addr(&format!("{host}:{port}"), false)
            .map_err(|e| e.to_string())?;
    }
    let mut resp = (client
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await)
        .map_err(|e| e.to_string())?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > kairos_lock::wire::MAX_JSON_BYTES {
            return Err("answer too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    let beacon = kairos_lock::BeaconJson::parse(&body).map_err(|e| e.to_string())?;
    let verified = chain.verify(&beacon).map_err(|e| e.to_string())?;
    if verified.round() != round {
        return Err(format!("asked for round {round}, got {}", verified.round()));
    }
    Ok(verified)
}

/// First wait between beacon requests; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The verified beacon of the lock's round, asked for until `beacon_wait` has passed.
async fn wait_for_beacon(
    node: &Node,
    dir: &DirectoryClient,
    chain: &Chain,
    lock: &DrandLock,
    sink: &EventSink,
) -> Result<VerifiedBeacon, OpError> {
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut said = false;
    loop {
        let relayed = match dir.fetch_beacon(chain, lock.round).await {
            Ok(beacon) => return Ok(beacon),
            Err(e) => e,
        };
        if let Some(beacon) = from_upstreams(node, chain, lock.round).await {
            return Ok(beacon);
        }
        if !matches!(relayed, ClientError::BeaconPending { .. })
            && node.cfg.beacon_upstreams.is_empty()
        {
            return Err(OpError::DirectoryUnreachable(relayed.to_string()));
        }
        let waited = started.elapsed();
        if waited >= node.cfg.beacon_wait {
            let until = chain.round_time(lock.round).unwrap_or(u64::MAX);
            return Err(OpError::BeaconPending {
                round: lock.round,
                until,
            });
        }
        if !said {
            sink.info(format!(
                "waiting for drand beacon round {} (due {}); asking the directories again for up to {} s",
                lock.round,
                kairos_proto::time::rfc3339(chain.round_time(lock.round).unwrap_or(0)),
                node.cfg.beacon_wait.as_secs()
            ));
            said = true;
        }
        tokio::time::sleep(backoff.min(node.cfg.beacon_wait.saturating_sub(waited))).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
