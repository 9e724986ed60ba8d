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
//! * [`shutdown_signal`] resolves on SIGINT or SIGTERM; [`with_causes`] words a client
//!   error with its causes.

mod error;
pub mod home;
pub mod ratelimit;
pub mod request;
pub mod serve;
pub mod signed;
mod transport;

pub use error::{ApiError, ErrorBody};
pub use transport::{check_direct_addr, Transport, TransportError};

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, and returns a future that resolves
/// at the first of them. Call it before announcing readiness (a ready file, a `ready` line): a
/// signal sent as soon as the announcement is seen is then caught, where a handler installed
/// only when the future is first polled would leave the default action to kill the process
/// without its shutdown (children and databases left behind). Must be called inside a tokio
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// `e` and its causes, `: `-separated, each said once (reqwest's own text names only the URL;
/// the cause, e.g. "Connection refused", is in its sources, sometimes repeated).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}
