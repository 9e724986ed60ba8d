//! The node's local history of its own uploads: table `uploads` in `home/node.redb`, file id →
//! [`Upload`] (JSON). `kairos ls` lists it; `kairos info` uses it to sign as a file's uploader
//! (the per-file key is derived from the node seed and the file's salt, kept here), which lets
//! the uploader see its manifest before release.
//!
//! Invariants: a row is written only after the file's manifest and placement were published
//! (so every listed id exists), through the writer like every other change; it holds nothing
//! that opens the file (no `T`; the salt is public in the manifest, and the per-file key needs
//! the node seed too); a row that does not decode is reported, never a panic.

use crate::wire::Upload;
use kairos_host::StoreError;
use kairos_proto::FileId;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

pub(crate) const UPLOADS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("uploads");

/// Writes (or replaces) the row of `upload` inside `txn`.
pub(crate) fn record(txn: &WriteTransaction, upload: &Upload) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(upload)
        .map_err(|e| StoreError::Corrupt(format!("encoding an upload record: {e}")))?;
    txn.open_table(UPLOADS)?
        .insert(&upload.id.0, bytes.as_slice())?;
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Upload, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("an upload record does not decode: {e}")))
}

/// Every upload, oldest release first.
pub(crate) fn list(db: &redb::Database) -> Result<Vec<Upload>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(UPLOADS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(decode(v.value())?);
    }
    out.sort_by_key(|u| (u.release, u.created));
    Ok(out)
}

/// The upload with file id `id`, if this node made it.
pub(crate) fn get(db: &redb::Database, id: &FileId) -> Result<Option<Upload>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(UPLOADS)?;
    let row = table.get(&id.0)?;
    row.map(|v| decode(v.value())).transpose()
}
