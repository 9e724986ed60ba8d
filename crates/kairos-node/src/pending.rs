//! Pending pieces: stored, but not yet known to be referenced by a published placement.
//!
//! Anyone can sign a store with a throwaway key, so a holder keeps a new piece only
//! provisionally. Once the uploader has published the file, it asks each holder to commit
//! (`POST /v1/commit/{file id}`, [`crate::peer_commit`]); the holder then asks its own
//! directories which pieces of that file the newest placement puts on it
//! (`GET /v1/placements/{id}/held`) and keeps exactly those. Pieces of an uploader key that
//! stored nothing for `pending_window` and were never committed are dropped: junk, and what an
//! interrupted put (crash, kill -9) left behind.
//!
//! Invariants: a piece is pending from its store until committed or deleted; the window runs
//! from the *newest* store of the same uploader key, so a long upload's first pieces are not
//! dropped while it is still storing; a drop goes through the writer like any delete and
//! touches at most a batch of pieces per transaction.

use crate::store::{PieceInfo, Store, SweepReport, PENDING};
use kairos_host::StoreError;
use kairos_proto::PublicKey;
use kairos_seal::PieceHash;
use redb::{ReadableTable, WriteTransaction};

/// Most pieces one drop transaction deletes.
const DROP_BATCH: usize = 1024;

/// Commits the pieces `hashes` stored by `uploader`; returns how many were pending.
pub(crate) fn commit(
    txn: &WriteTransaction,
    uploader: &PublicKey,
    hashes: &[PieceHash],
) -> Result<usize, StoreError> {
    let mut pending = txn.open_table(PENDING)?;
    let mut committed = 0;
    for hash in hashes {
        if pending.remove((uploader.0, *hash))?.is_some() {
            committed += 1;
        }
    }
    Ok(committed)
}

/// Deletes up to a batch of pending pieces whose uploader key stored nothing since
/// `now - window`. `retention` finds their expiry rows ([`Store::remove`]).
pub(crate) fn drop_stale(
    txn: &WriteTransaction,
    (now, window, retention): (u64, u64, u64),
    used: &mut u64,
    count: &mut u64,
) -> Result<SweepReport, StoreError> {
    let cutoff = now.saturating_sub(window);
    // Rows are ordered by uploader: one pass finds each uploader's newest store.
    let mut stale: Vec<([u8; 32], PieceHash)> = Vec::new();
    let mut more = false;
    {
        let pending = txn.open_table(PENDING)?;
        let mut group: Vec<([u8; 32], PieceHash)> = Vec::new();
        let mut current: Option<[u8; 32]> = None;
        let mut newest = 0;
        let mut close = |group: &mut Vec<([u8; 32], PieceHash)>, newest: u64| {
            if newest <= cutoff {
                stale.append(group);
            }
            group.clear();
        };
        for row in pending.iter()? {
            let (key, stored_at) = row?;
            let ((uploader, hash), stored_at) = (key.value(), stored_at.value());
            if current != Some(uploader) {
                close(&mut group, newest);
                current = Some(uploader);
                newest = 0;
            }
            newest = newest.max(stored_at);
            group.push((uploader, hash));
        }
        close(&mut group, newest);
    }
    if stale.len() > DROP_BATCH {
        stale.truncate(DROP_BATCH);
        more = true;
    }
    let mut report = SweepReport {
        more,
        ..SweepReport::default()
    };
    for (uploader, hash) in stale {
        let Some(found): Option<PieceInfo> = Store::info_in(txn, &hash)? else {
            txn.open_table(PENDING)?.remove((uploader, hash))?;
            continue;
        };
        Store::remove(txn, &hash, &found, retention, (used, count))?;
        report.pieces += 1;
        report.bytes += found.len;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PieceWrite, PutOutcome};
    use bytes::Bytes;

    fn write(hash: u8, uploader: u8, stored_at: u64) -> PieceWrite {
        PieceWrite {
            hash: [hash; 32],
            info: PieceInfo {
                release: 1000,
                stored_at,
                uploader: PublicKey([uploader; 32]),
                block: 0,
                shard: 0,
                len: 0,
            },
            delete_at: 1010,
            data: Bytes::from(vec![hash; 10]),
        }
    }

    fn apply<T>(
        store: &Store,
        f: impl FnOnce(&WriteTransaction, &mut u64, &mut u64) -> Result<T, StoreError>,
    ) -> T {
        let txn = store.begin_write().unwrap();
        let (mut used, mut count) = (store.bytes_used(), store.piece_count());
        let out = f(&txn, &mut used, &mut count).unwrap();
        Store::save_counters(&txn, used, count).unwrap();
        txn.commit().unwrap();
        store.set_counters(used, count);
        out
    }

    #[test]
    fn uncommitted_pieces_of_an_idle_uploader_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        // Uploader 1: two pieces, one committed. Uploader 2: an old piece and a fresh one.
        for w in [
            write(1, 1, 100),
            write(2, 1, 110),
            write(3, 2, 100),
            write(4, 2, 190),
        ] {
            let out = apply(&store, |t, u, c| Store::put(t, &w, 1 << 20, u, c));
            assert_eq!(out, PutOutcome::Stored);
        }
        let n = apply(&store, |t, _, _| {
            commit(t, &PublicKey([1; 32]), &[[1; 32], [9; 32]])
        });
        assert_eq!(n, 1);
        // At 200 with a window of 60: uploader 1's newest store (110) is past it, uploader 2's
        // (190) is not, so its old piece stays too.
        let rep = apply(&store, |t, u, c| drop_stale(t, (200, 60, 10), u, c));
        assert_eq!((rep.pieces, rep.bytes, rep.more), (1, 10, false));
        assert!(store.info(&[1; 32]).unwrap().is_some(), "committed stays");
        assert!(
            store.info(&[2; 32]).unwrap().is_none(),
            "stale pending dropped"
        );
        assert!(store.info(&[3; 32]).unwrap().is_some());
        assert_eq!((store.piece_count(), store.bytes_used()), (3, 30));
        let rep = apply(&store, |t, u, c| drop_stale(t, (251, 60, 10), u, c));
        assert_eq!(rep.pieces, 2);
        assert_eq!(store.piece_count(), 1);
        // Deleting or sweeping a piece clears its pending row: nothing left to drop.
        let rep = apply(&store, |t, u, c| drop_stale(t, (10_000, 60, 10), u, c));
        assert_eq!(rep.pieces, 0);
    }
}
