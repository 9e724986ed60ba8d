//! The directory's side of the group-commit writer ([`kairos_host::writer`]): which changes
//! the store takes, how a batch of them is applied in one transaction, and how the in-memory
//! node index follows each commit.
//!
//! Invariants (on top of the host writer's: answered only once durable, all or nothing per
//! batch, arrival order): the node index changes only after the commit that made the change
//! durable, and exactly as the `nodes` table did, so it never runs ahead of the disk.

use crate::nodes::{NodeEntry, NodeIndex};
use crate::store::{
    BeaconOutcome, BeaconWrite, ManifestOutcome, ManifestWrite, NodeOutcome, NodeWrite,
    PlacementOutcome, PlacementWrite, Store, SweepReport, Tables, TombstoneOutcome, TombstoneWrite,
};
use kairos_host::writer::{Apply, BatchLimits};
use kairos_host::StoreError;
use kairos_proto::PublicKey;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most requests committed in one transaction, payload bytes per batch, and queued requests.
const LIMITS: BatchLimits = BatchLimits {
    max_ops: 512,
    max_bytes: 64 << 20,
    queue: 4096,
};

/// A change to the store.
pub enum Op {
    Node(NodeWrite),
    Manifest(ManifestWrite),
    Placement(PlacementWrite),
    Tombstone(TombstoneWrite),
    /// A beacon verified by the relay.
    Beacon(BeaconWrite),
    /// A federation page: its items and the new cursor, atomically (manifests before
    /// placements, so a placement can follow its manifest in one page).
    Pulled {
        sibling: PublicKey,
        epoch: u64,
        cursor: u64,
        nodes: Vec<NodeWrite>,
        manifests: Vec<ManifestWrite>,
        placements: Vec<PlacementWrite>,
        tombstones: Vec<TombstoneWrite>,
    },
    Sweep {
        now: u64,
        node_ttl: u64,
        floor_horizon: u64,
    },
}

impl Op {
    fn weight(&self) -> usize {
        match self {
            Op::Node(n) => n.record.as_bytes().len(),
            Op::Manifest(m) => m.bytes.len(),
            Op::Placement(p) => p.bytes.len(),
            Op::Tombstone(t) => t.bytes.len(),
            Op::Beacon(b) => b.signature.len(),
            Op::Pulled {
                nodes,
                manifests,
                placements,
                tombstones,
                ..
            } => {
                nodes
                    .iter()
                    .map(|n| n.record.as_bytes().len())
                    .sum::<usize>()
                    + manifests.iter().map(|m| m.bytes.len()).sum::<usize>()
                    + placements.iter().map(|p| p.bytes.len()).sum::<usize>()
                    + tombstones.iter().map(|t| t.bytes.len()).sum::<usize>()
            }
            Op::Sweep { .. } => 0,
        }
    }
}

/// The result of one [`Op`].
#[derive(Debug)]
pub enum Outcome {
    Node(NodeOutcome),
    Manifest(ManifestOutcome),
    Placement(PlacementOutcome),
    Tombstone(TombstoneOutcome),
    Beacon(BeaconOutcome),
    Pulled {
        /// Indices (into the op's `nodes`) of the records that were newer and got stored.
        stored_nodes: Vec<usize>,
        manifests: usize,
        /// Placements stored (new, or newer than the one held).
        placements: usize,
        conflicts: usize,
        /// Manifests and placements refused for the storage quota.
        full: usize,
    },
    Swept(SweepReport),
}

/// The directory's writer handle.
pub type Writer = kairos_host::Writer<Directory>;

/// The directory's store as the writer thread sees it: the tables, and the node index that
/// follows them.
pub struct Directory {
    store: Store,
    index: Arc<NodeIndex>,
    node_ttl: u64,
}

/// Starts the writer thread. The returned receiver resolves once the thread has exited (and
/// dropped its database handle).
pub fn spawn(
    store: Store,
    index: Arc<NodeIndex>,
    node_ttl: u64,
) -> std::io::Result<(Writer, oneshot::Receiver<()>)> {
    let directory = Directory {
        store,
        index,
        node_ttl,
    };
    kairos_host::Writer::spawn("kairos-directory-writer", directory, LIMITS)
}

