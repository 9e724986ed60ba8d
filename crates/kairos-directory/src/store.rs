//! The directory's durable state in one redb file, `home/directory.redb`.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64: `next_seq`, `epoch`, `schema` |
//! | `nodes` | node key | (seq, record timestamp, signed record bytes) |
//! | `node_floor` | node key | newest record timestamp accepted for the key (replay state) |
//! | `manifests` | file id | (seq, release, uploader key, signed manifest bytes, v1 or v2) |
//! | `placements` | file id | (seq, placement record seq, signed placement bytes) |
//! | `revoked` | file id | (seq, signed tombstone bytes): the file was revoked by its uploader |
//! | `manifest_expiry` | (release + retention, file id) | () |
//! | `log` | seq | (kind, node key or file id) |
//! | `cursors` | sibling key | (sibling epoch, last seq pulled) |
//! | `beacons` | (chain hash, round) | BLS signature (48 bytes, compressed G1) |
//! | `beacon_counts` | chain hash | number of `beacons` rows of the chain |
//!
//! # Invariants
//!
//! * Everything stored was verified (signature, id, address binding, freshness) before it got
//!   here; this module does not re-check, it only keeps the tables consistent.
//! * `seq` is a per-database counter that only grows; every live item has exactly one `log`
//!   entry, under its current seq, so `log` ordered by seq is the federation feed. Replacing a
//!   node record moves it to a new seq; deleting anything deletes its `log` entry.
//! * Manifests are immutable: a stored id is never overwritten, only deleted by expiry.
//! * A placement is stored only under the id of a stored manifest, and is replaced only by one
//!   with a higher record seq; it is deleted with its manifest. Placement bytes count in the
//!   manifest quota (`meta` `manifest_bytes`) like manifests.
//! * A node key's record is only ever replaced by one with a strictly newer timestamp, and
//!   `node_floor` remembers that timestamp beyond the record's TTL until any record at least as
//!   old would be refused as stale anyway — so an expired record cannot be replayed.
//! * `epoch` is random per database file: a puller that sees another epoch knows its cursor
//!   means nothing there and starts over from 0.
//! * `beacons` holds only beacons verified against their chain's key, at most
//!   `max_beacons_per_chain` per chain: storing one more deletes the chain's lowest round, so
//!   the newest rounds stay. `beacon_counts` is that count, kept in the same transaction.
//!   Beacons are not federated and never expire otherwise (a beacon is valid forever).
//! * Writes happen only in the writer thread ([`crate::writer`]), one transaction per batch;
//!   every commit is durable (fsync) before any client is told "stored".
//!
//! # Page cache
//!
//! redb keeps its own page cache in the process, [`crate::Limits::db_cache_bytes`] (1 GiB by
//! default, redb's default); the kernel's page cache holds the file besides. A lookup whose
//! leaf page is not in redb's cache reads it with `pread` and copies it (CPU, not disk, once
//! the kernel holds the file). A million manifests take ≈ 2 GiB on disk, so at that size about
//! half the lookups miss even with 1 GiB, and the process grows to that size. Measured with
//! `examples/dirload.rs` at a million manifests: 64 MiB (which still holds every branch page,
//! ≈ 11 MiB) costs ≈ 3 µs more server CPU per lookup (≈ 10 %) than 1 GiB, for a process of
//! ≈ 0.2 instead of ≈ 1.3 GiB. Small directories fit either way.

