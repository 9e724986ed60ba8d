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
        match dir.fetch_beacon(chain, lock.round).await {
            Ok(beacon) => return Ok(beacon),
            Err(ClientError::BeaconPending { .. }) => {}
            Err(e) => return Err(OpError::DirectoryUnreachable(e.to_string())),
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
