//! The group-commit writer: one OS thread owns every write transaction and commits in batches.
//!
//! redb allows one write transaction at a time and every commit is an fsync, so writes queue
//! here; the thread takes everything queued (up to [`BatchLimits`]), hands the batch to the
//! store's [`Apply::apply`], which applies it in one transaction and commits once, and only
//! then answers each caller (group commit). Concurrent writers therefore share fsyncs, and
//! throughput grows with load instead of being capped by fsyncs per second.
//!
//! Invariants: a caller is answered only after its change is durable; if a batch fails every
//! caller of the batch gets the error and (since `apply` commits all or nothing) nothing of
//! the batch is stored; ops are applied in arrival order; [`Apply::committed`] runs for each op
//! after the commit and before its caller hears back, so in-memory indexes never run ahead of
//! the disk; after [`Writer::close`] everything queued before it is still applied, anything
//! after it is refused with [`StoreError::Closed`] — never dropped silently.

use crate::db::StoreError;
use tokio::sync::{mpsc, oneshot};

/// A store's side of the writer: how to apply a batch of its operations.
pub trait Apply: Send + 'static {
    /// One change to the store.
    type Op: Send + 'static;
    /// What one change did.
    type Outcome: Send + 'static;

    /// Applies `ops` in order in one write transaction and commits it, or returns an error
    /// having committed nothing. Returns one outcome per op.
    fn apply(&mut self, ops: &[&Self::Op]) -> Result<Vec<Self::Outcome>, StoreError>;

    /// Runs after a successful commit, once per op, before its caller is answered.
    fn committed(&mut self, _op: &Self::Op, _outcome: &Self::Outcome) {}

    /// Payload bytes of `op`, counted against [`BatchLimits::max_bytes`].
    fn weight(_op: &Self::Op) -> usize {
        0
    }
}

/// The bounds of one batch and of the queue.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    /// Most ops committed in one transaction.
    pub max_ops: usize,
    /// Stop adding ops to a batch past this many payload bytes.
    pub max_bytes: usize,
    /// Ops that may wait in the queue; further submitters wait for room.
    pub queue: usize,
}

struct Job<A: Apply> {
    op: A::Op,
    reply: oneshot::Sender<Result<A::Outcome, StoreError>>,
}

/// Handle to the writer thread. Cloneable; the thread stops when [`Writer::close`] is called
/// or every handle is dropped.
pub struct Writer<A: Apply> {
    tx: mpsc::Sender<Option<Job<A>>>,
}

impl<A: Apply> Clone for Writer<A> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
        }
    }
}

impl<A: Apply> Writer<A> {
    /// Starts the thread (named `name`). The returned receiver resolves once the thread has
    /// exited and dropped `store` (and with it, typically, the database handle).
    pub fn spawn(
        name: &str,
        store: A,
        limits: BatchLimits,
    ) -> std::io::Result<(Writer<A>, oneshot::Receiver<()>)> {
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                run(store, limits, rx);
                let _ = done_tx.send(());
            })?;
        Ok((Writer { tx }, done_rx))
    }

    /// Queues `op` and waits until it is committed.
    pub async fn submit(&self, op: A::Op) -> Result<A::Outcome, StoreError> {
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

fn run<A: Apply>(mut store: A, limits: BatchLimits, mut rx: mpsc::Receiver<Option<Job<A>>>) {
    let mut closing = false;
    while !closing {
        let Some(Some(first)) = rx.blocking_recv() else {
            break;
        };
        let batch = gather(first, &limits, &mut rx, &mut closing);
        commit(&mut store, batch);
    }
    rx.close();
    while let Ok(Some(job)) = rx.try_recv() {
        let _ = job.reply.send(Err(StoreError::Closed));
    }
}

/// Takes what is queued behind `first`, up to the limits; a close request ends the batch.
fn gather<A: Apply>(
    first: Job<A>,
    limits: &BatchLimits,
    rx: &mut mpsc::Receiver<Option<Job<A>>>,
    closing: &mut bool,
) -> Vec<Job<A>> {
    let mut bytes = A::weight(&first.op);
    let mut batch = vec![first];
    while batch.len() < limits.max_ops && bytes < limits.max_bytes {
        match rx.try_recv() {
            Ok(Some(job)) => {
                bytes += A::weight(&job.op);
                batch.push(job);
            }
            Ok(None) => {
                *closing = true;
                break;
            }
            Err(_) => break,
        }
    }
    batch
}

fn commit<A: Apply>(store: &mut A, batch: Vec<Job<A>>) {
    let ops: Vec<&A::Op> = batch.iter().map(|j| &j.op).collect();
    match store.apply(&ops) {
        Ok(outcomes) => {
            for (job, out) in batch.into_iter().zip(outcomes) {
                store.committed(&job.op, &out);
                let _ = job.reply.send(Ok(out));
            }
        }
        Err(e) => {
            tracing::error!("database write failed: {e}");
            let msg = e.to_string();
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(StoreError::Corrupt(format!("write failed: {msg}"))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records batches; fails any batch holding op 13.
    struct Log(Arc<Mutex<Vec<Vec<u32>>>>);

    impl Apply for Log {
        type Op = u32;
        type Outcome = u32;
        fn apply(&mut self, ops: &[&u32]) -> Result<Vec<u32>, StoreError> {
            if ops.iter().any(|o| **o == 13) {
                return Err(StoreError::Corrupt("unlucky".into()));
            }
            self.0
                .lock()
                .unwrap()
                .push(ops.iter().map(|o| **o).collect());
            Ok(ops.iter().map(|o| **o * 2).collect())
        }
    }

    const LIMITS: BatchLimits = BatchLimits {
        max_ops: 4,
        max_bytes: usize::MAX,
        queue: 64,
    };

    #[tokio::test]
    async fn answers_in_order_batches_and_refuses_after_close() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (w, done) = Writer::spawn("test-writer", Log(log.clone()), LIMITS).unwrap();
        let tasks: Vec<_> = (0..10u32)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { (i, w.submit(i).await) })
            })
            .collect();
        for t in tasks {
            let (i, answer) = t.await.unwrap();
            assert_eq!(answer.unwrap(), i * 2);
        }
        let batches = log.lock().unwrap().clone();
        assert!(batches.iter().all(|b| b.len() <= LIMITS.max_ops));
        let mut all = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // A failing batch answers its callers with the error and stores nothing.
        assert!(matches!(w.submit(13).await, Err(StoreError::Corrupt(_))));
        assert_eq!(log.lock().unwrap().concat().len(), 10);
        w.close().await;
        done.await.unwrap();
        assert!(matches!(w.submit(1).await, Err(StoreError::Closed)));
    }
}
