//! Retention: pieces are deleted `retention` after their release time; pending pieces no
//! placement references are dropped after `pending_window` ([`crate::pending`]).
//!
//! Invariant: each piece's delete time (release + retention, fixed when it was stored) is
//! indexed, so a sweep touches only expired pieces, in bounded batches, through the writer
//! (the same group commit as stores).

use crate::state::Node;
use crate::writer::{Op, Outcome};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Sweeps once now and then every `sweep_interval` until `stop`.
pub async fn sweep_loop(node: Arc<Node>, stop: CancellationToken) {
    loop {
        sweep_now(&node).await;
        drop_pending(&node).await;
        tokio::select! {
            _ = tokio::time::sleep(node.cfg.sweep_interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Deletes every piece whose delete time has passed. Returns how many were deleted.
pub async fn sweep_now(node: &Node) -> u64 {
    in_batches(node, "retention: deleted", || Op::Sweep { now: node.now() }).await
}

/// Drops pending pieces whose uploader stored nothing for `pending_window` and never committed
/// them. Returns how many were dropped.
pub async fn drop_pending(node: &Node) -> u64 {
    let op = || Op::DropPending {
        now: node.now(),
        window: node.cfg.pending_window.as_secs(),
        retention: node.cfg.retention.as_secs(),
    };
    in_batches(
        node,
        "dropped as no published placement references them:",
        op,
    )
    .await
}

/// Submits `op()` until a batch reports nothing more to delete; logs what went, as `what`.
async fn in_batches(node: &Node, what: &str, op: impl Fn() -> Op) -> u64 {
    let mut total = 0;
    loop {
        match node.writer.submit(op()).await {
            Ok(Outcome::Swept(rep)) => {
                total += rep.pieces;
                if rep.pieces > 0 {
                    tracing::info!("{what} {} pieces ({} bytes)", rep.pieces, rep.bytes);
                }
                if !rep.more {
                    return total;
                }
            }
            Ok(_) => return total,
            Err(e) => {
                tracing::warn!("{what} … failed: {e}");
                return total;
            }
        }
    }
}
