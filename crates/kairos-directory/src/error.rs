//! Why a directory could not start. Its storage failures are the host layer's
//! [`StoreError`] (re-exported here), shared with the node.
//!
//! Invariant: this module imports nothing of the crate, so every module may use it.

pub use kairos_host::StoreError;
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
