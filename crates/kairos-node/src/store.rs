//! The node's durable piece store: one redb file, `home/node.redb`.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64: `schema`, `bytes_used`, `pieces` |
//! | `pieces` | piece hash | `share ‖ shard` |
//! | `info` | piece hash | (release, stored at, uploader key, block, shard index, data length) |
//! | `expiry` | (delete at, piece hash) | () |
//! | `pending` | (uploader key, piece hash) | stored at: pieces no published placement references yet ([`crate::pending`]) |
//! | `uploads` | file id | this node's own upload, JSON ([`crate::history`]) |
//!
//! Piece bytes live in redb itself: a default shard of 1 MiB − 4 KiB plus its share and the
//! key fit one 1 MiB run of pages, and batched commits ([`crate::writer`]) write them at the
//! disk's sequential rate with one fsync per batch (measured: ≥ the rate of fsync'd files).
//!
//! # Invariants
//!
//! * `pieces`, `info` and `expiry` always hold the same set of hashes; `pending` a subset of
//!   them (rows of pieces stored before it existed are simply absent: committed); `bytes_used` is the sum
//!   of `info` data lengths and `pieces` their count. Every change happens in one write
//!   transaction, so a crash leaves either all of a piece or nothing.
//! * A stored piece is immutable: its bytes hash to its key (checked before it gets here) and a
//!   second store can neither change its bytes nor its release time.
//! * Only the writer thread writes; every commit is durable (fsync) before anyone is told.
//! * Keys are 32-byte hashes from parsed input; nothing here builds a path from input.

use crate::piece::{PieceBody, HEADER_LEN};
use bytes::Bytes;
use kairos_host::db::{meta_get, open_db, DbOptions, META};
use kairos_host::StoreError;
use kairos_proto::PublicKey;
use kairos_seal::PieceHash;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// File name of the database inside the home directory.
pub const DB_FILE: &str = "node.redb";
const SCHEMA: u64 = 1;

const PIECES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("pieces");
/// (release, stored at, uploader, block, shard, data length)
type InfoValue = (u64, u64, [u8; 32], u32, u8, u64);
const INFO: TableDefinition<[u8; 32], InfoValue> = TableDefinition::new("info");
const EXPIRY: TableDefinition<(u64, [u8; 32]), ()> = TableDefinition::new("expiry");
/// (uploader key, piece hash) → stored at: pieces not committed yet ([`crate::pending`]).
pub(crate) const PENDING: TableDefinition<([u8; 32], [u8; 32]), u64> =
    TableDefinition::new("pending");

/// Most pieces one sweep transaction deletes.
const SWEEP_BATCH: usize = 1024;

/// What the store knows about a piece besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceInfo {
    pub release: u64,
    pub stored_at: u64,
    pub uploader: PublicKey,
    pub block: u32,
    pub shard: u8,
    /// Bytes of `share ‖ shard`.
    pub len: u64,
}

impl PieceInfo {
    fn from_value(v: InfoValue) -> Self {
        PieceInfo {
            release: v.0,
            stored_at: v.1,
            uploader: PublicKey(v.2),
            block: v.3,
            shard: v.4,
            len: v.5,
        }
    }
    fn to_value(self) -> InfoValue {
        (
            self.release,
            self.stored_at,
            self.uploader.0,
            self.block,
            self.shard,
            self.len,
        )
    }
}

/// A verified piece to store.
#[derive(Clone, Debug)]
pub struct PieceWrite {
    pub hash: PieceHash,
    pub info: PieceInfo,
    /// Delete after this Unix time (release + retention).
    pub delete_at: u64,
    /// `share ‖ shard`.
    pub data: Bytes,
}

/// A stored piece's metadata and, once released, its peer-API body.
pub type Stored = (PieceInfo, Option<Vec<u8>>);

/// What storing a piece did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// The same piece with the same release time was already stored (idempotent).
    Existing,
    /// The piece is stored with another release time; nothing changed.
    Conflict {
        release: u64,
    },
    /// Storing it would exceed the quota; nothing changed.
    QuotaFull {
        used: u64,
        quota: u64,
    },
}

