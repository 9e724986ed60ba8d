//! The directory calls of version 2 files: publishing manifest, placement (and a repair's
//! newer placement, or a revoke's tombstone) to every directory, the newest placement record over every directory, and drand beacons from the
//! directories' relay (`GET /v1/beacons/…`).
//!
//! Invariants: a placement is used only if it verifies against the manifest (signed by the
//! file's per-file key, fitting its blocks), and among valid ones the highest `seq` wins, so a
//! directory holding an old record cannot hide a repair; a beacon is returned only once it
//! verifies against the chain the caller pinned, so any directory may relay it.

use crate::client::{refusal, Attempt, ClientError, DirectoryClient};
use crate::wire::{PlacementResponse, PublishResponse, TombstoneResponse};
use kairos_lock::{BeaconJson, Chain, VerifiedBeacon};
use kairos_proto::{Identity, SignedContentManifest, SignedPlacement, SignedTombstone};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

impl DirectoryClient {
    /// Publishes a version 2 file — its content manifest, then its placement record — to every
    /// directory, each getting both in that order (a directory takes a placement only for a
    /// manifest it holds). Succeeds when at least one directory accepted both; the others are
    /// logged (federation brings them the records later).
    pub async fn publish_v2(
        &self,
        manifest: &SignedContentManifest,
        placement: &SignedPlacement,
    ) -> Result<(), ClientError> {
        let manifest_path = format!("/v1/manifests/{}", manifest.id());
        let placement_path = format!("/v1/placements/{}", manifest.id());
        let accepted = AtomicBool::new(false);
        let asked = self
            .each(|addr| {
                let (mp, pp, accepted) = (&manifest_path, &placement_path, &accepted);
                async move {
                    let m = self
                        .put_one::<PublishResponse>(&addr, mp, manifest.as_bytes())
                        .await;
                    if !matches!(m, Attempt::Done(())) {
                        return m;
                    }
                    match self
                        .put_one::<PlacementResponse>(&addr, pp, placement.as_bytes())
                        .await
                    {
                        Attempt::Done(()) => {
                            accepted.store(true, Ordering::Relaxed);
                            // Go on to the next directory.
                            Attempt::Next(ClientError::NotFound)
                        }
                        other => other,
                    }
                }
            })
            .await;
        if accepted.load(Ordering::Relaxed) {
            return Ok(());
        }
        asked
    }

    /// Publishes a placement record (a repair's seq + 1) to every directory. Succeeds when
    /// at least one accepted it; the others are logged (federation brings it later).
    pub async fn publish_placement_everywhere(
        &self,
        placement: &SignedPlacement,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/placements/{}", placement.file_id());
        self.put_everywhere::<PlacementResponse>(&path, placement.as_bytes())
            .await
    }

    /// Publishes the uploader's tombstone of a file to every directory (revoke). Succeeds
    /// when at least one accepted it.
    pub async fn publish_tombstone(&self, tombstone: &SignedTombstone) -> Result<(), ClientError> {
        let path = format!("/v1/tombstones/{}", tombstone.file_id());
        self.put_everywhere::<TombstoneResponse>(&path, tombstone.as_bytes())
            .await
    }

    /// `PUT path` with `bytes` at every directory: Ok when at least one accepted.
    pub(crate) async fn put_everywhere<R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), ClientError> {
        let accepted = AtomicBool::new(false);
        let asked = self
            .each(|addr| {
                let accepted = &accepted;
                async move {
                    match self.put_one::<R>(&addr, path, bytes).await {
                        Attempt::Done(()) => {
                            accepted.store(true, Ordering::Relaxed);
                            // Go on to the next directory.
                            Attempt::Next(ClientError::NotFound)
                        }
                        // A refusal here says nothing of the other directories.
                        Attempt::Final(e) => Attempt::Next(e),
                        other => other,
                    }
                }
            })
            .await;
        if accepted.load(Ordering::Relaxed) {
            return Ok(());
        }
        asked
    }

    /// The placement record with the highest `seq` any directory holds for the version 2 file
    /// of `manifest`, verified. Withheld before release like the manifest (pass the per-file
    /// identity to sign as its uploader).
    pub async fn fetch_newest_placement(
        &self,
        manifest: &SignedContentManifest,
        as_uploader: Option<&Identity>,
    ) -> Result<SignedPlacement, ClientError> {
        let path = format!("/v1/placements/{}", manifest.id());
        let found: Mutex<Vec<SignedPlacement>> = Mutex::new(Vec::new());
        // Every directory is asked: a valid answer is kept and reported as "not here" so that
        // `each` moves on to the next directory.
        let asked = self
            .each(|addr| {
                let (path, found) = (&path, &found);
                async move {
                    match self
                        .get_one(&addr, path, as_uploader, |body| {
                            SignedPlacement::verify(body, manifest)
                                .map_err(|e| format!("placement does not verify: {e}"))
                        })
                        .await
                    {
                        Attempt::Done(p) => {
                            found.lock().unwrap_or_else(|p| p.into_inner()).push(p);
                            Attempt::Next(ClientError::NotFound)
                        }
                        other => other,
                    }
                }
            })
            .await;
        let found = found.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(best) = found.into_iter().max_by_key(|p| p.record().seq) {
            return Ok(best);
        }
        match asked {
            Err(ClientError::NotFound) => Err(ClientError::NoPlacement),
            other => other,
        }
    }

    /// The beacon of `round` of `chain` from the first directory that relays it, verified
    /// against `chain`. [`ClientError::BeaconPending`] when none has it yet (`425 not_yet`,
    /// or its upstream has not published it).
    pub async fn fetch_beacon(
        &self,
        chain: &Chain,
        round: u64,
    ) -> Result<VerifiedBeacon, ClientError> {
        let path = format!("/v1/beacons/{}/{round}", chain.hash_hex());
        let path = &path;
        let pending = AtomicBool::new(false);
        let pending = &pending;
        let result = self
            .each(|addr| async move {
                let req = self.http_get(&addr, path);
                match self.send(req).await {
                    Err(e) => e,
                    Ok((StatusCode::OK, body)) => {
                        let verified = BeaconJson::parse(&body)
                            .and_then(|b| chain.verify(&b))
                            .map_err(|e| e.to_string())
                            .and_then(|b| {
                                if b.round() == round {
                                    Ok(b)
                                } else {
                                    Err(format!("asked for round {round}, got {}", b.round()))
                                }
                            });
                        match verified {
                            Ok(b) => Attempt::Done(b),
                            Err(e) => Attempt::Next(ClientError::Invalid(format!(
                                "{addr}: beacon of round {round} does not verify: {e}"
                            ))),
                        }
                    }
                    // Not yet (425), not here (404), its upstream has not got it yet (502) or
                    // it is busy (503): the beacon may come; ask again later.
                    Ok((
                        StatusCode::TOO_EARLY
                        | StatusCode::NOT_FOUND
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE,
                        _,
                    )) => {
                        pending.store(true, Ordering::Relaxed);
                        Attempt::Next(ClientError::BeaconPending { round })
                    }
                    Ok((status, body)) => match refusal::<VerifiedBeacon>(status, &body) {
                        // A directory that does not relay this chain is no reason to stop.
                        Attempt::Final(e) => Attempt::Next(e),
                        other => other,
                    },
                }
            })
            .await;
        // One directory that has not got it yet outweighs others that failed: the caller waits
        // and asks again.
        match result {
            Err(_) if pending.load(Ordering::Relaxed) => Err(ClientError::BeaconPending { round }),
            other => other,
        }
    }
}
