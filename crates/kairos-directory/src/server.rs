//! Starting and stopping a directory: the shared state of its tasks, and their lifecycle.
//!
//! A running directory is: the HTTP accept loop ([`kairos_net::serve`]), one federation puller per
//! sibling ([`crate::federation`]), the expiry sweeper ([`crate::sweep`]) and the writer thread
//! ([`crate::writer`]), all sharing one [`App`].
//!
//! Invariant: [`DirectoryHandle::shutdown`] returns only after every task has ended, in-flight
//! requests were given `shutdown_grace` to finish, the writer committed what it had queued, and
//! the database file is closed — so the same home can be reopened at once (restarts in tests,
//! or a supervisor restarting the process).

use crate::config::DirectoryConfig;
use crate::error::{DirectoryError, StoreError};
use crate::nodes::{NodeEntry, NodeIndex};
use crate::store::Store;
use crate::validate::Policy;
use crate::writer::Writer;
use crate::{federation, routes, sweep};
use kairos_net::ratelimit::RateLimiter;
use kairos_net::request::ConnLimited;
use kairos_net::serve::{self, NoDelayTcp, ServeLimits};
use kairos_net::ApiError;
use kairos_proto::{Identity, PublicKey, ReplayGuard, SignedNodeRecord};
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Most signed-request nonces remembered at once (see [`ReplayGuard`]).
const REPLAY_CAPACITY: usize = 200_000;

/// State shared by every task of one directory.
pub struct App {
    pub cfg: DirectoryConfig,
    pub identity: Identity,
    pub store: Store,
    pub writer: Writer,
    pub nodes: Arc<NodeIndex>,
    pub replay: Mutex<ReplayGuard>,
    pub conn_limiter: RateLimiter<u64>,
    pub id_limiter: RateLimiter<PublicKey>,
    pub uploads: Semaphore,
    pub sibling_keys: HashSet<PublicKey>,
}

impl ConnLimited for App {
    fn conn_limiter(&self) -> &RateLimiter<u64> {
        &self.conn_limiter
    }
}

impl App {
    pub fn now(&self) -> u64 {
        self.cfg.clock.now()
    }

    pub fn policy(&self) -> Policy {
        Policy::new(&self.cfg, self.now())
    }

    /// One token from `key`'s per-identity bucket.
    pub fn limit_identity(&self, key: &PublicKey) -> Result<(), ApiError> {
        self.id_limiter
            .check(key)
            .map_err(ApiError::too_many_requests)
    }
}

/// Maps a storage failure to the `500 internal` response (details go to the log only).
pub fn internal(e: StoreError) -> ApiError {
    tracing::error!("storage failure while serving a request: {e}");
    match e {
        StoreError::Closed => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the directory is shutting down; try another directory",
        ),
        _ => ApiError::internal("the directory could not access its database; try again later"),
    }
}

/// A running directory. Dropping it without [`DirectoryHandle::shutdown`] still signals every
/// task to stop, but does not wait for them.
pub struct DirectoryHandle {
    local_addr: SocketAddr,
    public_key: PublicKey,
    inner: Option<Inner>,
}

struct Inner {
    stop: CancellationToken,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    app: Arc<App>,
    writer_done: oneshot::Receiver<()>,
}

impl DirectoryHandle {
    /// The address the API listens on (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The directory's identity key: what siblings list, and what signs its pulls.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Stops accepting connections, lets in-flight requests finish (up to `shutdown_grace`),
    /// stops federation and sweeping, flushes the writer and closes the database.
    pub async fn shutdown(mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        inner.stop.cancel();
        let _ = inner.server.await;
        for t in inner.tasks {
            let _ = t.await;
        }
        inner.app.writer.close().await;
        drop(inner.app);
        let _ = inner.writer_done.await;
        tracing::info!("directory {} stopped", self.local_addr);
    }
}

impl Drop for DirectoryHandle {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            inner.stop.cancel();
        }
    }
}

/// Binds `config.listen` and starts the directory.
pub async fn start(config: DirectoryConfig) -> Result<DirectoryHandle, DirectoryError> {
    config.check().map_err(DirectoryError::Config)?;
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| DirectoryError::Bind {
                addr: config.listen,
                source,
            })?;
    start_on(config, listener).await
}

