//! The node's side of the group-commit writer ([`kairos_host::writer`]): which changes the
//! piece store takes and how a batch of them is applied in one transaction.
//!
//! Invariants (on top of the host writer's: answered only once durable, all or nothing per
//! batch, arrival order): the quota is checked inside the transaction against the counters
//! as of that transaction, so concurrent stores can never together exceed it; the in-memory
//! counters move only after the commit.

use crate::store::{DeleteOutcome, PieceWrite, PutOutcome, Store, SweepReport};
use kairos_host::writer::{Apply, BatchLimits};
use kairos_host::StoreError;
use tokio::sync::oneshot;

/// Most requests committed in one transaction, and payload bytes per batch.
const LIMITS: BatchLimits = BatchLimits {
    max_ops: 64,
    max_bytes: 16 << 20,
    queue: 1024,
};

/// A change to the store.
pub enum Op {
    Put(PieceWrite),
    Sweep {
        now: u64,
    },
    /// One of this node's uploads, for its local history.
    RecordUpload(Box<crate::wire::Upload>),
    /// Pieces a published placement references: no longer pending ([`crate::pending`]).
    Commit {
        uploader: kairos_proto::PublicKey,
        hashes: Vec<kairos_seal::PieceHash>,
    },
    /// Drops pending pieces whose uploader stored nothing for `window` seconds.
    DropPending {
        now: u64,
        window: u64,
        retention: u64,
    },
    /// A piece its uploader takes back before release.
    Delete {
        hash: kairos_seal::PieceHash,
        signer: kairos_proto::PublicKey,
        now: u64,
        retention: u64,
    },
}

/// The result of one [`Op`].
#[derive(Debug)]
pub enum Outcome {
    Put(PutOutcome),
    Swept(SweepReport),
    Recorded,
    Deleted(DeleteOutcome),
    /// How many of the pieces were pending.
    Committed(usize),
}

/// The node's writer handle.
pub type Writer = kairos_host::Writer<Pieces>;

/// The piece store as the writer thread sees it.
pub struct Pieces {
    store: Store,
    quota: u64,
}

/// Starts the writer thread over `store`; the receiver resolves once it has exited and
/// dropped its database handle.
pub fn spawn(store: Store, quota: u64) -> std::io::Result<(Writer, oneshot::Receiver<()>)> {
    kairos_host::Writer::spawn("kairos-node-writer", Pieces { store, quota }, LIMITS)
}

/// The writer's side of the store without its thread (the model test applies batches itself).
#[cfg(test)]
pub(crate) fn pieces(store: Store, quota: u64) -> Pieces {
    Pieces { store, quota }
}

impl Apply for Pieces {
    type Op = Op;
    type Outcome = Outcome;

    fn weight(op: &Op) -> usize {
        match op {
            Op::Put(w) => w.data.len(),
            _ => 0,
        }
    }

    fn apply(&mut self, ops: &[&Op]) -> Result<Vec<Outcome>, StoreError> {
        let store = &self.store;
        let txn = store.begin_write()?;
        let (mut used, mut count) = (store.bytes_used(), store.piece_count());
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                Op::Put(w) => Outcome::Put(Store::put(&txn, w, self.quota, &mut used, &mut count)?),
                Op::Sweep { now } => {
                    Outcome::Swept(Store::sweep(&txn, *now, &mut used, &mut count)?)
                }
                Op::Commit { uploader, hashes } => {
                    Outcome::Committed(crate::pending::commit(&txn, uploader, hashes)?)
                }
                Op::DropPending {
                    now,
                    window,
                    retention,
                } => Outcome::Swept(crate::pending::drop_stale(
                    &txn,
                    (*now, *window, *retention),
                    &mut used,
                    &mut count,
                )?),
                Op::RecordUpload(u) => {
                    crate::history::record(&txn, u)?;
                    Outcome::Recorded
                }
                Op::Delete {
                    hash,
                    signer,
                    now,
                    retention,
                } => Outcome::Deleted(Store::delete(
                    &txn,
                    hash,
                    signer,
                    (*now, *retention),
                    &mut used,
                    &mut count,
                )?),
            });
        }
        Store::save_counters(&txn, used, count)?;
        txn.commit()?;
        store.set_counters(used, count);
        Ok(out)
    }
}
