//! The single writer: one OS thread owns every write transaction and commits in batches.
//!
//! redb allows one write transaction at a time and every commit is an fsync, so stores queue
//! here; the thread takes everything queued (up to a bound), applies it in one transaction,
//! commits once, and only then answers each request (group commit). Concurrent uploads
//! therefore share fsyncs, and throughput approaches the disk's sequential write rate.
//!
//! Invariants: a caller is answered only after its piece is durable; if a commit fails every
//! request of the batch gets the error and nothing of the batch is stored; ops are applied in
//! arrival order, and the quota is checked inside the transaction, so concurrent stores can
//! never together exceed it.

use crate::error::StoreError;
use crate::store::{PieceWrite, PutOutcome, Store, SweepReport};
use tokio::sync::{mpsc, oneshot};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 64;
/// Stop adding requests to a batch past this many payload bytes.
const MAX_BATCH_BYTES: usize = 64 << 20;

/// A change to the store.
pub enum Op {
    Put(PieceWrite),
    Sweep { now: u64 },
}

/// The result of one [`Op`].
#[derive(Debug)]
pub enum Outcome {
    Put(PutOutcome),
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
    /// Starts the thread. The returned receiver resolves once the thread has exited and
    /// dropped its database handle.
    pub fn spawn(store: Store, quota: u64) -> std::io::Result<(Writer, oneshot::Receiver<()>)> {
        let (tx, rx) = mpsc::channel(1024);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("kairos-node-writer".into())
            .spawn(move || {
                run(store, quota, rx);
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

fn weight(op: &Op) -> usize {
    match op {
        Op::Put(w) => w.data.len(),
        Op::Sweep { .. } => 0,
    }
}

fn run(store: Store, quota: u64, mut rx: mpsc::Receiver<Option<Job>>) {
    let mut closing = false;
    while !closing {
        let Some(Some(first)) = rx.blocking_recv() else {
            break;
        };
        let mut bytes = weight(&first.op);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(Some(job)) => {
                    bytes += weight(&job.op);
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
        match apply(&store, quota, &ops) {
            Ok(outcomes) => {
                for (job, out) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::error!("piece database write failed: {e}");
                let msg = e.to_string();
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Corrupt(format!("write failed: {msg}"))));
                }
            }
        }
    }
    rx.close();
    while let Ok(Some(job)) = rx.try_recv() {
        let _ = job.reply.send(Err(StoreError::Closed));
    }
}

fn apply(store: &Store, quota: u64, ops: &[&Op]) -> Result<Vec<Outcome>, StoreError> {
    let txn = store.begin_write()?;
    let (mut used, mut count) = (store.bytes_used(), store.piece_count());
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            Op::Put(w) => Outcome::Put(Store::put(&txn, w, quota, &mut used, &mut count)?),
            Op::Sweep { now } => Outcome::Swept(Store::sweep(&txn, *now, &mut used, &mut count)?),
        });
    }
    Store::save_counters(&txn, used, count)?;
    txn.commit()?;
    store.set_counters(used, count);
    Ok(out)
}