/// Starts the directory on an already bound listener (`config.listen` is ignored). This is the
/// pluggable edge: an onion service forwards to a loopback listener like any other.
pub async fn start_on(
    config: DirectoryConfig,
    listener: TcpListener,
) -> Result<DirectoryHandle, DirectoryError> {
    config.check().map_err(DirectoryError::Config)?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| DirectoryError::Bind {
            addr: config.listen,
            source,
        })?;
    let home = config.home.clone();
    let ttl = config.node_ttl.as_secs();
    let now = config.clock.now();
    let (identity, store, index) = tokio::task::spawn_blocking(move || {
        let identity = kairos_net::home::load_or_create_identity(&home).map_err(|source| {
            DirectoryError::Home {
                path: home.clone(),
                source,
            }
        })?;
        let store = Store::open(&home)?;
        let index = NodeIndex::default();
        for bytes in store.node_records()? {
            match SignedNodeRecord::from_bytes(bytes) {
                Ok(rec) if rec.record().timestamp.saturating_add(ttl) > now => {
                    index.upsert(NodeEntry::new(&rec, ttl))
                }
                Ok(_) => {} // expired: the first sweep deletes it
                Err(e) => tracing::warn!("ignoring an unreadable stored node record: {e}"),
            }
        }
        Ok::<_, DirectoryError>((identity, store, index))
    })
    .await
    .map_err(|e| DirectoryError::Config(format!("startup task failed: {e}")))??;

    let index = Arc::new(index);
    let (writer, writer_done) =
        Writer::spawn(store.clone(), index.clone(), ttl).map_err(|source| {
            DirectoryError::Home {
                path: config.home.clone(),
                source,
            }
        })?;
    let mut clients = Vec::new();
    for s in &config.siblings {
        clients.push((
            s.clone(),
            config.transport.client(&format!("sync-{}", s.key))?,
        ));
    }
    config.transport.warn_if_direct();

    let l = &config.limits;
    let app = Arc::new(App {
        replay: Mutex::new(ReplayGuard::new(config.skew_secs(), REPLAY_CAPACITY)),
        conn_limiter: RateLimiter::new(
            l.per_connection.per_second,
            l.per_connection.burst,
            // Closed connections' buckets linger until refilled; leave room for churn.
            l.max_connections.saturating_mul(16).max(65_536),
        ),
        id_limiter: RateLimiter::new(l.per_identity.per_second, l.per_identity.burst, 200_000),
        uploads: Semaphore::new(l.max_concurrent_uploads),
        sibling_keys: config.siblings.iter().map(|s| s.key).collect(),
        identity,
        store,
        writer,
        nodes: index,
        cfg: config,
    });
    let public_key = app.identity.public();
    let stop = CancellationToken::new();
    let stop_rx = stop.clone();

    let router = routes::router(app.clone());
    let l = &app.cfg.limits;
    let limits = ServeLimits {
        max_connections: l.max_connections,
        header_timeout: l.header_timeout,
        shutdown_grace: l.shutdown_grace,
    };
    let server = tokio::spawn(serve::serve(
        NoDelayTcp(listener),
        router,
        limits,
        stop_rx.clone(),
    ));
    let mut tasks = vec![tokio::spawn(sweep::sweep_loop(
        app.clone(),
        stop_rx.clone(),
    ))];
    for (sibling, client) in clients {
        tasks.push(tokio::spawn(federation::pull_loop(
            app.clone(),
            sibling,
            client,
            stop_rx.clone(),
        )));
    }
    tracing::info!(
        "directory {public_key} listening on {local_addr} ({} siblings)",
        app.cfg.siblings.len()
    );
    Ok(DirectoryHandle {
        local_addr,
        public_key,
        inner: Some(Inner {
            stop,
            server,
            tasks,
            app,
            writer_done,
        }),
    })
}

/// Starts a directory, serves until `shutdown` resolves (e.g. [`kairos_net::shutdown_signal`]),
/// then shuts down gracefully.
pub async fn run(
    config: DirectoryConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DirectoryError> {
    let handle = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down directory {}", handle.local_addr());
    handle.shutdown().await;
    Ok(())
}
