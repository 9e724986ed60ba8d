//! The uploader's side of pending pieces ([`crate::pending`]): once a placement is published,
//! every holder it put new pieces on is asked to commit them (`POST /v1/commit/{id}`, signed by
//! the file's per-file key), or it drops them after its `pending_window`.
//!
//! A holder checks with its own directories, which may not have the placement yet (federation
//! runs every 30 s by default): holders that do not confirm in the first round are asked again
//! in the background after [`RETRY_AFTER`]; what still fails is left to the audits, which
//! report dropped pieces as missing and repair them.

use crate::peer_client::PeerClient;
use crate::state::Node;
use kairos_proto::{Clock, FileId, Identity, PublicKey};
use std::time::Duration;

/// Pauses before the background rounds.
const RETRY_AFTER: [Duration; 3] = [
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(300),
];

/// Asks every holder (key, address) to commit the pieces of `id` placed on it: one round now,
/// then background rounds for those that did not confirm. Returns how many confirmed now.
pub async fn commit_all(
    node: &Node,
    uploader: &Identity,
    id: FileId,
    holders: Vec<(PublicKey, String)>,
) -> usize {
    let total = holders.len();
    let (peers, clock) = (node.peers.clone(), node.cfg.clock.clone());
    let left = round(&peers, &clock, uploader, &id, holders).await;
    let confirmed = total - left.len();
    if !left.is_empty() {
        tracing::info!(
            "{} of {total} holders of {id} have not confirmed its pieces yet; asking again in the background",
            left.len()
        );
        let uploader = Identity::from_seed(&uploader.seed());
        tokio::spawn(async move {
            let mut left = left;
            for pause in RETRY_AFTER {
                tokio::time::sleep(pause).await;
                left = round(&peers, &clock, &uploader, &id, left).await;
                if left.is_empty() {
                    return;
                }
            }
            tracing::warn!(
                "{} holders of {id} never confirmed its pieces: they drop them after their pending window, and the next audit repairs them",
                left.len()
            );
        });
    }
    confirmed
}

/// One round: every holder asked at once; returns those that did not confirm.
async fn round(
    peers: &PeerClient,
    clock: &Clock,
    uploader: &Identity,
    id: &FileId,
    holders: Vec<(PublicKey, String)>,
) -> Vec<(PublicKey, String)> {
    let asks =
        (holders.iter()).map(|(key, addr)| peers.commit(uploader, key, addr, id, clock.now()));
    let results = futures::future::join_all(asks).await;
    holders
        .into_iter()
        .zip(results)
        .filter_map(|(holder, r)| match r {
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("holder {} did not commit {id}: {e}", holder.1);
                Some(holder)
            }
        })
        .collect()
}
