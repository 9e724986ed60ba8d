//! `kairos check`: where the pieces of one of this node's uploads stand — per block, which
//! holders still say they hold their piece, which say they do not, and which cannot be reached.
//!
//! Invariants: only this node's own uploads (their per-file key, from the local history, signs
//! for the manifest and placement before release); a holder is asked by piece hash alone and its
//! answer's status is all that is read (`403 locked` = held before release), so a check never
//! moves a piece or its key share. "Held" is the holder's word: it is not proof of possession
//! (an audit would be).

use crate::ops::OpError;
use crate::plan::{Holder, Plan};
use crate::state::Node;
use crate::wire::{BlockHealth, CheckReport};
use futures::stream::{self, StreamExt};
use kairos_proto::{AnyManifest, FileId};
use kairos_seal::{OpenSchedule, PieceHash};

/// Questions to holders in flight at once.
const PROBES: usize = 16;

/// Checks file `id`, which this node must have uploaded.
pub async fn check(node: &Node, id: &FileId) -> Result<CheckReport, OpError> {
    let dir = node.directories()?;
    let upload = crate::history::get(node.store.db(), id)
        .map_err(|e| OpError::Internal(format!("reading the upload history: {e}")))?
        .ok_or_else(|| {
            OpError::BadInput(format!(
                "{id} is not an upload of this node (see `kairos ls`); only its uploader can check a file before release"
            ))
        })?;
    let uploader = crate::info::uploader_key(node, &upload.salt)
        .ok_or_else(|| OpError::Internal("the upload history holds a malformed salt".into()))?;
    let AnyManifest::V2(m) = dir.fetch_any_manifest(id, Some(&uploader)).await? else {
        return Err(OpError::Integrity(
            "the directories hold a version 1 manifest under this id".into(),
        ));
    };
    let placement = dir.fetch_newest_placement(&m, Some(&uploader)).await?;
    // The schedule is not used: a check opens nothing.
    let plan = Plan::from_v2(node, &dir, &m, &placement, OpenSchedule::V1).await?;
    // Owned (block, shard, holder, hash) first: the futures below borrow only `plan`.
    let mut pieces: Vec<(usize, usize, usize, PieceHash)> = Vec::new();
    for (b, block) in plan.blocks.iter().enumerate() {
        for (i, p) in block.pieces.iter().enumerate() {
            pieces.push((b, i, p.peer as usize, p.hash));
        }
    }
    let holders = &plan.holders;
    let answers: Vec<(usize, usize, usize, Result<bool, String>)> = stream::iter(pieces)
        .map(|(b, i, h, hash)| async move { (b, i, h, probe(node, &holders[h], &hash).await) })
        .buffer_unordered(PROBES)
        .collect()
        .await;
    let mut blocks: Vec<BlockHealth> = (0..plan.blocks.len())
        .map(|b| BlockHealth {
            block: b as u32,
            held: 0,
            missing: Vec::new(),
            unreachable: Vec::new(),
        })
        .collect();
    for (b, i, h, answer) in answers {
        let health = &mut blocks[b];
        let key = holders[h].key.to_text();
        match answer {
            Ok(true) => health.held += 1,
            Ok(false) => health.missing.push((i as u8, key)),
            Err(why) => health.unreachable.push((i as u8, key, why)),
        }
    }
    for b in &mut blocks {
        b.missing.sort();
        b.unreachable.sort();
    }
    Ok(CheckReport {
        id: *id,
        release: m.manifest().release,
        k: plan.params.k(),
        n: plan.params.total_shards(),
        placement_seq: placement.seq(),
        weakest: blocks.iter().map(|b| b.held).min().unwrap_or(0),
        blocks,
        checked_at: node.now(),
    })
}

/// Whether `holder` says it holds `hash`; why it could not be asked otherwise.
async fn probe(node: &Node, holder: &Holder, hash: &PieceHash) -> Result<bool, String> {
    let addr = holder
        .addr
        .as_ref()
        .map_err(|why| format!("address unknown: {why}"))?;
    node.peers
        .holds(addr, hash)
        .await
        .map_err(|e| e.to_string())
}
