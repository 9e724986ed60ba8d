//! Starting and stopping a directory: the lifecycle of its tasks.
//!
//! A running directory is: the HTTP accept loop ([`kairos_net::serve`]), one federation puller
//! per sibling ([`crate::federation`]) and the expiry sweeper ([`crate::sweep`]), all tracked by
//! one [`Service`] (cancellation token + task tracker), and the writer thread
//! ([`crate::writer`]); they share one [`App`] ([`crate::state`]). This module imports them all
//! and none of them imports it: start-up is the top of the module graph.
//!
//! Invariant: [`DirectoryHandle::shutdown`] returns only after every task has ended (in that
//! order: tasks, then the writer, so no write is submitted after it closed), in-flight
//! requests were given `shutdown_grace` to finish, the writer committed what it had queued, and
//! the database file is closed — so the same home can be reopened at once (restarts in tests,
//! or a supervisor restarting the process).

use crate::beacons::BeaconRelay;
use crate::config::{DirectoryConfig, Sibling};
use crate::error::DirectoryError;
use crate::nodes::{NodeEntry, NodeIndex};
use crate::reach::Reach;
use crate::state::App;
use crate::store::Store;
use crate::writer;
use crate::{federation, routes, sweep};
use kairos_host::service::StopOnDrop;
use kairos_host::{Service, StoreError};
use kairos_net::serve::{self, NoDelayTcp, ServeLimits};
use kairos_proto::{Identity, PublicKey, SignedNodeRecord};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running directory. Dropping it without [`DirectoryHandle::shutdown`] still signals every
/// task to stop, but does not wait for them.
pub struct DirectoryHandle {
    local_addr: SocketAddr,
    public_key: PublicKey,
    inner: Option<Inner>,
}

struct Inner {
    /// The accept loop, the sweeper and the pullers.
    service: Service,
    /// Stops the tasks (without waiting) if the handle is dropped without `shutdown`.
    _stop_on_drop: StopOnDrop,
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
        inner.service.shutdown().await;
        // Every task that could submit a write has returned: what is queued is all there is.
        inner.app.writer.close().await;
        drop(inner.app);
        let _ = inner.writer_done.await;
        tracing::info!("directory {} stopped", self.local_addr);
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
    let (identity, store, index) = open_home(&config).await?;
    let index = Arc::new(index);
    let ttl = config.node_ttl.as_secs();
    let (writer, writer_done) =
        writer::spawn(store.clone(), index.clone(), ttl).map_err(|source| {
            DirectoryError::Home {
                path: config.home.clone(),
                source,
            }
        })?;
    let clients = sibling_clients(&config)?;
    config.transport.warn_if_direct();
    let service = Service::new();
    let beacons = Arc::new(BeaconRelay::new(
        &config,
        store.clone(),
        writer.clone(),
        service.clone(),
    )?);
    warn_if_test_chains(&config);
    let l = &config.limits;
    let (reach, reach_queue) =
        Reach::new(&config.transport, config.reach_timeout, l.max_reach_probes)?;
    let reach = Arc::new(reach);
    if config.reach_nodes {
        for (key, addr) in index.unreached() {
            reach.enqueue(key, addr);
        }
        service.spawn(reach.clone().run(
            reach_queue,
            index.clone(),
            config.clock.clone(),
            service.token(),
        ));
    }

    let app = Arc::new(App::new(
        config, identity, store, writer, index, beacons, reach,
    ));
    let public_key = app.identity.public();
    spawn_tasks(&service, &app, listener, clients);
    tracing::info!(
        "directory {public_key} listening on {local_addr} ({} siblings)",
        app.cfg.siblings.len()
    );
    Ok(DirectoryHandle {
        local_addr,
        public_key,
        inner: Some(Inner {
            _stop_on_drop: service.stop_on_drop(),
            service,
            app,
            writer_done,
        }),
    })
}

/// Says on every start that test chains are relayed: their beacons are signed by a local key,
/// not by drand, so a lock on them protects nothing outside a development network.
fn warn_if_test_chains(config: &DirectoryConfig) {
    for t in &config.test_chains {
        tracing::warn!(
            "TEST CHAIN: relaying beacons of local test chain {} (not drand; development and tests only)",
            t.chain.hash_hex()
        );
    }
}

/// Loads (or creates) the identity, opens the database and rebuilds the node index from it,
/// on a blocking thread (file I/O and one signature check per stored record).
async fn open_home(
    config: &DirectoryConfig,
) -> Result<(Identity, Store, NodeIndex), DirectoryError> {
    let home = config.home.clone();
    let ttl = config.node_ttl.as_secs();
    let now = config.clock.now();
    let require_reach = config.reach_nodes;
    let cache_bytes = config.limits.db_cache_bytes;
    tokio::task::spawn_blocking(move || {
        let identity = kairos_net::home::load_or_create_identity(&home).map_err(|source| {
            DirectoryError::Home {
                path: home.clone(),
                source,
            }
        })?;
        let store = Store::open(&home, cache_bytes)?;
        let index = load_index(&store, ttl, now, require_reach)?;
        Ok((identity, store, index))
    })
    .await
    .map_err(|e| DirectoryError::Config(format!("startup task failed: {e}")))?
}

/// The in-memory index of the stored records that are still live at `now` (none of them
/// reached yet: [`start_on`] queues their probes).
fn load_index(
    store: &Store,
    ttl: u64,
    now: u64,
    require_reach: bool,
) -> Result<NodeIndex, StoreError> {
    let index = NodeIndex::new(require_reach);
    for bytes in store.node_records()? {
        match SignedNodeRecord::from_bytes(bytes) {
            Ok(rec) if rec.record().timestamp.saturating_add(ttl) > now => {
                index.upsert(NodeEntry::new(&rec, ttl))
            }
            Ok(_) => {} // expired: the first sweep deletes it
            Err(e) => tracing::warn!("ignoring an unreadable stored node record: {e}"),
        }
    }
    Ok(index)
}

/// One HTTP client per sibling, each with its own connection pool (and, over Tor, circuits).
fn sibling_clients(
    config: &DirectoryConfig,
) -> Result<Vec<(Sibling, reqwest::Client)>, DirectoryError> {
    config
        .siblings
        .iter()
        .map(|s| {
            Ok((
                s.clone(),
                config.transport.client(&format!("sync-{}", s.key))?,
            ))
        })
        .collect()
}

/// Spawns the accept loop, the sweeper and one puller per sibling under `service`.
fn spawn_tasks(
    service: &Service,
    app: &Arc<App>,
    listener: TcpListener,
    clients: Vec<(Sibling, reqwest::Client)>,
) {
    let l = &app.cfg.limits;
    let limits = ServeLimits {
        max_connections: l.max_connections,
        header_timeout: l.header_timeout,
        shutdown_grace: l.shutdown_grace,
    };
    let router = routes::router(app.clone());
    service.spawn(serve::serve(
        NoDelayTcp(listener),
        router,
        limits,
        service.token(),
    ));
    service.spawn(sweep::sweep_loop(app.clone(), service.token()));
    for (sibling, client) in clients {
        service.spawn(federation::pull_loop(
            app.clone(),
            sibling,
            client,
            service.token(),
        ));
    }
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
