//! Transport for kairos: how a directory, a node or a client reaches another one, and the
//! plumbing every HTTP service of kairos shares.
//!
//! * [`Transport`] builds HTTP clients. In [`Transport::Tor`] mode every client goes through
//!   tor's SOCKS port with `socks5h` (the hostname is resolved by tor, never locally) and there
//!   is no fallback. [`Transport::Direct`] is plain HTTP for development on loopback only.
//! * [`ApiError`] is the JSON error body every route returns.
//! * [`signed`] verifies signed requests inside axum handlers.
//! * [`serve`] is the HTTP/1.1 accept loop of every kairos server; [`request`] the plumbing
//!   their routes share (bounded bodies, per-connection rate limit, fallbacks).
//! * [`shutdown_signal`] resolves on SIGINT or SIGTERM.

mod error;
pub mod home;
pub mod ratelimit;
pub mod request;
pub mod serve;
pub mod signed;
mod transport;

pub use error::{ApiError, ErrorBody};
pub use transport::{check_direct_addr, Transport, TransportError};

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
