//! The crate's two error types: [`ControlError`] for the control connection and [`TorError`]
//! for running tor (which wraps a [`ControlError`]).
//!
//! They live apart from the code that raises them so that the reply parser, the control client
//! and the launcher can all depend on them without depending on each other.
//!
//! Invariant: no message carries a secret (cookie, password, onion key); each says what to do
//! where there is something to do (install tor, check the torrc, read tor's log tail).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Errors of the control connection.
#[derive(Debug, Error)]
pub enum ControlError {
    #[error("cannot connect to the tor control port at {addr}: {source} (is tor running, and is its ControlPort set to this address?)")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("refusing control port {0}: only loopback control ports (127.0.0.1) are supported")]
    NotLoopback(SocketAddr),
    #[error("i/o error on the tor control connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("tor closed the control connection (did tor exit? see its log)")]
    Closed,
    #[error("malformed reply from the tor control port ({reason}): {line:?}")]
    Malformed { reason: &'static str, line: String },
    #[error("unexpected reply from tor to {command}: {detail}")]
    Unexpected { command: String, detail: String },
    #[error("tor rejected {command}: {code} {message}")]
    Rejected {
        command: String,
        code: u16,
        message: String,
    },
    #[error("authenticating to the tor control port failed: {0}")]
    Auth(String),
    #[error("cannot read tor's control cookie {path}: {source} (this user needs read access to tor's DataDirectory, or use password authentication)")]
    Cookie {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid control command argument: {0}")]
    BadArgument(String),
    #[error("the control connection is unusable because an earlier command was cancelled half-way; open a new connection")]
    Desynchronized,
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// Everything that can go wrong running tor.
#[derive(Debug, Error)]
pub enum TorError {
    #[error("the tor binary was not found (looked at: {looked}); install the Debian package `tor` (apt-get install tor) or configure the path to the tor binary")]
    TorNotFound { looked: String },
    #[error("the helper program {tool} was not found (looked at: {looked}); install the Debian package `tor`, which provides it")]
    ToolNotFound { tool: &'static str, looked: String },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare tor's directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tor ({label}) exited during startup with {status}; last lines of its log:\n{log}")]
    EarlyExit {
        label: String,
        status: String,
        log: String,
    },
    #[error("tor ({label}) did not open its control port within {timeout:?}; last lines of its log:\n{log}")]
    ControlPortTimeout {
        label: String,
        timeout: Duration,
        log: String,
    },
    #[error("tor did not finish bootstrapping within {timeout:?}: stuck at {progress}% ({summary}){warning}. Check that tor can reach its directory authorities (network, firewall, DirAuthority lines). Last lines of its log:\n{log}")]
    BootstrapTimeout {
        timeout: Duration,
        progress: u8,
        summary: String,
        /// `"; tor warns: ..."` or empty.
        warning: String,
        log: String,
    },
    #[error(
        "tor has no SOCKS listener on 127.0.0.1; set `SocksPort auto` (or a port) in its torrc"
    )]
    NoSocks,
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("tor published onion service {published}.onion but this identity's address is {expected}; refusing to use a service that does not match the key")]
    OnionMismatch { published: String, expected: String },
    #[error("onion service target {0} is not a loopback address; kairos only forwards onion traffic to 127.0.0.1")]
    NotLoopback(SocketAddr),
    #[error(
        "cannot reach {target} through tor after {attempts} attempt(s) in {elapsed:?}: {source}"
    )]
    Unreachable {
        target: String,
        attempts: u32,
        elapsed: Duration,
        source: crate::socks::SocksError,
    },
}
