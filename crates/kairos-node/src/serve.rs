//! The HTTP/1.1 accept loop shared by the peer API (TCP) and the local API (Unix socket):
//! hyper connections with connection ids, bounded concurrency, header timeouts and graceful
//! shutdown.
//!
//! Invariants: at most `max_connections` connections are served at once (further ones wait in
//! the kernel's accept queue); a client that does not finish its request headers within
//! `header_timeout` is disconnected; on stop the listener closes at once, idle keep-alive
//! connections close, in-flight requests get `shutdown_grace`, and whatever is still open then
//! is cut — when `serve` returns no connection task holds the router any more.

use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Identifies one accepted connection (one Tor stream in onion mode), for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

pub struct ServeLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Resolves once `true` was sent or the sender is gone.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub async fn serve<L: Listener>(
    mut listener: L,
    router: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    let mut next_id: u64 = 1;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, _) = tokio::select! {
            x = listener.accept() => x,
            _ = stopped(&mut stop) => break,
        };
        let conn = ConnId(next_id);
        next_id += 1;
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(conn);
            router.clone().oneshot(req)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        conns.spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!("connection {}: {e}", conn.0);
            }
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("{} connections still busy after the shutdown grace period; closing them", conns.len());
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