use kairos_host::db::{open_db, DbOptions, StoreError, META};
use kairos_proto::{FileId, PublicKey, SignedNodeRecord};
use redb::{
    Database, ReadTransaction, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use std::path::Path;
use std::sync::Arc;

/// File name of the database inside the home directory.
pub const DB_FILE: &str = "directory.redb";
const SCHEMA: u64 = 1;

const NODES: TableDefinition<[u8; 32], (u64, u64, &[u8])> = TableDefinition::new("nodes");
const NODE_FLOOR: TableDefinition<[u8; 32], u64> = TableDefinition::new("node_floor");
/// (seq, release, uploader key, signed bytes)
type ManifestValue = (u64, u64, [u8; 32], &'static [u8]);
const MANIFESTS: TableDefinition<[u8; 32], ManifestValue> = TableDefinition::new("manifests");
const MANIFEST_EXPIRY: TableDefinition<(u64, [u8; 32]), ()> =
    TableDefinition::new("manifest_expiry");
/// (seq, placement record seq, signed bytes)
type PlacementValue = (u64, u64, &'static [u8]);
const PLACEMENTS: TableDefinition<[u8; 32], PlacementValue> = TableDefinition::new("placements");
/// (seq, signed tombstone bytes): files their uploader revoked.
const REVOKED: TableDefinition<[u8; 32], (u64, &[u8])> = TableDefinition::new("revoked");
const LOG: TableDefinition<u64, (u8, [u8; 32])> = TableDefinition::new("log");
const CURSORS: TableDefinition<[u8; 32], (u64, u64)> = TableDefinition::new("cursors");
const BEACONS: TableDefinition<([u8; 32], u64), [u8; 48]> = TableDefinition::new("beacons");
const BEACON_COUNTS: TableDefinition<[u8; 32], u64> = TableDefinition::new("beacon_counts");

/// What a `log` entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Node = 1,
    Manifest = 2,
    Placement = 3,
    Tombstone = 4,
}

impl ItemKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(ItemKind::Node),
            2 => Some(ItemKind::Manifest),
            3 => Some(ItemKind::Placement),
            4 => Some(ItemKind::Tombstone),
            _ => None,
        }
    }
}

/// One item of the federation feed.
#[derive(Clone, Debug)]
pub struct FeedItem {
    pub seq: u64,
    pub kind: ItemKind,
    /// Node key or file id.
    pub key: [u8; 32],
    pub bytes: Vec<u8>,
}

/// A page of the federation feed.
#[derive(Clone, Debug)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// The seq to pass as `since` next time.
    pub next: u64,
    /// Whether items after `next` exist already.
    pub more: bool,
}

/// A stored manifest's clear metadata, and its bytes if the caller asked for them.
pub struct ManifestRow {
    pub release: u64,
    pub uploader: PublicKey,
    pub bytes: Option<Vec<u8>>,
}

/// A verified node record to store.
#[derive(Clone, Debug)]
pub struct NodeWrite {
    pub record: SignedNodeRecord,
}

/// A manifest to store: verified bytes plus the fields the tables index.
#[derive(Clone, Debug)]
pub struct ManifestWrite {
    pub id: FileId,
    pub release: u64,
    pub uploader: PublicKey,
    pub expires_at: u64,
    pub bytes: Vec<u8>,
    /// Most manifest bytes the store may hold with this one (`limits.manifest_store_bytes`).
    pub quota: u64,
}

/// A verified tombstone (revocation by the uploader, before release) of a stored manifest.
#[derive(Clone, Debug)]
pub struct TombstoneWrite {
    pub id: FileId,
    pub bytes: Vec<u8>,
}

/// What storing a tombstone did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TombstoneOutcome {
    /// The file is revoked now; its placement was deleted.
    Stored,
    /// It was revoked already.
    Existing,
    /// No manifest with this id is stored.
    UnknownManifest,
}

/// A verified placement record to store under the file id it places.
#[derive(Clone, Debug)]
pub struct PlacementWrite {
    pub id: FileId,
    /// The record's seq (newest wins).
    pub seq: u64,
    pub bytes: Vec<u8>,
    /// As [`ManifestWrite::quota`]: placements count in the manifest quota.
    pub quota: u64,
}

/// What storing a placement record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementOutcome {
    /// Stored (first placement of the file, or a higher seq than the one held).
    Stored,
    /// The identical bytes were already stored.
    Existing,
    /// A placement with seq `have`, not lower than this one's, is held (other bytes).
    Stale { have: u64 },
    /// No manifest is stored under the id (never was, or expired meanwhile).
    UnknownManifest,
    /// Storing it would take the manifests and placements over the quota.
    Full { used: u64 },
}

