//! The HTTP/1.1 accept loop every kairos server runs (the directory over TCP, a node's peer API
//! over TCP and its local API over a Unix socket): hyper connections with connection ids,
//! bounded concurrency, header timeouts and graceful shutdown.
//!
//! Invariants: at most `max_connections` connections are served at once (further ones wait in
//! the kernel's accept queue); every request carries the [`ConnId`] of its connection as an
//! extension, distinct for each connection accepted by one [`serve`] call; a client that does
//! not finish its request headers within `header_timeout` is disconnected; on stop the
//! listener closes at once, idle keep-alive connections close, in-flight requests get
//! `shutdown_grace`, and whatever is still open then is cut — when [`serve`] returns no
//! connection task holds the router any more.
//!
//! Accept errors are the [`Listener`]'s business (it must log and retry): axum's own TCP and
//! Unix listeners do so, and [`NoDelayTcp`] is a TCP listener that also sets `TCP_NODELAY`.

use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Identifies one accepted connection (one Tor stream in onion mode), for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// The bounds of one accept loop.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `router` on the connections `listener` accepts until `stop` (see the module docs).
pub async fn serve<L>(mut listener: L, router: Router, limits: ServeLimits, stop: CancellationToken)
where
    L: Listener,
    L::Addr: Debug,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    let mut next_id: u64 = 1;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = tokio::select! {
            x = listener.accept() => x,
            _ = stop.cancelled() => break,
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
                tracing::debug!("connection {} from {peer:?}: {e}", conn.0);
            }
            drop(permit);
        });
        // Reap finished connection tasks so the set does not grow.
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

/// A TCP [`Listener`] that sets `TCP_NODELAY` on every accepted stream and, when `accept`
/// fails (usually EMFILE), logs a warning and retries after 100 ms instead of spinning.
#[derive(Debug)]
pub struct NoDelayTcp(pub TcpListener);

impl Listener for NoDelayTcp {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}
