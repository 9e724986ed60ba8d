//! Errors of starting a node and of its piece store. Messages say what to do.

use std::path::PathBuf;
use thiserror::Error;

/// Why a node could not start (or stopped abnormally).
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid node configuration: {0}")]
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
    #[error("a kairos daemon is already running with home {0} (its socket answers); stop it first or use another --home")]
    AlreadyRunning(PathBuf),
    #[error("cannot create the local API socket {path}: {message}")]
    Socket { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] kairos_net::TransportError),
    #[error("directory client: {0}")]
    Directory(#[from] kairos_directory_client::ClientError),
    #[error("internal failure: {0}")]
    Internal(String),
}

/// A failure of the piece store (never caused by peer input: a request meeting one gets 5xx).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the piece database {0} is already open in another kairos process; stop it or use another --home")]
    AlreadyOpen(PathBuf),
    #[error("cannot open the piece database {0}: {1}")]
    Open(PathBuf, Box<redb::Error>),
    #[error("piece database schema version {0} is not supported by this kairos version")]
    Schema(u64),
    #[error("piece database error: {0} (is the disk full or failing?)")]
    Redb(Box<redb::Error>),
    #[error("the piece database is corrupt: {0}")]
    Corrupt(String),
    #[error("the node is shutting down")]
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
