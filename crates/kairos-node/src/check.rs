//! `kairos check`: where the pieces of one of this node's uploads stand — per block, which
//! holders proved they hold their piece (an audit, [`crate::auditor`]), which say they do not,
//! which answered with a bad proof, and which cannot be reached.
//!
//! Invariants: only this node's own uploads (their per-file key, from the local history, signs
//! for the manifest, the placement and the audits before release); an audit moves a few 1 KiB
//! chunks of shard bytes and never a key share. The result (time and weakest block) is kept in
//! the upload history so `kairos ls` can show it.

use crate::auditor::{audit_file, Health};
use crate::ops::OpError;
use crate::own_file::OwnFile;
use crate::state::Node;
use crate::wire::{BlockHealth, CheckReport};
use kairos_proto::FileId;

/// Checks file `id`, which this node must have uploaded.
pub async fn check(node: &Node, id: &FileId) -> Result<CheckReport, OpError> {
    let file = OwnFile::load(node, id).await?;
    let report = check_loaded(node, &file).await;
    crate::own_file::note_audit(node, &file.upload, report.checked_at, report.weakest).await;
    Ok(report)
}

/// Audits a loaded file and summarises it per block.
pub async fn check_loaded(node: &Node, file: &OwnFile) -> CheckReport {
    let audited = audit_file(node, file).await;
    let holders = &file.plan.holders;
    let mut blocks: Vec<BlockHealth> = (file.plan.blocks.iter().enumerate())
        .map(|(b, entry)| BlockHealth {
            block: b as u32,
            holders: (entry.pieces.iter())
                .map(|p| holders[p.peer as usize].key.to_text())
                .collect(),
            held: 0,
            missing: Vec::new(),
            corrupt: Vec::new(),
            unreachable: Vec::new(),
        })
        .collect();
    for a in audited {
        let health = &mut blocks[a.block];
        let key = holders[a.holder].key.to_text();
        let shard = a.shard as u8;
        match a.health {
            Health::Healthy => health.held += 1,
            Health::Missing => health.missing.push((shard, key)),
            Health::Corrupt(why) => health.corrupt.push((shard, key, why)),
            Health::Unreachable(why) => health.unreachable.push((shard, key, why)),
        }
    }
    for b in &mut blocks {
        b.missing.sort();
        b.corrupt.sort();
        b.unreachable.sort();
    }
    CheckReport {
        id: file.id(),
        release: file.release(),
        k: file.plan.params.k(),
        n: file.plan.params.total_shards(),
        placement_seq: file.placement.seq(),
        weakest: blocks.iter().map(|b| b.held).min().unwrap_or(0),
        blocks,
        checked_at: node.now(),
    }
}
