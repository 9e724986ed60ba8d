//! Repair by the uploader's node: audit every piece of one of its files and rebuild each piece
//! whose holder is gone, lost it or fails its audit, bit for bit, onto a new distinct node;
//! then publish the placement with seq + 1. The file id never changes.
//!
//! How a piece is rebuilt without anyone giving out a key share: the shards (only) of `k`
//! healthy pieces of the block are fetched from their holders with requests signed by the
//! per-file key (`GET /v1/pieces/{hash}/shard`), each checked against the manifest's piece
//! hash with its share regenerated from the repair seed; Reed-Solomon rebuilds the lost shard
//! ([`kairos_seal::repair::rebuild_shard`]) and the repair seed its share
//! ([`kairos_seal::regenerate_share`]). The rebuilt piece must hash to the manifest's piece
//! hash before it is stored.
//!
//! Invariants: a block with fewer than `k` healthy pieces cannot be repaired and is reported
//! lost; a new holder never already holds a piece of the same block; a placement is published
//! only when at least one piece moved, to every directory; nothing here can open the file
//! (the lock secret `T` of a drand-locked file is never kept).

use crate::auditor::{audit_file, Health};
use crate::ops::OpError;
use crate::own_file::OwnFile;
use crate::piece::OutgoingPiece;
use crate::placement::Candidate;
use crate::state::Node;
use crate::wire::{RepairReport, RepairedPiece};
use bytes::Bytes;
use kairos_proto::{FileId, PlacementRecord, PublicKey};
use kairos_seal::repair::rebuild_shard;
use kairos_seal::{piece_hash, regenerate_share};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Audits and repairs every unreleased, unrevoked upload of this node every
/// `audit_interval` (±25 % jitter, so audits do not line up across nodes), until `stop`.
pub async fn audit_loop(node: Arc<Node>, stop: CancellationToken) {
    let interval = node.cfg.audit_interval;
    if interval.is_zero() {
        return;
    }
    loop {
        let delay = interval.mul_f64(rand::rngs::OsRng.gen_range(0.75..1.25));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        tokio::select! {
            _ = audit_all(&node) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One round of scheduled audits and repairs.
async fn audit_all(node: &Node) {
    let uploads = match crate::history::list(node.store.db()) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("scheduled audit: reading the upload history failed: {e}");
            return;
        }
    };
    let now = node.now();
    for u in uploads
        .iter()
        .filter(|u| u.revoked.is_none() && now < u.release)
    {
        let result = match OwnFile::load(node, &u.id).await {
            Ok(file) => repair_loaded(node, &file).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) if !r.rebuilt.is_empty() || !r.lost_blocks.is_empty() || !r.failed.is_empty() => {
                tracing::info!(
                    "scheduled audit of {}: {} pieces rebuilt, {} blocks lost, {} failures (placement {})",
                    u.id,
                    r.rebuilt.len(),
                    r.lost_blocks.len(),
                    r.failed.len(),
                    r.placement_seq
                );
            }
            Ok(_) => tracing::debug!("scheduled audit of {}: every piece healthy", u.id),
            Err(e) => tracing::warn!("scheduled audit of {} failed: {e}", u.id),
        }
    }
}

/// Audits and repairs file `id`, which this node must have uploaded.
pub async fn repair(node: &Node, id: &FileId) -> Result<RepairReport, OpError> {
    let file = OwnFile::load(node, id).await?;
    repair_loaded(node, &file).await
}

