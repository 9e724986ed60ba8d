//! The uploader's side of audits: asks each holder of one of its files to prove, with randomly
//! chosen 1 KiB chunks and their Merkle paths ([`kairos_seal::audit`]), that it still holds the
//! whole piece — before release, without the holder giving out the piece or its share.
//!
//! Invariants: chunks are drawn from the OS CSPRNG per audit, so a holder cannot precompute
//! which parts to keep; a proof is checked against the piece hash in the signed manifest,
//! with the share regenerated from the repair seed (the holder never sends it); any answer
//! that is not a full, valid proof of every chunk asked marks the piece corrupt.

use crate::own_file::OwnFile;
use crate::peer_client::PeerError;
use crate::state::Node;
use futures::stream::{self, StreamExt};
use kairos_seal::audit::{self, AUDIT_CHUNKS};
use kairos_seal::{regenerate_share, SHARE_LEN};
use rand::rngs::OsRng;
use rand::Rng;

/// Audits in flight at once.
const AUDITS: usize = 16;

/// What an audit found about one piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Every chunk asked was proven.
    Healthy,
    /// The holder says it does not hold the piece.
    Missing,
    /// The holder answered with something that is not a valid proof.
    Corrupt(String),
    /// The holder could not be asked or refused.
    Unreachable(String),
}

/// One audited piece.
#[derive(Clone, Debug)]
pub struct Audited {
    pub block: usize,
    pub shard: usize,
    /// Index into the plan's holders.
    pub holder: usize,
    pub health: Health,
}

/// Audits every piece of `file`.
pub async fn audit_file(node: &Node, file: &OwnFile) -> Vec<Audited> {
    let mut jobs = Vec::new();
    for (b, block) in file.plan.blocks.iter().enumerate() {
        for (i, p) in block.pieces.iter().enumerate() {
            jobs.push((b, i, p.peer as usize));
        }
    }
    stream::iter(jobs)
        .map(|(block, shard, holder)| async move {
            Audited {
                block,
                shard,
                holder,
                health: audit_piece(node, file, block, shard).await,
            }
        })
        .buffer_unordered(AUDITS)
        .collect()
        .await
}

/// Audits piece `shard` of block `block` of `file`.
pub async fn audit_piece(node: &Node, file: &OwnFile, block: usize, shard: usize) -> Health {
    let entry = &file.plan.blocks[block].pieces[shard];
    let holder = &file.plan.holders[entry.peer as usize];
    let addr = match &holder.addr {
        Ok(a) => a,
        Err(why) => return Health::Unreachable(format!("address unknown: {why}")),
    };
    let piece_len = file.piece_len(block);
    let chunks = pick_chunks(audit::chunk_count(piece_len));
    let answer = node
        .peers
        .audit(
            &file.uploader,
            &holder.key,
            addr,
            &entry.hash,
            &chunks,
            node.now(),
        )
        .await;
    let proofs = match answer {
        Ok(p) => p,
        Err(PeerError::NotFound) => return Health::Missing,
        Err(e @ PeerError::Invalid(_)) => return Health::Corrupt(e.to_string()),
        Err(e) => return Health::Unreachable(e.to_string()),
    };
    let share = match regenerate_share(&file.repair_seed, block as u32, shard, &file.plan.params) {
        Ok(s) => s,
        Err(e) => return Health::Unreachable(format!("regenerating the share: {e}")),
    };
    let share: &[u8; SHARE_LEN] = &share;
    if proofs.len() != chunks.len() {
        return Health::Corrupt(format!(
            "answered {} of {} chunks",
            proofs.len(),
            chunks.len()
        ));
    }
    for (proof, &chunk) in proofs.iter().zip(&chunks) {
        if proof.chunk != chunk || !audit::verify(&entry.hash, piece_len, share, proof) {
            return Health::Corrupt(format!(
                "chunk {chunk} does not prove against the piece hash in the manifest"
            ));
        }
    }
    Health::Healthy
}

/// [`AUDIT_CHUNKS`] chunk indices below `count`, uniformly at random (repeats allowed when
/// the piece has fewer chunks).
fn pick_chunks(count: u64) -> Vec<u64> {
    (0..AUDIT_CHUNKS)
        .map(|_| OsRng.gen_range(0..count.max(1)))
        .collect()
}
