//! [`TestNetError`]: why the private network could not be started.
//!
//! Invariant: failures of tor itself stay [`TorError`]s (wrapped transparently, with tor's log
//! tail), so callers can match them the same way as for a single tor.

use kairos_tor::TorError;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Why the private network could not be started.
#[derive(Debug, Error)]
pub enum TestNetError {
    /// Finding, starting or talking to one of the network's tors failed.
    #[error(transparent)]
    Tor(#[from] TorError),
    #[error("cannot write the test network's file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reserve free loopback ports for the test network: {0}")]
    Ports(std::io::Error),
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("the private Tor test network did not converge within {timeout:?}: {detail}")]
    NotConverged { timeout: Duration, detail: String },
}

impl TestNetError {
    /// True if a node failed because another process took one of its "free" ports between our
    /// check and tor's bind: worth starting again on new ports.
    pub fn is_port_race(&self) -> bool {
        match self {
            TestNetError::Tor(
                TorError::EarlyExit { log, .. } | TorError::ControlPortTimeout { log, .. },
            ) => log.contains("Address already in use") || log.contains("Could not bind"),
            _ => false,
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TestNetError {
        let path = path.to_path_buf();
        move |source| TestNetError::Io { path, source }
    }
}