/// A verified beacon to store.
#[derive(Clone, Debug)]
pub struct BeaconWrite {
    pub chain: [u8; 32],
    pub round: u64,
    pub signature: [u8; 48],
    /// Keep at most this many beacons of the chain (the newest rounds).
    pub cap: u64,
}

/// What storing a beacon did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconOutcome {
    Stored,
    /// This round of this chain was already stored (BLS signatures are unique, so it is the
    /// same beacon).
    Existing,
}

/// What storing a node record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeOutcome {
    Stored,
    /// A record with this timestamp or a newer one was already accepted.
    NotNewer {
        have: u64,
    },
}

/// What storing a manifest did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestOutcome {
    Created,
    /// The identical bytes were already stored.
    Existing,
    /// Other bytes are stored under this id (needs a BLAKE3 collision; kept for completeness).
    Conflict,
    /// Storing it would take the manifests over the quota (`used` bytes held now).
    Full {
        used: u64,
    },
}

/// What an expiry sweep deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys (and timestamps) of the node records deleted.
    pub nodes: Vec<(PublicKey, u64)>,
    pub manifests: usize,
    /// Placements deleted with their manifests.
    pub placements: usize,
    pub floors: usize,
    /// Whether expired manifests remain (the sweep deletes a bounded number per transaction).
    pub more: bool,
}

/// Most manifests one sweep transaction deletes.
const SWEEP_BATCH: usize = 10_000;

/// Shared handle on the database. Reads run on any thread; writes go through
/// [`crate::writer::Writer`].
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    epoch: u64,
}

impl Store {
    /// Opens (or creates) `home/directory.redb` and its tables ([`kairos_host::open_db`]
    /// refuses a file open in another process or of another schema).
    pub fn open(home: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        let opts = DbOptions {
            schema: SCHEMA,
            cache_bytes: Some(cache_bytes),
        };
        let (db, epoch) = open_db(&home.join(DB_FILE), opts, |txn| {
            let epoch = epoch_of(txn)?;
            txn.open_table(NODES)?;
            txn.open_table(NODE_FLOOR)?;
            txn.open_table(MANIFESTS)?;
            txn.open_table(MANIFEST_EXPIRY)?;
            txn.open_table(PLACEMENTS)?;
            txn.open_table(REVOKED)?;
            txn.open_table(LOG)?;
            txn.open_table(CURSORS)?;
            count_manifest_bytes(txn)?;
            txn.open_table(BEACONS)?;
            txn.open_table(BEACON_COUNTS)?;
            Ok(epoch)
        })?;
        Ok(Store {
            db: Arc::new(db),
            epoch,
        })
    }