/// What a delete by its uploader did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Not stored here (already deleted, expired, or never stored): nothing to do.
    Missing,
    /// Stored by another key; nothing changed.
    NotUploader,
    /// The release time has passed: a released piece stays (others may be downloading it).
    Released {
        release: u64,
    },
}

/// What a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub pieces: u64,
    pub bytes: u64,
    /// More expired pieces remain (run again).
    pub more: bool,
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    bytes_used: Arc<AtomicU64>,
    pieces: Arc<AtomicU64>,
}

impl Store {
    /// Opens (or creates) `home/node.redb`.
    pub fn open(home: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        let opts = DbOptions {
            schema: SCHEMA,
            cache_bytes: Some(cache_bytes),
        };
        let (db, (bytes, count)) = open_db(&home.join(DB_FILE), opts, |txn| {
            txn.open_table(PIECES)?;
            txn.open_table(INFO)?;
            txn.open_table(EXPIRY)?;
            txn.open_table(PENDING)?;
            txn.open_table(crate::history::UPLOADS)?;
            let meta = txn.open_table(META)?;
            Ok((meta_get(&meta, "bytes_used")?, meta_get(&meta, "pieces")?))
        })?;
        Ok(Store {
            db: Arc::new(db),
            bytes_used: Arc::new(AtomicU64::new(bytes)),
            pieces: Arc::new(AtomicU64::new(count)),
        })
    }

    /// Bytes of pieces held (as of the last commit).
    pub fn bytes_used(&self) -> u64 {
        self.bytes_used.load(Ordering::SeqCst)
    }

    /// Number of pieces held (as of the last commit).
    pub fn piece_count(&self) -> u64 {
        self.pieces.load(Ordering::SeqCst)
    }

