//! The single writer: one OS thread owns every write transaction and commits in batches.
//!
//! redb allows one write transaction at a time and every commit is an fsync, so writes queue
//! here; the thread takes everything queued (up to a bound), applies it in one transaction,
//! commits once, and only then answers each request and updates the in-memory node index
//! (group commit). Throughput therefore grows with load instead of being capped by fsyncs/s.
//!
//! Invariants: a caller is answered only after its change is durable; if a commit fails every
//! request of the batch gets the error and neither disk nor index changed; ops are applied in
//! arrival order.

use crate::error::StoreError;
use crate::nodes::{NodeEntry, NodeIndex};
use crate::store::{
    ManifestOutcome, ManifestWrite, NodeOutcome, NodeWrite, Store, SweepReport, Tables,
};
use kairos_proto::PublicKey;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// Stop adding requests to a batch past this many payload bytes.
const MAX_BATCH_BYTES: usize = 64 << 20;

/// A change to the store.
pub enum Op {
    Node(NodeWrite),
    Manifest(ManifestWrite),
    /// A federation page: its items and the new cursor, atomically.
    Pulled {
        sibling: PublicKey,
        epoch: u64,
        cursor: u64,
        nodes: Vec<NodeWrite>,
        manifests: Vec<ManifestWrite>,
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
            Op::Pulled {
                nodes, manifests, ..
            } => {
                nodes
                    .iter()
                    .map(|n| n.record.as_bytes().len())
                    .sum::<usize>()
                    + manifests.iter().map(|m| m.bytes.len()).sum::<usize>()
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
    Pulled {
        /// Indices (into the op's `nodes`) of the records that were newer and got stored.
        stored_nodes: Vec<usize>,
        manifests: usize,
        conflicts: usize,
    },
    Swept(SweepReport),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Handle to the writer thread. Cloneable; the thread stops when [`Writer::close`] is called
/// or every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Option<Job>>,
}

impl Writer {
    /// Starts the thread. The returned receiver resolves once the thread has exited (and
    /// dropped its database handle).
    pub fn spawn(
        store: Store,
        index: Arc<NodeIndex>,
        node_ttl: u64,
    ) -> std::io::Result<(Writer, oneshot::Receiver<()>)> {
        let (tx, rx) = mpsc::channel(4096);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("kairos-directory-writer".into())
            .spawn(move || {
                run(store, index, node_ttl, rx);
                let _ = done_tx.send(());
            })?;
        Ok((Writer { tx }, done_rx))
    }

    /// Queues `op` and waits until it is committed.
    pub async fn submit(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Some(Job { op, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Asks the thread to finish what is queued and exit.
    pub async fn close(&self) {
        let _ = self.tx.send(None).await;
    }
}

fn run(store: Store, index: Arc<NodeIndex>, node_ttl: u64, mut rx: mpsc::Receiver<Option<Job>>) {
    let mut closing = false;
    while !closing {
        let Some(Some(first)) = rx.blocking_recv() else {
            break;
        };
        let mut weight = first.op.weight();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && weight < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(Some(job)) => {
                    weight += job.op.weight();
                    batch.push(job);
                }
                Ok(None) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = batch.iter().map(|j| &j.op).collect();
        match apply(&store, &ops) {
            Ok(outcomes) => {
                for (job, out) in batch.into_iter().zip(outcomes) {
                    update_index(&index, &job.op, &out, node_ttl);
                    let _ = job.reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::error!("directory database write failed: {e}");
                let msg = e.to_string();
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Corrupt(format!("write failed: {msg}"))));
                }
            }
        }
    }
    // Anything still queued after a close is refused, not lost silently.
    rx.close();
    while let Ok(Some(job)) = rx.try_recv() {
        let _ = job.reply.send(Err(StoreError::Closed));
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
        Op::Pulled {
            sibling,
            epoch,
            cursor,
            nodes,
            manifests,
        } => {
            let (mut stored_nodes, mut m_new, mut conflicts) = (Vec::new(), 0, 0);
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
                }
            }
            t.set_cursor(sibling, *epoch, *cursor)?;
            Outcome::Pulled {
                stored_nodes,
                manifests: m_new,
                conflicts,
            }
        }
        Op::Sweep {
            now,
            node_ttl,
            floor_horizon,
        } => Outcome::Swept(t.sweep(*now, *node_ttl, *floor_horizon)?),
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
