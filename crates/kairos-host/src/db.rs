//! Opening a server's redb database, and the one error type of its storage.
//!
//! Invariants: a database file is open in at most one process at a time (redb's file lock;
//! a second opener gets [`StoreError::AlreadyOpen`], which tells the user what to do); a file
//! whose `meta` table carries another schema version than the caller's is refused before
//! anything in it is touched; a new file gets its schema stamp and every table in the same
//! first transaction, so readers never meet a missing table.

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `meta` table every kairos database has: small named counters, `schema` among them.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A storage failure. Never caused by network input: a request that meets one is answered
/// with a 5xx status, and nothing of it is stored.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "the database {0} is already open in another kairos process; stop it or use another --home"
    )]
    AlreadyOpen(PathBuf),
    #[error("cannot open the database {0}: {1}")]
    Open(PathBuf, Box<redb::Error>),
    #[error("database schema version {0} is not supported by this kairos version")]
    Schema(u64),
    #[error("database error: {0} (is the disk full or failing?)")]
    Redb(Box<redb::Error>),
    #[error("the database is corrupt: {0}")]
    Corrupt(String),
    #[error("shutting down")]
    Closed,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// How to open a database.
#[derive(Clone, Copy, Debug)]
pub struct DbOptions {
    /// The schema version this code reads and writes.
    pub schema: u64,
    /// redb's page cache, bytes (`None`: redb's default).
    pub cache_bytes: Option<usize>,
}

/// Opens (or creates) the database at `path`, checks or stamps its schema version, and runs
/// `init` in the same write transaction (create every table there; read counters from
/// [`META`]). Returns the database and what `init` returned.
pub fn open_db<T>(
    path: &Path,
    opts: DbOptions,
    init: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
) -> Result<(Database, T), StoreError> {
    let mut builder = Database::builder();
    if let Some(bytes) = opts.cache_bytes {
        builder.set_cache_size(bytes);
    }
    let db = builder.create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen(path.to_path_buf()),
        other => StoreError::Open(path.to_path_buf(), Box::new(other.into())),
    })?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get("schema")?.map(|v| v.value());
        match found {
            None => {
                meta.insert("schema", opts.schema)?;
            }
            Some(v) if v == opts.schema => {}
            Some(v) => return Err(StoreError::Schema(v)),
        }
    }
    let out = init(&txn)?;
    txn.commit()?;
    Ok((db, out))
}

/// Reads counter `name` from the [`META`] table (0 when absent).
pub fn meta_get(
    table: &impl redb::ReadableTable<&'static str, u64>,
    name: &str,
) -> Result<u64, StoreError> {
    Ok(table.get(name)?.map_or(0, |v| v.value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn opts(schema: u64) -> DbOptions {
        DbOptions {
            schema,
            cache_bytes: Some(1 << 20),
        }
    }

    #[test]
    fn creates_stamps_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        let (db, ()) = open_db(&path, opts(3), |txn| {
            txn.open_table(T)?;
            Ok(())
        })
        .unwrap();
        // The same file cannot be opened twice at once.
        assert!(matches!(
            open_db(&path, opts(3), |_| Ok(())),
            Err(StoreError::AlreadyOpen(p)) if p == path
        ));
        drop(db);
        let (_db, n) = open_db(&path, opts(3), |txn| {
            let meta = txn.open_table(META)?;
            meta_get(&meta, "schema")
        })
        .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn refuses_another_schema_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        drop(open_db(&path, opts(1), |_| Ok(())).unwrap());
        assert!(matches!(
            open_db(&path, opts(2), |_| Ok(())),
            Err(StoreError::Schema(1))
        ));
        // Nothing was changed by the refused open.
        let (_db, n) = open_db(&path, opts(1), |txn| {
            let meta = txn.open_table(META)?;
            meta_get(&meta, "schema")
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