/// Audits and repairs a loaded file.
pub async fn repair_loaded(node: &Node, file: &OwnFile) -> Result<RepairReport, OpError> {
    let _one_at_a_time = node.repairs.lock().await;
    let started = Instant::now();
    let (k, n) = (file.plan.params.k(), file.plan.params.total_shards());
    let audited = audit_file(node, file).await;
    let mut healthy: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut broken: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
    for a in &audited {
        match &a.health {
            Health::Healthy => healthy.entry(a.block).or_default().push(a.shard),
            other => broken
                .entry(a.block)
                .or_default()
                .push((a.shard, describe(other))),
        }
    }
    let mut report = RepairReport {
        id: file.id(),
        audited: audited.len(),
        rebuilt: Vec::new(),
        lost_blocks: Vec::new(),
        failed: Vec::new(),
        bytes_fetched: 0,
        bytes_stored: 0,
        placement_seq: file.placement.seq(),
        elapsed_ms: 0,
    };
    if !broken.is_empty() {
        let mut record = file.placement.record().clone();
        let mut pool = candidates(node, file).await?;
        for (&block, bad) in &broken {
            let good = healthy.get(&block).cloned().unwrap_or_default();
            if good.len() < k {
                report.lost_blocks.push(block as u32);
                continue;
            }
            repair_block(
                node,
                file,
                block,
                &good,
                bad,
                &mut pool,
                &mut record,
                &mut report,
            )
            .await;
        }
        if !report.rebuilt.is_empty() {
            record.seq = record.seq.saturating_add(1);
            record.created = node.now();
            let signed = record
                .sign(&file.uploader)
                .map_err(|e| OpError::Internal(format!("signing the placement: {e}")))?;
            file.dir.publish_placement_everywhere(&signed).await?;
            report.placement_seq = signed.seq();
            let fresh = (pool.nodes.iter())
                .filter(|c| report.rebuilt.iter().any(|r| r.holder == c.key.to_text()))
                .map(|c| (c.key, c.addr.clone()))
                .collect();
            crate::commits::commit_all(node, &file.uploader, file.id(), fresh).await;
        }
    }
    let weakest = (0..file.plan.blocks.len())
        .map(|b| {
            let moved = report
                .rebuilt
                .iter()
                .filter(|r| r.block as usize == b)
                .count();
            healthy.get(&b).map_or(0, Vec::len) + moved
        })
        .min()
        .unwrap_or(n);
    crate::own_file::note_audit(node, &file.upload, node.now(), weakest).await;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn describe(h: &Health) -> String {
    match h {
        Health::Healthy => "healthy".into(),
        Health::Missing => "missing".into(),
        Health::Corrupt(why) => format!("failed its audit: {why}"),
        Health::Unreachable(why) => format!("unreachable: {why}"),
    }
}

/// Where rebuilt pieces may go: the candidates, and the most pieces of one block that nodes
/// vouched for by one directory alone may hold (`k − 1` when two or more directories answered,
/// as for a put: [`crate::placement`]).
struct Pool {
    nodes: Vec<Candidate>,
    sole_cap: Option<usize>,
}

impl Pool {
    /// Whether `c` may take a piece of a block held by `holding` under the per-directory cap.
    /// Holders no directory lists now count for nobody.
    fn allows(&self, c: &Candidate, holding: &HashSet<PublicKey>) -> bool {
        let (Some(cap), Some(d)) = (self.sole_cap, c.sole_voucher()) else {
            return true;
        };
        let same = (self.nodes.iter())
            .filter(|n| holding.contains(&n.key) && n.sole_voucher() == Some(d))
            .count();
        same < cap
    }
}

/// Live nodes the directories list, shuffled, with the keys of the file's current holders
/// last (a new holder should preferably hold nothing of the file yet).
async fn candidates(node: &Node, file: &OwnFile) -> Result<Pool, OpError> {
    let survey = crate::survey::survey(node).await;
    if survey.answered() == 0 {
        let errors: Vec<String> = (survey.failed.iter())
            .map(|(addr, e)| format!("{addr}: {e}"))
            .collect();
        return Err(OpError::DirectoryUnreachable(errors.join("; ")));
    }
    let current: HashSet<PublicKey> = file.placement.record().holders.iter().copied().collect();
    let answered = survey.answered();
    let mut pool = survey.candidates;
    pool.shuffle(&mut rand::rngs::OsRng);
    pool.sort_by_key(|c| current.contains(&c.key));
    let k = file.plan.params.k();
    Ok(Pool {
        nodes: pool,
        sole_cap: (answered >= 2).then_some(k.saturating_sub(1)),
    })
}

/// Rebuilds the `bad` pieces of `block` from its `good` ones and stores each on a new node.
#[allow(clippy::too_many_arguments)]
async fn repair_block(
    node: &Node,
    file: &OwnFile,
    block: usize,
    good: &[usize],
    bad: &[(usize, String)],
    pool: &mut Pool,
    record: &mut PlacementRecord,
    report: &mut RepairReport,
) {
    let params = file.plan.params;
    let k = params.k();
    let entry = &file.plan.blocks[block];
    let have = fetch_shards(node, file, block, good, &mut report.bytes_fetched).await;
    if have.len() < k {
        report.failed.push((
            block as u32,
            None,
            format!(
                "only {} of the {k} shards needed could be fetched",
                have.len()
            ),
        ));
        return;
    }
    let refs: Vec<(usize, &[u8])> = have.iter().map(|(i, s)| (*i, &s[..])).collect();
    // Every node that holds (or held, and failed its audit) a piece of this block: no node
    // gets two pieces of a block, and a node that lost one gets none of it back.
    let mut in_block: HashSet<PublicKey> = (0..entry.pieces.len())
        .filter_map(|s| record.holder_of(block, s).copied())
        .collect();
    for (shard, why) in bad {
        let piece = &entry.pieces[*shard];
        let (share, bytes) = match rebuild_piece(file, block, *shard, &refs) {
            Ok(r) => r,
            Err(why) => {
                report.failed.push((block as u32, Some(*shard as u8), why));
                continue;
            }
        };
        let body = OutgoingPiece::new(
            file.release(),
            block as u32,
            *shard as u8,
            &share[..],
            Bytes::from(bytes),
        );
        let stored_len = (kairos_seal::SHARE_LEN + body.shard.len()) as u64;
        match store_somewhere(node, file, &piece.hash, body, pool, &in_block).await {
            Some(holder) => {
                in_block.insert(holder);
                report.bytes_stored += stored_len;
                set_holder(record, block, *shard, holder);
                report.rebuilt.push(RepairedPiece {
                    block: block as u32,
                    shard: *shard as u8,
                    was: why.clone(),
                    holder: holder.to_text(),
                });
            }
            None => report.failed.push((
                block as u32,
                Some(*shard as u8),
                "no candidate node accepted the rebuilt piece".into(),
            )),
        }
    }
}

/// Share and shard of piece `shard` of `block`, rebuilt from the shards in `refs`; checked
/// against the manifest's piece hash.
fn rebuild_piece(
    file: &OwnFile,
    block: usize,
    shard: usize,
    refs: &[(usize, &[u8])],
) -> Result<(zeroize::Zeroizing<kairos_seal::KeyShare>, Vec<u8>), String> {
    let params = &file.plan.params;
    let bytes = rebuild_shard(params, refs, shard).map_err(|e| e.to_string())?;
    let share = regenerate_share(&file.repair_seed, block as u32, shard, params)
        .map_err(|e| e.to_string())?;
    if piece_hash(&share[..], &bytes) != file.plan.blocks[block].pieces[shard].hash {
        return Err("the rebuilt piece does not hash to the manifest's piece hash".into());
    }
    Ok((share, bytes))
}

/// The shards of up to `k` of the `good` pieces of `block`, each checked against the manifest's
/// piece hash with its regenerated share.
async fn fetch_shards(
    node: &Node,
    file: &OwnFile,
    block: usize,
    good: &[usize],
    fetched_bytes: &mut u64,
) -> Vec<(usize, Bytes)> {
    let params = file.plan.params;
    let entry = &file.plan.blocks[block];
    let shard_len = (file.piece_len(block) as usize).saturating_sub(kairos_seal::SHARE_LEN);
    let mut have = Vec::new();
    for &s in good {
        if have.len() == params.k() {
            break;
        }
        let piece = &entry.pieces[s];
        let holder = &file.plan.holders[piece.peer as usize];
        let Ok(addr) = &holder.addr else { continue };
        let (who, hash, now) = (&file.uploader, &piece.hash, node.now());
        let fetched = node
            .peers
            .fetch_shard(who, &holder.key, addr, hash, shard_len, now)
            .await;
        let Ok(shard) = fetched else { continue };
        *fetched_bytes += shard.len() as u64;
        let Ok(share) = regenerate_share(&file.repair_seed, block as u32, s, &params) else {
            continue;
        };
        if piece_hash(&share[..], &shard) == piece.hash {
            have.push((s, shard));
        }
    }
    have
}

/// Stores `body` on the first candidate that is not in `exclude` and accepts it.
async fn store_somewhere(
    node: &Node,
    file: &OwnFile,
    hash: &kairos_seal::PieceHash,
    body: OutgoingPiece,
    pool: &Pool,
    exclude: &HashSet<PublicKey>,
) -> Option<PublicKey> {
    let allowed =
        (pool.nodes.iter()).filter(|c| !exclude.contains(&c.key) && pool.allows(c, exclude));
    for c in allowed {
        let stored = node
            .peers
            .store(
                &file.uploader,
                &c.key,
                &c.addr,
                hash,
                body.clone(),
                node.now(),
            )
            .await;
        match stored {
            Ok(_) => return Some(c.key),
            Err(e) => tracing::debug!("repair: {} refused a piece: {e}", c.key),
        }
    }
    None
}

/// Points piece `shard` of `block` at `holder`, adding it to the holder list if new.
fn set_holder(record: &mut PlacementRecord, block: usize, shard: usize, holder: PublicKey) {
    let index = match record.holders.iter().position(|h| *h == holder) {
        Some(i) => i,
        None => {
            record.holders.push(holder);
            record.holders.len() - 1
        }
    };
    record.blocks[block][shard] = index as u16;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8, vouchers: Vec<usize>) -> Candidate {
        Candidate {
            key: PublicKey([i; 32]),
            addr: format!("127.0.0.1:{}", 1000 + u16::from(i)),
            vouchers,
            seen_for: 0,
        }
    }

    /// A rebuilt piece never gives one directory's own nodes `k` pieces of a block.
    #[test]
    fn repair_keeps_the_per_directory_cap() {
        let nodes: Vec<Candidate> = (0..6)
            .map(|i| node(i, vec![1]))
            .chain([node(9, vec![0, 1])])
            .collect();
        let pool = Pool {
            nodes,
            sole_cap: Some(3),
        };
        // Three holders of the block are directory 1's alone: a fourth of its nodes may not
        // join, a node both directories list may.
        let holding: HashSet<PublicKey> = (0..3).map(|i| PublicKey([i; 32])).collect();
        assert!(!pool.allows(&pool.nodes[4], &holding));
        assert!(pool.allows(&pool.nodes[6], &holding));
        let two: HashSet<PublicKey> = (0..2).map(|i| PublicKey([i; 32])).collect();
        assert!(pool.allows(&pool.nodes[4], &two));
        let uncapped = Pool {
            nodes: pool.nodes.clone(),
            sole_cap: None,
        };
        assert!(uncapped.allows(&uncapped.nodes[4], &holding));
    }
}
