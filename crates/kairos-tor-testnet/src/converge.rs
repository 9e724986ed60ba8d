//! Waiting until the network is usable: every node's consensus lists every relay with the
//! flags onion services need, and every node holds every relay's microdescriptor.
//!
//! Invariant: readiness is judged per node from what that node itself reports over its
//! control port (`ns/all`, `md/all`); a node counts as ready once and is not polled again. A
//! node that exits fails the wait at once, with its log tail.

use crate::error::TestNetError;
use crate::nodes::Node;
use kairos_tor::launch::SpawnedTor;
use std::time::{Duration, Instant};
use tracing::debug;

/// Flags every relay must have in a node's consensus before the network counts as ready.
const REQUIRED_FLAGS: &[&str] = &["Running", "Valid", "Guard", "HSDir"];

/// What one node's consensus says, for readiness checks and error messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct NodeView {
    listed: usize,
    with_flags: usize,
    microdescs: usize,
}

impl NodeView {
    fn is_ready(&self, relays: usize) -> bool {
        self.listed == relays && self.with_flags == relays && self.microdescs >= relays
    }
}

/// Polls every node until all are ready (see the module docs) or `timeout` passes.
pub(crate) async fn wait_converged(
    nodes: &mut [Node],
    fingerprints: &[String],
    timeout: Duration,
    started: Instant,
) -> Result<(), TestNetError> {
    let deadline = Instant::now() + timeout;
    let n = fingerprints.len();
    let mut views = vec![NodeView::default(); nodes.len()];
    let mut ready = vec![false; nodes.len()];
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            if ready[i] {
                continue;
            }
            if let Some(e) = node.tor.exit_error().await {
                return Err(e.into());
            }
            let view = node_view(&mut node.tor, fingerprints).await;
            if view != views[i] {
                debug!(node = %node.name, ?view, "consensus view");
            }
            ready[i] = view.is_ready(n);
            if ready[i] {
                debug!(
                    node = %node.name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "node has the full consensus"
                );
            }
            views[i] = view;
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(not_converged(nodes, &views, n, timeout));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The timeout error, saying how far each node got.
fn not_converged(nodes: &[Node], views: &[NodeView], n: usize, timeout: Duration) -> TestNetError {
    let detail = nodes
        .iter()
        .zip(views)
        .map(|(node, v)| {
            format!(
                "{}: {}/{n} relays listed, {}/{n} with {:?}, {}/{n} microdescriptors",
                node.name, v.listed, v.with_flags, REQUIRED_FLAGS, v.microdescs
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    TestNetError::NotConverged { timeout, detail }
}

async fn node_view(tor: &mut SpawnedTor, fingerprints: &[String]) -> NodeView {
    // Before the first consensus, tor answers these keys with an error: count that as empty.
    let ns = tor.control().get_info("ns/all").await.unwrap_or_default();
    let md = tor.control().get_info("md/all").await.unwrap_or_default();
    parse_view(&ns, &md, fingerprints)
}

/// Counts, among the relays with the given (hex) fingerprints, those listed in `ns` (a
/// consensus in `ns/all` form), those listed with every [`REQUIRED_FLAGS`] flag, and the
/// microdescriptors in `md`.
fn parse_view(ns: &str, md: &str, fingerprints: &[String]) -> NodeView {
    let mut view = NodeView::default();
    let mut current_listed = false;
    let b64 = data_encoding::BASE64_NOPAD;
    let wanted: Vec<Vec<u8>> = fingerprints
        .iter()
        .filter_map(|f| data_encoding::HEXUPPER.decode(f.as_bytes()).ok())
        .collect();
    for line in ns.lines() {
        if let Some(rest) = line.strip_prefix("r ") {
            // r <nickname> <base64 identity> ...
            current_listed = rest
                .split(' ')
                .nth(1)
                .and_then(|id| b64.decode(id.as_bytes()).ok())
                .is_some_and(|id| wanted.contains(&id));
            if current_listed {
                view.listed += 1;
            }
        } else if let Some(flags) = line.strip_prefix("s ") {
            let flags: Vec<&str> = flags.split(' ').collect();
            if current_listed && REQUIRED_FLAGS.iter().all(|f| flags.contains(f)) {
                view.with_flags += 1;
            }
        }
    }
    view.microdescs = md
        .lines()
        .filter(|l| l.starts_with("ntor-onion-key "))
        .count();
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_counts_only_our_relays_and_their_flags() {
        // Identities are base64 (no padding) of the 20-byte fingerprints.
        let ours = "0".repeat(40);
        let theirs_b64 = "ERERERERERERERERERERERERERE";
        let ns = format!(
            "r a AAAAAAAAAAAAAAAAAAAAAAAAAAA 2024-01-01 00:00:00 127.0.0.1 1 0\n\
             s Fast Guard HSDir Running Valid\n\
             r b {theirs_b64} 2024-01-01 00:00:00 127.0.0.1 2 0\n\
             s Guard HSDir Running Valid\n"
        );
        let md = "onion-key\nntor-onion-key x\nntor-onion-key y\n";
        let view = parse_view(&ns, md, &[ours]);
        assert_eq!(
            view,
            NodeView {
                listed: 1,
                with_flags: 1,
                microdescs: 2
            }
        );
        assert!(view.is_ready(1));
        assert!(!view.is_ready(2));
    }
}