impl Apply for Directory {
    type Op = Op;
    type Outcome = Outcome;

    fn weight(op: &Op) -> usize {
        op.weight()
    }

    fn apply(&mut self, ops: &[&Op]) -> Result<Vec<Outcome>, StoreError> {
        apply(&self.store, ops)
    }

    fn committed(&mut self, op: &Op, outcome: &Outcome) {
        update_index(&self.index, op, outcome, self.node_ttl);
    }
}

fn apply(store: &Store, ops: &[&Op]) -> Result<Vec<Outcome>, StoreError> {
    let txn = store.begin_write()?;
    let mut out = Vec::with_capacity(ops.len());
    {
        let mut t = Tables::open(&txn)?;
        for op in ops {
            out.push(apply_one(&mut t, op)?);
        }
        t.finish()?;
    }
    txn.commit()?;
    Ok(out)
}

fn apply_one(t: &mut Tables, op: &Op) -> Result<Outcome, StoreError> {
    Ok(match op {
        Op::Node(n) => Outcome::Node(t.put_node(n)?),
        Op::Manifest(m) => Outcome::Manifest(t.put_manifest(m)?),
        Op::Placement(p) => Outcome::Placement(t.put_placement(p)?),
        Op::Tombstone(w) => Outcome::Tombstone(t.put_tombstone(w)?),
        Op::Beacon(b) => Outcome::Beacon(t.put_beacon(b)?),
        Op::Pulled {
            sibling,
            epoch,
            cursor,
            nodes,
            manifests,
            placements,
            tombstones,
        } => {
            let out = apply_pulled(t, nodes, manifests, placements, tombstones)?;
            t.set_cursor(sibling, *epoch, *cursor)?;
            out
        }
        Op::Sweep {
            now,
            node_ttl,
            floor_horizon,
        } => Outcome::Swept(t.sweep(*now, *node_ttl, *floor_horizon)?),
    })
}

/// Stores a pulled page's items: nodes, then manifests, then placements.
fn apply_pulled(
    t: &mut Tables,
    nodes: &[NodeWrite],
    manifests: &[ManifestWrite],
    placements: &[PlacementWrite],
    tombstones: &[TombstoneWrite],
) -> Result<Outcome, StoreError> {
    let (mut stored_nodes, mut m_new, mut p_new, mut conflicts, mut full) =
        (Vec::new(), 0, 0, 0, 0);
    for (i, n) in nodes.iter().enumerate() {
        if t.put_node(n)? == NodeOutcome::Stored {
            stored_nodes.push(i);
        }
    }
    for m in manifests {
        match t.put_manifest(m)? {
            ManifestOutcome::Created => m_new += 1,
            ManifestOutcome::Existing => {}
            ManifestOutcome::Conflict => conflicts += 1,
            ManifestOutcome::Full { .. } => full += 1,
        }
    }
    for p in placements {
        match t.put_placement(p)? {
            PlacementOutcome::Stored => p_new += 1,
            PlacementOutcome::Full { .. } => full += 1,
            // Older than held, or its manifest was not stored here: nothing to do.
            PlacementOutcome::Existing
            | PlacementOutcome::Stale { .. }
            | PlacementOutcome::UnknownManifest => {}
        }
    }
    for w in tombstones {
        // Unknown here (expired, never relayed): nothing to revoke.
        t.put_tombstone(w)?;
    }
    Ok(Outcome::Pulled {
        stored_nodes,
        manifests: m_new,
        placements: p_new,
        conflicts,
        full,
    })
}

fn update_index(index: &NodeIndex, op: &Op, out: &Outcome, node_ttl: u64) {
    match (op, out) {
        (Op::Node(n), Outcome::Node(NodeOutcome::Stored)) => {
            index.upsert(NodeEntry::new(&n.record, node_ttl));
        }
        (Op::Pulled { nodes, .. }, Outcome::Pulled { stored_nodes, .. }) => {
            for &i in stored_nodes {
                index.upsert(NodeEntry::new(&nodes[i].record, node_ttl));
            }
        }
        (Op::Sweep { .. }, Outcome::Swept(rep)) => {
            for (key, ts) in &rep.nodes {
                index.remove(key, *ts);
            }
        }
        _ => {}
    }
}