    /// This database's random epoch (see the module invariants).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(self.db.begin_write()?)
    }

    /// A stored manifest's metadata; its bytes too if `want_bytes(&row)` (so a locked
    /// manifest is never copied out of the database).
    pub fn manifest(
        &self,
        id: &FileId,
        want_bytes: impl FnOnce(&ManifestRow) -> bool,
    ) -> Result<Option<ManifestRow>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(MANIFESTS)?;
        let Some(guard) = table.get(&id.0)? else {
            return Ok(None);
        };
        let (_seq, release, uploader, bytes) = guard.value();
        let mut row = ManifestRow {
            release,
            uploader: PublicKey(uploader),
            bytes: None,
        };
        if want_bytes(&row) {
            row.bytes = Some(bytes.to_vec());
        }
        Ok(Some(row))
    }

    /// The tombstone of `id`, if its uploader revoked it.
    pub fn tombstone(&self, id: &FileId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(REVOKED)?;
        Ok(table.get(&id.0)?.map(|g| g.value().1.to_vec()))
    }

    /// The stored placement of `id`: `(record seq, signed bytes)`.
    pub fn placement(&self, id: &FileId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(PLACEMENTS)?;
        Ok(table.get(&id.0)?.map(|g| {
            let (_seq, record_seq, bytes) = g.value();
            (record_seq, bytes.to_vec())
        }))
    }

    /// The stored signature of `round` of chain `chain`, if any.
    pub fn beacon(&self, chain: &[u8; 32], round: u64) -> Result<Option<[u8; 48]>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BEACONS)?;
        Ok(table.get((*chain, round))?.map(|g| g.value()))
    }

    /// How many beacons of `chain` are stored.
    #[cfg(test)]
    pub fn beacon_count(&self, chain: &[u8; 32]) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BEACON_COUNTS)?;
        Ok(table.get(chain)?.map_or(0, |g| g.value()))
    }

    /// Every stored node record, for rebuilding the in-memory index.
    pub fn node_records(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(NODES)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_k, v) = row?;
            out.push(v.value().2.to_vec());
        }
        Ok(out)
    }

    /// `(node records, manifests)` stored.
    pub fn counts(&self) -> Result<(u64, u64), StoreError> {
        let txn = self.read()?;
        Ok((
            txn.open_table(NODES)?.len()?,
            txn.open_table(MANIFESTS)?.len()?,
        ))
    }

    /// Items stored after `since`, oldest first: at most `max_items`, and at most `max_bytes`
    /// of payload unless the first item alone is larger.
    pub fn feed(
        &self,
        since: u64,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<FeedPage, StoreError> {
        let txn = self.read()?;
        let log = txn.open_table(LOG)?;
        let nodes = txn.open_table(NODES)?;
        let manifests = txn.open_table(MANIFESTS)?;
        let placements = txn.open_table(PLACEMENTS)?;
        let revoked = txn.open_table(REVOKED)?;
        let mut items = Vec::new();
        let mut bytes_total = 0usize;
        let mut next = since;
        let mut more = false;
        for row in log.range(since.saturating_add(1)..)? {
            let (seq, v) = row?;
            let (seq, (kind, key)) = (seq.value(), v.value());
            let Some(kind) = ItemKind::from_u8(kind) else {
                return Err(StoreError::Corrupt(format!(
                    "log entry {seq} has kind {kind}"
                )));
            };
            let bytes = match kind {
                ItemKind::Node => nodes.get(&key)?.map(|g| g.value().2.to_vec()),
                ItemKind::Manifest => manifests.get(&key)?.map(|g| g.value().3.to_vec()),
                ItemKind::Placement => placements.get(&key)?.map(|g| g.value().2.to_vec()),
                ItemKind::Tombstone => revoked.get(&key)?.map(|g| g.value().1.to_vec()),
            };
            let Some(bytes) = bytes else {
                return Err(StoreError::Corrupt(format!(
                    "log entry {seq} points at a missing item"
                )));
            };
            if !items.is_empty()
                && (items.len() >= max_items || bytes_total + bytes.len() > max_bytes)
            {
                more = true;
                break;
            }
            bytes_total += bytes.len();
            next = seq;
            items.push(FeedItem {
                seq,
                kind,
                key,
                bytes,
            });
        }
        Ok(FeedPage { items, next, more })
    }

    /// Where pulling from `sibling` stands: `(sibling epoch, last seq pulled)`, `(0, 0)` if never.
    pub fn cursor(&self, sibling: &PublicKey) -> Result<(u64, u64), StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(CURSORS)?;
        Ok(table.get(&sibling.0)?.map_or((0, 0), |g| g.value()))
    }
}

/// `meta` key of the total size of the stored manifests.
const MANIFEST_BYTES: &str = "manifest_bytes";

/// Counts the stored manifests' bytes into `meta` if no count is there yet (a database written
/// before the count existed); afterwards every write keeps it current.
fn count_manifest_bytes(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    if meta.get(MANIFEST_BYTES)?.is_some() {
        return Ok(());
    }
    let mut total = 0u64;
    for row in txn.open_table(MANIFESTS)?.iter()? {
        total = total.saturating_add(row?.1.value().3.len() as u64);
    }
    for row in txn.open_table(PLACEMENTS)?.iter()? {
        total = total.saturating_add(row?.1.value().2.len() as u64);
    }
    meta.insert(MANIFEST_BYTES, total)?;
    Ok(())
}

