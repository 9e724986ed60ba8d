//! Revoke: the uploader takes one of its files back before its release. Every holder is asked
//! to delete its pieces (`DELETE /v1/pieces/{hash}`, signed by the per-file key), and every
//! directory gets the uploader's signed tombstone, which replaces manifest and placement
//! (`PUT /v1/tombstones/{id}`, federated to siblings); a get then says "revoked by its
//! uploader".
//!
//! Invariants: only this node's own uploads, only before release (by this node's clock; the
//! directories and holders check again with theirs); the tombstone is published even when
//! some holders cannot be reached — their pieces stay until the holders' retention, but no
//! directory serves the manifest or placement any more, so the pieces cannot be found and
//! opened. The revocation is noted in the local history.

use crate::ops::OpError;
use crate::own_file::OwnFile;
use crate::state::Node;
use crate::wire::RevokeReport;
use futures::stream::{self, StreamExt};
use kairos_proto::{FileId, Tombstone};

/// Deletes in flight at once.
const DELETES: usize = 16;

/// Revokes file `id`, which this node must have uploaded, before its release.
pub async fn revoke(node: &Node, id: &FileId) -> Result<RevokeReport, OpError> {
    let file = OwnFile::load(node, id).await?;
    let now = node.now();
    if now >= file.release() {
        return Err(OpError::BadInput(format!(
            "{id} was released at {}; a released file cannot be revoked (anyone may have downloaded it)",
            kairos_proto::time::rfc3339(file.release())
        )));
    }
    let mut jobs = Vec::new();
    for block in &file.plan.blocks {
        for p in &block.pieces {
            jobs.push((p.peer as usize, p.hash));
        }
    }
    let answers: Vec<Result<bool, String>> = stream::iter(jobs)
        .map(|(h, hash)| {
            let file = &file;
            async move {
                let holder = &file.plan.holders[h];
                let addr = holder.addr.as_ref().map_err(|why| why.clone())?;
                node.peers
                    .delete(&file.uploader, &holder.key, addr, &hash, node.now())
                    .await
                    .map_err(|e| format!("{}: {e}", holder.key))
            }
        })
        .buffer_unordered(DELETES)
        .collect()
        .await;
    let tombstone = Tombstone {
        file_id: *id,
        created: now,
    }
    .sign(&file.uploader);
    file.dir.publish_tombstone(&tombstone).await?;
    let mut upload = file.upload.clone();
    upload.revoked = Some(now);
    crate::own_file::update(node, upload).await;
    let mut report = RevokeReport {
        id: *id,
        pieces: answers.len(),
        deleted: 0,
        already_gone: 0,
        failed: Vec::new(),
    };
    for a in answers {
        match a {
            Ok(true) => report.deleted += 1,
            Ok(false) => report.already_gone += 1,
            Err(why) => report.failed.push(why),
        }
    }
    report.failed.sort();
    report.failed.dedup();
    Ok(report)
}
