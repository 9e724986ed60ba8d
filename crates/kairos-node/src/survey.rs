//! Asking every directory which nodes are live, and merging the answers into placement
//! candidates.
//!
//! Invariants:
//! * every configured directory is asked, concurrently and independently (over Tor each
//!   directory is a different onion service, so a different circuit); one directory's answer
//!   never hides another's;
//! * a candidate remembers which directories listed it ([`Candidate::vouchers`]) — that is what
//!   the per-directory cap of [`crate::placement`] works on — and how long this node has seen
//!   it ([`crate::peer_book`]);
//! * records are verified by the directory client; when directories hold different records of
//!   one node, the newest signed one gives its address.

use crate::placement::Candidate;
use crate::state::Node;
use kairos_directory_client::ClientError;
use kairos_proto::{PublicKey, SignedNodeRecord};
use std::collections::HashMap;

/// Most nodes asked of each directory.
pub const LIST_COUNT: usize = 256;

/// What the directories listed.
pub struct Survey {
    pub candidates: Vec<Candidate>,
    /// Directories asked.
    pub asked: usize,
    /// Errors of the directories that did not answer (address, error).
    pub failed: Vec<(String, ClientError)>,
}

impl Survey {
    /// Directories that answered.
    pub fn answered(&self) -> usize {
        self.asked - self.failed.len()
    }
}

/// Lists live nodes from every directory of `node` and merges them.
pub async fn survey(node: &Node) -> Survey {
    let clients = node.membership.clients();
    let lists = futures::future::join_all(clients.iter().map(|c| c.list_nodes(LIST_COUNT, None)));
    let results = lists.await;
    let now = node.now();
    let mut failed = Vec::new();
    let mut merged: HashMap<PublicKey, (SignedNodeRecord, Vec<usize>)> = HashMap::new();
    for (d, result) in results.into_iter().enumerate() {
        let records = match result {
            Ok(r) => r,
            Err(e) => {
                let addr = clients[d].addrs().first().cloned().unwrap_or_default();
                tracing::warn!("directory {addr}: listing nodes failed: {e}");
                failed.push((addr, e));
                continue;
            }
        };
        for rec in records {
            let key = rec.record().key;
            match merged.get_mut(&key) {
                Some((held, vouchers)) => {
                    if !vouchers.contains(&d) {
                        vouchers.push(d);
                    }
                    if rec.record().timestamp > held.record().timestamp {
                        *held = rec;
                    }
                }
                None => {
                    merged.insert(key, (rec, vec![d]));
                }
            }
        }
    }
    node.peer_book.observe(merged.keys(), now);
    let candidates = merged
        .into_iter()
        .map(|(key, (rec, vouchers))| Candidate {
            key,
            addr: rec.record().addr.clone(),
            vouchers,
            seen_for: node.peer_book.seen_for(&key, now),
        })
        .filter(|c| node.peers.allowed(&c.addr))
        .collect();
    Survey {
        candidates,
        asked: clients.len(),
        failed,
    }
}