/// The database's epoch, drawn (odd, so never 0) and stored the first time.
fn epoch_of(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let stored = meta.get("epoch")?.map(|g| g.value());
    Ok(match stored {
        Some(e) => e,
        None => {
            let e = rand::random::<u64>() | 1;
            meta.insert("epoch", e)?;
            e
        }
    })
}

/// Every table open for writing in one transaction, and the seq counter. Opened once per
/// batch by the writer; [`Tables::finish`] must run before the transaction commits.
pub(crate) struct Tables<'t> {
    meta: Table<'t, &'static str, u64>,
    nodes: Table<'t, [u8; 32], (u64, u64, &'static [u8])>,
    floor: Table<'t, [u8; 32], u64>,
    manifests: Table<'t, [u8; 32], ManifestValue>,
    expiry: Table<'t, (u64, [u8; 32]), ()>,
    placements: Table<'t, [u8; 32], PlacementValue>,
    revoked: Table<'t, [u8; 32], (u64, &'static [u8])>,
    log: Table<'t, u64, (u8, [u8; 32])>,
    cursors: Table<'t, [u8; 32], (u64, u64)>,
    beacons: Table<'t, ([u8; 32], u64), [u8; 48]>,
    beacon_counts: Table<'t, [u8; 32], u64>,
    next_seq: u64,
    /// Bytes of all stored manifests (kept in `meta`, see [`count_manifest_bytes`]).
    manifest_bytes: u64,
}

