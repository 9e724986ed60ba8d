//! Starting the planned relays and authorities, all at once.
//!
//! Invariant: every node that did start is handed back to the caller (pushed into its list)
//! even when another node failed, so the caller can stop them all; nothing is left running
//! behind its back.

use crate::error::TestNetError;
use crate::plan::NodePlan;
use crate::torrc::node_lines;
use kairos_tor::launch::{spawn_tor, SpawnedTor};
use std::path::Path;

/// A running relay or authority.
pub(crate) struct Node {
    pub name: String,
    pub tor: SpawnedTor,
}

/// Starts a tor for every plan (concurrently; each start waits for its control port) and
/// pushes each one that started into `nodes`; returns the first failure, if any.
pub(crate) async fn start_nodes(
    nodes: &mut Vec<Node>,
    tor: &Path,
    plans: &[NodePlan],
    dir_authority_lines: &[String],
    bandwidths: &Path,
) -> Result<(), TestNetError> {
    let jobs: Vec<_> = plans
        .iter()
        .map(|p| {
            let lines = node_lines(p, dir_authority_lines, bandwidths);
            let (tor, dir, name) = (tor.to_path_buf(), p.dir.clone(), p.name.clone());
            tokio::spawn(async move { spawn_tor(&tor, &dir, &lines, &name).await })
        })
        .collect();
    let mut first_error = None;
    for (p, job) in plans.iter().zip(jobs) {
        let result = job.await.unwrap_or_else(|e| {
            Err(kairos_tor::TorError::Tool {
                tool: "tor start".into(),
                detail: e.to_string(),
            })
        });
        match result {
            Ok(tor) => nodes.push(Node {
                name: p.name.clone(),
                tor,
            }),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Stops every node and waits until each has exited.
pub(crate) async fn stop_all(nodes: &mut Vec<Node>) {
    for node in nodes.iter_mut() {
        node.tor.terminate().await;
    }
    nodes.clear();
}
