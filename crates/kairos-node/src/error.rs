//! Errors of starting a node. Messages say what to do. The piece store's errors are the host
//! layer's [`StoreError`] (re-exported here).

pub use kairos_host::StoreError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a node could not start (or stopped abnormally).
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid node configuration: {0}")]
    Config(String),
    // The I/O errors below are in the message and not `source`s, so that a report of the
    // whole chain (`{:#}`) says them once.
    #[error("cannot use home directory {}: {error}", path.display())]
    Home {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot listen on {addr}: {error} (is another process using the port? choose another with --listen)")]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
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