impl<'t> Tables<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let next_seq = meta.get("next_seq")?.map_or(1, |g| g.value());
        let manifest_bytes = meta.get(MANIFEST_BYTES)?.map_or(0, |g| g.value());
        Ok(Tables {
            meta,
            nodes: txn.open_table(NODES)?,
            floor: txn.open_table(NODE_FLOOR)?,
            manifests: txn.open_table(MANIFESTS)?,
            expiry: txn.open_table(MANIFEST_EXPIRY)?,
            placements: txn.open_table(PLACEMENTS)?,
            revoked: txn.open_table(REVOKED)?,
            log: txn.open_table(LOG)?,
            cursors: txn.open_table(CURSORS)?,
            beacons: txn.open_table(BEACONS)?,
            beacon_counts: txn.open_table(BEACON_COUNTS)?,
            next_seq,
            manifest_bytes,
        })
    }

    /// Persists the seq counter and closes the tables.
    pub(crate) fn finish(mut self) -> Result<(), StoreError> {
        self.meta.insert("next_seq", self.next_seq)?;
        self.meta.insert(MANIFEST_BYTES, self.manifest_bytes)?;
        Ok(())
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Stores a node record unless one at least as new was accepted for its key.
    pub(crate) fn put_node(&mut self, w: &NodeWrite) -> Result<NodeOutcome, StoreError> {
        let rec = w.record.record();
        let key = rec.key.0;
        if let Some(have) = self.floor.get(&key)?.map(|g| g.value()) {
            if have >= rec.timestamp {
                return Ok(NodeOutcome::NotNewer { have });
            }
        }
        let seq = self.seq();
        let old = self
            .nodes
            .insert(&key, (seq, rec.timestamp, w.record.as_bytes()))?
            .map(|g| g.value().0);
        if let Some(old_seq) = old {
            self.log.remove(old_seq)?;
        }
        self.log.insert(seq, (ItemKind::Node as u8, key))?;
        self.floor.insert(&key, rec.timestamp)?;
        Ok(NodeOutcome::Stored)
    }

    /// Stores a manifest under its id, immutably.
    pub(crate) fn put_manifest(
        &mut self,
        w: &ManifestWrite,
    ) -> Result<ManifestOutcome, StoreError> {
        if let Some(g) = self.manifests.get(&w.id.0)? {
            return Ok(if g.value().3 == w.bytes.as_slice() {
                ManifestOutcome::Existing
            } else {
                ManifestOutcome::Conflict
            });
        }
        let len = w.bytes.len() as u64;
        if self.manifest_bytes.saturating_add(len) > w.quota {
            return Ok(ManifestOutcome::Full {
                used: self.manifest_bytes,
            });
        }
        self.manifest_bytes += len;
        let seq = self.seq();
        self.manifests
            .insert(&w.id.0, (seq, w.release, w.uploader.0, w.bytes.as_slice()))?;
        self.expiry.insert((w.expires_at, w.id.0), ())?;
        self.log.insert(seq, (ItemKind::Manifest as u8, w.id.0))?;
        Ok(ManifestOutcome::Created)
    }

    /// Stores a placement under the id of a stored manifest if its seq is higher than the
    /// held one's (see the module invariants).
    pub(crate) fn put_placement(
        &mut self,
        w: &PlacementWrite,
    ) -> Result<PlacementOutcome, StoreError> {
        if self.manifests.get(&w.id.0)?.is_none() || self.revoked.get(&w.id.0)?.is_some() {
            return Ok(PlacementOutcome::UnknownManifest);
        }
        let old = self.placements.get(&w.id.0)?.map(|g| {
            let (log_seq, have, bytes) = g.value();
            (
                log_seq,
                have,
                bytes == w.bytes.as_slice(),
                bytes.len() as u64,
            )
        });
        if let Some((_, have, same, _)) = old {
            if same {
                return Ok(PlacementOutcome::Existing);
            }
            if w.seq <= have {
                return Ok(PlacementOutcome::Stale { have });
            }
        }
        let (old_len, len) = (old.map_or(0, |o| o.3), w.bytes.len() as u64);
        let total = self
            .manifest_bytes
            .saturating_sub(old_len)
            .saturating_add(len);
        if len > old_len && total > w.quota {
            return Ok(PlacementOutcome::Full {
                used: self.manifest_bytes,
            });
        }
        self.manifest_bytes = total;
        let seq = self.seq();
        self.placements
            .insert(&w.id.0, (seq, w.seq, w.bytes.as_slice()))?;
        if let Some((old_seq, ..)) = old {
            self.log.remove(old_seq)?;
        }
        self.log.insert(seq, (ItemKind::Placement as u8, w.id.0))?;
        Ok(PlacementOutcome::Stored)
    }

    /// Marks a stored manifest revoked and deletes its placement. The manifest row stays (a
    /// sibling may need it to verify the tombstone; it is never served again) and both expire
    /// together.
    pub(crate) fn put_tombstone(
        &mut self,
        w: &TombstoneWrite,
    ) -> Result<TombstoneOutcome, StoreError> {
        if self.manifests.get(&w.id.0)?.is_none() {
            return Ok(TombstoneOutcome::UnknownManifest);
        }
        if self.revoked.get(&w.id.0)?.is_some() {
            return Ok(TombstoneOutcome::Existing);
        }
        if let Some(g) = self.placements.remove(&w.id.0)? {
            let (seq, _, bytes) = g.value();
            self.manifest_bytes = self.manifest_bytes.saturating_sub(bytes.len() as u64);
            self.log.remove(seq)?;
        }
        let seq = self.seq();
        self.revoked.insert(&w.id.0, (seq, w.bytes.as_slice()))?;
        self.log.insert(seq, (ItemKind::Tombstone as u8, w.id.0))?;
        Ok(TombstoneOutcome::Stored)
    }

    /// Stores a verified beacon, then deletes the chain's lowest rounds beyond `w.cap`.
    pub(crate) fn put_beacon(&mut self, w: &BeaconWrite) -> Result<BeaconOutcome, StoreError> {
        if self.beacons.get((w.chain, w.round))?.is_some() {
            return Ok(BeaconOutcome::Existing);
        }
        self.beacons.insert((w.chain, w.round), w.signature)?;
        let mut count = self
            .beacon_counts
            .get(&w.chain)?
            .map_or(0, |g| g.value())
            .saturating_add(1);
        while count > w.cap {
            let lowest = self
                .beacons
                .range((w.chain, 0)..=(w.chain, u64::MAX))?
                .next()
                .transpose()?
                .map(|(k, _)| k.value());
            let Some(key) = lowest else { break };
            self.beacons.remove(key)?;
            count -= 1;
        }
        self.beacon_counts.insert(&w.chain, count)?;
        Ok(BeaconOutcome::Stored)
    }

    pub(crate) fn set_cursor(
        &mut self,
        sibling: &PublicKey,
        epoch: u64,
        cursor: u64,
    ) -> Result<(), StoreError> {
        self.cursors.insert(&sibling.0, (epoch, cursor))?;
        Ok(())
    }

    /// Deletes node records whose `timestamp + node_ttl <= now`, replay floors whose
    /// `timestamp + floor_horizon < now`, and manifests whose expiry is `<= now` with their
    /// placements.
    pub(crate) fn sweep(
        &mut self,
        now: u64,
        node_ttl: u64,
        floor_horizon: u64,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let mut dead = Vec::new();
        for row in self.nodes.iter()? {
            let (k, v) = row?;
            let (seq, ts, _) = v.value();
            if ts.saturating_add(node_ttl) <= now {
                dead.push((k.value(), seq, ts));
            }
        }
        for (key, seq, ts) in dead {
            self.nodes.remove(&key)?;
            self.log.remove(seq)?;
            report.nodes.push((PublicKey(key), ts));
        }
        let before = self.floor.len()?;
        self.floor
            .retain(|_, ts| ts.saturating_add(floor_horizon) >= now)?;
        report.floors = (before - self.floor.len()?) as usize;
        let mut dead = Vec::new();
        for row in self.expiry.range(..=(now, [0xffu8; 32]))? {
            let (k, _) = row?;
            if dead.len() == SWEEP_BATCH {
                report.more = true;
                break;
            }
            dead.push(k.value());
        }
        for (at, id) in dead {
            self.expiry.remove((at, id))?;
            if let Some(g) = self.manifests.remove(&id)? {
                let (seq, _, _, bytes) = g.value();
                self.manifest_bytes = self.manifest_bytes.saturating_sub(bytes.len() as u64);
                self.log.remove(seq)?;
            }
            if let Some(g) = self.placements.remove(&id)? {
                let (seq, _, bytes) = g.value();
                self.manifest_bytes = self.manifest_bytes.saturating_sub(bytes.len() as u64);
                self.log.remove(seq)?;
                report.placements += 1;
            }
            if let Some(g) = self.revoked.remove(&id)? {
                self.log.remove(g.value().0)?;
            }
            report.manifests += 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::{Identity, NodeRecord};

    fn commit<T>(store: &Store, f: impl FnOnce(&mut Tables) -> Result<T, StoreError>) -> T {
        let txn = store.begin_write().unwrap();
        let out = {
            let mut t = Tables::open(&txn).unwrap();
            let out = f(&mut t).unwrap();
            t.finish().unwrap();
            out
        };
        txn.commit().unwrap();
        out
    }

    fn record(id: &Identity, ts: u64) -> NodeWrite {
        NodeWrite {
            record: NodeRecord::new(id, "127.0.0.1:9".into(), 1, ts)
                .sign(id)
                .unwrap(),
        }
    }

    #[test]
    fn nodes_replace_only_newer_and_feed_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id = Identity::generate();
        let r1 = record(&id, 100);
        assert_eq!(commit(&store, |t| t.put_node(&r1)), NodeOutcome::Stored);
        assert_eq!(
            commit(&store, |t| t.put_node(&r1)),
            NodeOutcome::NotNewer { have: 100 }
        );
        let page = store.feed(0, 10, 1 << 20).unwrap();
        assert_eq!(page.items.len(), 1);
        let first_seq = page.next;
        let r2 = record(&id, 101);
        commit(&store, |t| t.put_node(&r2));
        let page = store.feed(0, 10, 1 << 20).unwrap();
        assert_eq!(page.items.len(), 1, "old log entry must be gone");
        assert!(page.next > first_seq);
        assert_eq!(page.items[0].bytes, r2.record.as_bytes());
        assert!(store.feed(page.next, 10, 1 << 20).unwrap().items.is_empty());

        // Expiry removes the record but keeps the floor until the horizon passes.
        let rep = commit(&store, |t| t.sweep(101 + 60, 60, 300));
        assert_eq!(rep.nodes, vec![(id.public(), 101)]);
        assert_eq!(rep.floors, 0);
        assert_eq!(
            commit(&store, |t| t.put_node(&r2)),
            NodeOutcome::NotNewer { have: 101 }
        );
        let rep = commit(&store, |t| t.sweep(101 + 301, 60, 300));
        assert_eq!(rep.floors, 1);
        assert!(store.feed(0, 10, 1 << 20).unwrap().items.is_empty());
    }

    #[test]
    fn beacons_keep_the_newest_rounds_per_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let w = |chain, round| BeaconWrite {
            chain,
            round,
            signature: [round as u8; 48],
            cap: 3,
        };
        for r in [5, 1, 9, 7] {
            assert_eq!(
                commit(&store, |t| t.put_beacon(&w(a, r))),
                BeaconOutcome::Stored
            );
        }
        assert_eq!(
            commit(&store, |t| t.put_beacon(&w(a, 9))),
            BeaconOutcome::Existing
        );
        commit(&store, |t| t.put_beacon(&w(b, 1)));
        assert_eq!(store.beacon_count(&a).unwrap(), 3);
        assert_eq!(store.beacon(&a, 1).unwrap(), None, "the lowest round went");
        assert_eq!(store.beacon(&a, 5).unwrap(), Some([5; 48]));
        assert_eq!(
            store.beacon(&b, 1).unwrap(),
            Some([1; 48]),
            "other chains untouched"
        );
        assert_eq!(store.beacon(&b, 5).unwrap(), None);
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.beacon(&a, 9).unwrap(), Some([9; 48]));
        assert_eq!(store.beacon_count(&b).unwrap(), 1);
    }

    #[test]
    fn epoch_survives_reopen_and_feed_pages_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let epoch = store.epoch();
        for _ in 0..5 {
            let id = Identity::generate();
            commit(&store, |t| t.put_node(&record(&id, 5)));
        }
        let p = store.feed(0, 2, 1 << 20).unwrap();
        assert_eq!((p.items.len(), p.more), (2, true));
        let p = store.feed(0, 100, 1).unwrap();
        assert_eq!(
            (p.items.len(), p.more),
            (1, true),
            "one item even over budget"
        );
        let sib = Identity::generate().public();
        commit(&store, |t| t.set_cursor(&sib, 9, 3));
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.epoch(), epoch);
        assert_eq!(store.cursor(&sib).unwrap(), (9, 3));
        assert_eq!(store.counts().unwrap(), (5, 0));
    }

    #[test]
    fn manifest_quota_holds_and_expiry_frees_room_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let write = |i: u8, expires_at: u64| ManifestWrite {
            id: FileId([i; 32]),
            release: 10,
            uploader: PublicKey([0; 32]),
            expires_at,
            bytes: vec![i; 400],
            quota: 1000,
        };
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(1, 50))),
            ManifestOutcome::Created
        );
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(2, 90))),
            ManifestOutcome::Created
        );
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(3, 90))),
            ManifestOutcome::Full { used: 800 }
        );
        // The same bytes again are not new storage.
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(1, 50))),
            ManifestOutcome::Existing
        );
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(3, 90))),
            ManifestOutcome::Full { used: 800 },
            "the count survives a restart"
        );
        let rep = commit(&store, |t| t.sweep(60, 1, 1));
        assert_eq!(rep.manifests, 1);
        assert_eq!(
            commit(&store, |t| t.put_manifest(&write(3, 90))),
            ManifestOutcome::Created
        );
        assert!(store
            .manifest(&FileId([1; 32]), |_| false)
            .unwrap()
            .is_none());
    }
}
