//! Measurement helpers for the `putget_bench` example (not part of the stable API).
//!
//! [`store_write_rate`] measures the piece store on its own — the same redb tables and the
//! same group-commit writer the peer API uses, without HTTP, hashing or sealing — so a
//! benchmark can compare put/get throughput with the store's own durable write rate on the
//! same disk in the same run.

use crate::store::{PieceInfo, PieceWrite, Store};
use crate::writer::{self, Op};
use bytes::Bytes;
use kairos_host::StoreError;
use kairos_proto::PublicKey;
use rand::RngCore;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Writes `total` bytes as pieces of `piece_len` bytes into a fresh store in `dir`, with
/// `concurrency` stores in flight, each acknowledged only once durable. Returns bytes/s.
pub async fn store_write_rate(
    dir: &Path,
    total: u64,
    piece_len: usize,
    concurrency: usize,
) -> Result<f64, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let store = Store::open(dir, 32 << 20)?;
    let (writer, done) =
        writer::spawn(store, u64::MAX).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut payload = vec![0u8; piece_len];
    rand::thread_rng().fill_bytes(&mut payload);
    let payload = Bytes::from(payload);
    let count = total.div_ceil(piece_len as u64);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..count {
        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
        let mut hash = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut hash);
        let w = PieceWrite {
            hash,
            info: PieceInfo {
                release: u64::MAX / 2,
                stored_at: 0,
                uploader: PublicKey([0; 32]),
                block: 0,
                shard: 0,
                len: 0,
            },
            delete_at: u64::MAX / 2,
            data: payload.clone(),
        };
        let writer = writer.clone();
        tasks.spawn(async move {
            let r = writer.submit(Op::Put(w)).await;
            drop(permit);
            r
        });
        while let Some(r) = tasks.try_join_next() {
            r.map_err(|e| StoreError::Corrupt(e.to_string()))??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| StoreError::Corrupt(e.to_string()))??;
    }
    let secs = started.elapsed().as_secs_f64();
    writer.close().await;
    drop(writer);
    let _ = done.await;
    Ok((count * piece_len as u64) as f64 / secs)
}
