//! Joining the network: subscribing to the directories with a signed node record and
//! re-subscribing every `heartbeat`, and remembering how each directory answered (for
//! `kairos status`).
//!
//! Invariants: nothing is sent to a directory before the node has joined (`auto_join` or the
//! local API's `start`); once joined, the node stays joined until it stops; each heartbeat
//! signs a fresh record (new timestamp and nonce) so directories can refuse replays; every
//! directory is tried independently, so one unreachable directory does not hide the others.

use crate::node::Node;
use crate::wire::DirectoryStatus;
use kairos_directory_client::DirectoryClient;
use kairos_net::serve::stopped;
use kairos_proto::NodeRecord;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};

/// Most node records asked for when counting known peers.
const LIST_COUNT: usize = 256;

/// The node's standing with its directories.
pub struct Membership {
    joined: AtomicBool,
    wake: Notify,
    /// One client per directory, in configuration order.
    clients: Vec<DirectoryClient>,
    status: Mutex<Vec<DirectoryStatus>>,
    peers_known: AtomicUsize,
}

impl Membership {
    pub fn new(clients: Vec<DirectoryClient>) -> Self {
        let status = clients
            .iter()
            .map(|c| DirectoryStatus {
                addr: c.addrs().first().cloned().unwrap_or_default(),
                last_success: None,
                last_error: None,
                last_error_at: None,
            })
            .collect();
        Membership {
            joined: AtomicBool::new(false),
            wake: Notify::new(),
            clients,
            status: Mutex::new(status),
            peers_known: AtomicUsize::new(0),
        }
    }

    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::SeqCst)
    }

    pub fn peers_known(&self) -> usize {
        self.peers_known.load(Ordering::SeqCst)
    }

    /// Records a fresh count of live peers (heartbeats and uploads list them).
    pub fn set_peers_known(&self, count: usize) {
        self.peers_known.store(count, Ordering::SeqCst);
    }

    pub fn directories(&self) -> Vec<DirectoryStatus> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, i: usize, now: u64, result: Result<(), String>) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = status.get_mut(i) {
            match result {
                Ok(()) => s.last_success = Some(now),
                Err(e) => {
                    s.last_error = Some(e);
                    s.last_error_at = Some(now);
                }
            }
        }
    }
}

/// Marks the node joined and subscribes once right now; the heartbeat loop takes over.
/// Returns how many directories accepted the subscription.
pub async fn join(node: &Arc<Node>) -> usize {
    node.membership.joined.store(true, Ordering::SeqCst);
    let reached = heartbeat(node).await;
    node.membership.wake.notify_one();
    reached
}

/// One round: a fresh signed record to every directory, then a count of live peers.
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
    let rounds = m.clients.iter().map(|c| c.subscribe(&record));
    let results = futures::future::join_all(rounds).await;
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
    if let Some(dir) = &node.directory {
        match dir.list_nodes(LIST_COUNT, None).await {
            Ok(nodes) => m.set_peers_known(nodes.len()),
            Err(e) => tracing::debug!("listing peers failed: {e}"),
        }
    }
    reached
}

impl Membership {
    fn status_addr(&self, i: usize) -> String {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(i)
            .map(|s| s.addr.clone())
            .unwrap_or_default()
    }
}

/// Heartbeats every `heartbeat` while joined, until `stop`.
pub async fn heartbeat_loop(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        if !node.membership.joined() {
            tokio::select! {
                _ = node.membership.wake.notified() => continue,
                _ = stopped(&mut stop) => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(node.cfg.heartbeat) => {}
            _ = stopped(&mut stop) => return,
        }
        tokio::select! {
            _ = heartbeat(&node) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}