    /// The piece's metadata, if stored.
    #[cfg(test)]
    pub fn info(&self, hash: &PieceHash) -> Result<Option<PieceInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let info = txn.open_table(INFO)?;
        Ok(info.get(hash)?.map(|v| PieceInfo::from_value(v.value())))
    }

    /// The piece's metadata and its peer-API body (header ‖ share ‖ shard, see
    /// [`crate::piece`]), if stored — but the body only if `release` has passed by `now` (so
    /// locked bytes are never even read into memory).
    pub fn read(&self, hash: &PieceHash, now: u64) -> Result<Option<Stored>, StoreError> {
        let txn = self.db.begin_read()?;
        let info = txn.open_table(INFO)?;
        let Some(info) = info.get(hash)?.map(|v| PieceInfo::from_value(v.value())) else {
            return Ok(None);
        };
        if now < info.release {
            return Ok(Some((info, None)));
        }
        let pieces = txn.open_table(PIECES)?;
        let guard = pieces
            .get(hash)?
            .ok_or_else(|| StoreError::Corrupt("piece metadata without piece bytes".into()))?;
        let data = guard.value();
        let mut body = Vec::with_capacity(HEADER_LEN + data.len());
        PieceBody::encode_header(&mut body, info.release, info.block, info.shard);
        body.extend_from_slice(data);
        Ok(Some((info, Some(body))))
    }

    /// The piece's metadata and its stored `share ‖ shard`, whatever its release time: only for
    /// answers to the key that stored it (audits and repair fetches, [`crate::peer_audit`]),
    /// which never give out the share.
    pub fn read_data(&self, hash: &PieceHash) -> Result<Option<(PieceInfo, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let info = txn.open_table(INFO)?;
        let Some(info) = info.get(hash)?.map(|v| PieceInfo::from_value(v.value())) else {
            return Ok(None);
        };
        let pieces = txn.open_table(PIECES)?;
        let guard = pieces
            .get(hash)?
            .ok_or_else(|| StoreError::Corrupt("piece metadata without piece bytes".into()))?;
        Ok(Some((info, guard.value().to_vec())))
    }

    /// The database, for readers of other tables in it ([`crate::history`]).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(self.db.begin_write()?)
    }

    /// Stores one piece inside `txn` unless it exists or would exceed `quota`. `used` is the
    /// byte count as of this transaction and is updated.
    pub(crate) fn put(
        txn: &WriteTransaction,
        w: &PieceWrite,
        quota: u64,
        used: &mut u64,
        count: &mut u64,
    ) -> Result<PutOutcome, StoreError> {
        let mut info = txn.open_table(INFO)?;
        if let Some(existing) = info.get(&w.hash)?.map(|v| PieceInfo::from_value(v.value())) {
            return Ok(if existing.release == w.info.release {
                PutOutcome::Existing
            } else {
                PutOutcome::Conflict {
                    release: existing.release,
                }
            });
        }
        let len = w.data.len() as u64;
        if used.saturating_add(len) > quota {
            return Ok(PutOutcome::QuotaFull { used: *used, quota });
        }
        let mut pieces = txn.open_table(PIECES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let stored = PieceInfo { len, ..w.info };
        pieces.insert(&w.hash, &w.data[..])?;
        info.insert(&w.hash, stored.to_value())?;
        expiry.insert((w.delete_at, w.hash), ())?;
        (txn.open_table(PENDING)?).insert((stored.uploader.0, w.hash), stored.stored_at)?;
        *used += len;
        *count += 1;
        Ok(PutOutcome::Stored)
    }

    /// Deletes up to a batch of pieces whose delete time is `<= now`.
    pub(crate) fn sweep(
        txn: &WriteTransaction,
        now: u64,
        used: &mut u64,
        count: &mut u64,
    ) -> Result<SweepReport, StoreError> {
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut info = txn.open_table(INFO)?;
        let mut pieces = txn.open_table(PIECES)?;
        let mut due = Vec::new();
        let mut more = false;
        for entry in expiry.range((0u64, [0u8; 32])..=(now, [0xffu8; 32]))? {
            if due.len() == SWEEP_BATCH {
                more = true;
                break;
            }
            due.push(entry?.0.value());
        }
        let mut report = SweepReport {
            more,
            ..SweepReport::default()
        };
        for key in due {
            expiry.remove(key)?;
            let hash = key.1;
            if let Some(v) = info.remove(&hash)? {
                let found = PieceInfo::from_value(v.value());
                let len = found.len;
                (txn.open_table(PENDING)?).remove((found.uploader.0, hash))?;
                *used = used.saturating_sub(len);
                *count = count.saturating_sub(1);
                report.bytes += len;
            }
            pieces.remove(&hash)?;
            report.pieces += 1;
        }
        Ok(report)
    }

    /// Deletes piece `hash` inside `txn` if `signer` stored it and its release time has not
    /// come by `now`; updates the counters like a sweep. `retention` (seconds) finds its
    /// expiry row (`release + retention`, as stored); if the node's retention changed since, a
    /// stale expiry row stays behind, which the sweep skips as already gone.
    pub(crate) fn delete(
        txn: &WriteTransaction,
        hash: &PieceHash,
        signer: &PublicKey,
        (now, retention): (u64, u64),
        used: &mut u64,
        count: &mut u64,
    ) -> Result<DeleteOutcome, StoreError> {
        let info = txn.open_table(INFO)?;
        let Some(found) = info.get(hash)?.map(|v| PieceInfo::from_value(v.value())) else {
            return Ok(DeleteOutcome::Missing);
        };
        if found.uploader != *signer {
            return Ok(DeleteOutcome::NotUploader);
        }
        if now >= found.release {
            return Ok(DeleteOutcome::Released {
                release: found.release,
            });
        }
        drop(info);
        Self::remove(txn, hash, &found, retention, (used, count))?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Removes piece `hash` (described by `found`) from every table inside `txn` and updates
    /// the counters. `retention` finds its expiry row, as in [`Store::delete`].
    pub(crate) fn remove(
        txn: &WriteTransaction,
        hash: &PieceHash,
        found: &PieceInfo,
        retention: u64,
        (used, count): (&mut u64, &mut u64),
    ) -> Result<(), StoreError> {
        txn.open_table(INFO)?.remove(hash)?;
        txn.open_table(PIECES)?.remove(hash)?;
        txn.open_table(EXPIRY)?
            .remove((found.release.saturating_add(retention), *hash))?;
        txn.open_table(PENDING)?.remove((found.uploader.0, *hash))?;
        *used = used.saturating_sub(found.len);
        *count = count.saturating_sub(1);
        Ok(())
    }

    /// The metadata of piece `hash` inside `txn`.
    pub(crate) fn info_in(
        txn: &WriteTransaction,
        hash: &PieceHash,
    ) -> Result<Option<PieceInfo>, StoreError> {
        let info = txn.open_table(INFO)?;
        let found = info.get(hash)?.map(|v| PieceInfo::from_value(v.value()));
        Ok(found)
    }

    /// Writes the counters into `txn` (called once per batch).
    pub(crate) fn save_counters(
        txn: &WriteTransaction,
        used: u64,
        count: u64,
    ) -> Result<(), StoreError> {
        let mut meta = txn.open_table(META)?;
        meta.insert("bytes_used", used)?;
        meta.insert("pieces", count)?;
        Ok(())
    }

    /// Publishes committed counters to readers.
    pub(crate) fn set_counters(&self, used: u64, count: u64) {
        self.bytes_used.store(used, Ordering::SeqCst);
        self.pieces.store(count, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(hash: u8, release: u64, len: usize) -> PieceWrite {
        PieceWrite {
            hash: [hash; 32],
            info: PieceInfo {
                release,
                stored_at: 1,
                uploader: PublicKey([1; 32]),
                block: 0,
                shard: 0,
                len: 0,
            },
            delete_at: release + 10,
            data: Bytes::from(vec![hash; len]),
        }
    }

    fn put(store: &Store, w: &PieceWrite, quota: u64) -> PutOutcome {
        let txn = store.begin_write().unwrap();
        let (mut used, mut count) = (store.bytes_used(), store.piece_count());
        let out = Store::put(&txn, w, quota, &mut used, &mut count).unwrap();
        Store::save_counters(&txn, used, count).unwrap();
        txn.commit().unwrap();
        store.set_counters(used, count);
        out
    }

    #[test]
    fn immutable_quota_sweep_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(put(&store, &write(1, 100, 64), 1000), PutOutcome::Stored);
        assert_eq!(put(&store, &write(1, 100, 64), 1000), PutOutcome::Existing);
        assert_eq!(
            put(&store, &write(1, 101, 64), 1000),
            PutOutcome::Conflict { release: 100 }
        );
        assert!(matches!(
            put(&store, &write(2, 100, 1000), 1000),
            PutOutcome::QuotaFull { used: 64, .. }
        ));
        assert_eq!(store.read(&[2; 32], 200).unwrap(), None);
        assert_eq!(put(&store, &write(3, 200, 64), 1000), PutOutcome::Stored);
        assert_eq!((store.bytes_used(), store.piece_count()), (128, 2));
        // Locked: metadata only.
        let (info, bytes) = store.read(&[1; 32], 99).unwrap().unwrap();
        assert_eq!((info.release, info.len, bytes), (100, 64, None));
        let (_, bytes) = store.read(&[1; 32], 100).unwrap().unwrap();
        assert_eq!(bytes.unwrap()[HEADER_LEN..], vec![1u8; 64]);

        let txn = store.begin_write().unwrap();
        let (mut used, mut count) = (store.bytes_used(), store.piece_count());
        let rep = Store::sweep(&txn, 110, &mut used, &mut count).unwrap();
        Store::save_counters(&txn, used, count).unwrap();
        txn.commit().unwrap();
        store.set_counters(used, count);
        assert_eq!(rep.pieces, 1);
        assert_eq!(store.read(&[1; 32], 500).unwrap(), None);
        drop(store);

        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((store.bytes_used(), store.piece_count()), (64, 1));
        assert!(store.info(&[3; 32]).unwrap().is_some());
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::AlreadyOpen(_))
        ));
    }
}
