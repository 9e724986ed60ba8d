//! Errors of the server side: starting a directory, and its storage.

use std::path::PathBuf;
use thiserror::Error;

/// Why a directory could not start (or stopped abnormally).
#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("invalid directory configuration: {0}")]
    Config(String),
    #[error("cannot use home directory {path}: {source}")]
    Home {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source} (is another process using the port? choose another with --listen)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] kairos_net::TransportError),
}

/// A storage failure. Never caused by client input: a request that meets one gets `500`.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "database {0} is already open in another directory process; stop it or use another --home"
    )]
    AlreadyOpen(PathBuf),
    #[error("cannot open database {0}: {1}")]
    Open(PathBuf, Box<redb::Error>),
    #[error("database schema version {0} is not supported by this kairos version")]
    Schema(u64),
    #[error("database error: {0}")]
    Redb(Box<redb::Error>),
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    #[error("the directory is shutting down")]
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
