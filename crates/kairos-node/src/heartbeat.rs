//! Joining the network and staying in it: subscribing to every directory with a freshly
//! signed node record, once on join and then every `heartbeat`.
//!
//! Invariants: nothing is sent to a directory before the node has joined (`auto_join` or the
//! local API's `start`), except the `GET /v1/info` of a warm-up a daemon about to join asks
//! for ([`crate::NodeHandle::warm_up_directories`]); each heartbeat signs a fresh record (new
//! timestamp and nonce) so directories can refuse replays; every directory is tried
//! independently.

use crate::state::Node;
use kairos_proto::NodeRecord;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Marks the node joined and subscribes once right now; the heartbeat loop takes over.
/// Returns how many directories accepted the subscription.
pub async fn join(node: &Arc<Node>) -> usize {
    // Joined first, so the heartbeat loop takes over even if this round fails.
    node.membership.set_joined();
    heartbeat(node).await
}

/// One round: a fresh signed record to every directory, then a survey of live peers.
async fn heartbeat(node: &Arc<Node>) -> usize {
    let m = &node.membership;
    let now = node.now();
    let capacity = node.cfg.quota.saturating_sub(node.store.bytes_used());
    let record = match NodeRecord::new(&node.identity, node.advertise.clone(), capacity, now)
        .sign(&node.identity)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot sign a node record for {}: {e}", node.advertise);
            return 0;
        }
    };
    let started = std::time::Instant::now();
    let rounds = m.clients().iter().map(|c| c.subscribe(&record));
    let results = futures::future::join_all(rounds).await;
    let subscribed = started.elapsed();
    let mut reached = 0;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(()) => {
                reached += 1;
                m.record(i, now, Ok(()));
            }
            // A record of this node signed in this same second is already there (a `start`
            // right after joining): the node is subscribed.
            Err(kairos_directory_client::ClientError::Rejected { code, .. })
                if code == "replay" =>
            {
                reached += 1;
                m.record(i, now, Ok(()));
            }
            Err(e) => {
                tracing::warn!("directory {}: subscription failed: {e}", m.status_addr(i));
                m.record(i, now, Err(e.to_string()));
            }
        }
    }
    // Also keeps the peer book's ages current between uploads.
    let survey = crate::survey::survey(node).await;
    tracing::debug!(
        subscribe_ms = subscribed.as_millis() as u64,
        survey_ms = started.elapsed().saturating_sub(subscribed).as_millis() as u64,
        "heartbeat: {reached} of {} directories took the subscription",
        m.clients().len()
    );
    if survey.answered() > 0 {
        m.set_peers_known(survey.candidates.len());
    }
    reached
}

/// Heartbeats every `heartbeat` while joined, until `stop`.
pub async fn heartbeat_loop(node: Arc<Node>, stop: CancellationToken) {
    loop {
        if !node.membership.joined() {
            tokio::select! {
                _ = node.membership.joined_signal() => continue,
                _ = stop.cancelled() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(node.cfg.heartbeat) => {}
            _ = stop.cancelled() => return,
        }
        tokio::select! {
            _ = heartbeat(&node) => {}
            _ = stop.cancelled() => return,
        }
    }
}
