//! Starting and stopping a node: the lifecycle of its tasks around one shared [`Node`].
//!
//! A running node is: the peer API accept loop, the local API accept loop (Unix socket), the
//! heartbeat loop ([`crate::heartbeat`]), the retention sweeper ([`crate::sweep`]) — all
//! tracked by one [`Service`] — and the writer thread ([`crate::writer`]).
//!
//! Invariants: the local socket appears only once everything behind it is ready, so a CLI
//! never talks to a half-started daemon; [`NodeHandle::shutdown`] returns only after both
//! servers stopped accepting, in-flight requests got `shutdown_grace` to finish, every task
//! returned, the writer committed what it had queued, the database is closed and the socket
//! removed — so the same home can be reopened at once.

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::membership::Membership;
use crate::peer_book::PeerBook;
use crate::peer_client::PeerClient;
use crate::socket::LocalSocket;
use crate::state::Node;
use crate::store::Store;
use crate::wire::Status;
use crate::{heartbeat, local_api, peer_api, sweep, writer};
use axum::serve::ListenerExt;
use kairos_directory_client::DirectoryClient;
use kairos_host::service::StopOnDrop;
use kairos_host::Service;
use kairos_net::ratelimit::RateLimiter;
use kairos_net::serve::{self, ServeLimits};
use kairos_proto::{Identity, PublicKey};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running node. Dropping it without [`NodeHandle::shutdown`] still signals every task to
/// stop, but does not wait for them.
pub struct NodeHandle {
    peer_addr: SocketAddr,
    socket_path: PathBuf,
    public_key: PublicKey,
    inner: Option<Inner>,
}

struct Inner {
    service: Service,
    _stop_on_drop: StopOnDrop,
    node: Arc<Node>,
    socket: LocalSocket,
    writer_done: oneshot::Receiver<()>,
}

impl NodeHandle {
    /// The bound peer API address (with the real port when configured with port 0).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The local API socket.
    pub fn socket_path(&self) -> PathBuf {
        self.socket_path.clone()
    }

    /// The node's identity key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The node's current status (as `kairos status` shows it).
    pub fn status(&self) -> Option<Status> {
        self.inner.as_ref().map(|i| i.node.status())
    }

    /// Opens connections to the node's directories in the background (a `GET /v1/info` each,
    /// see [`kairos_directory_client::DirectoryClient::warm_up`]), for a node about to join:
    /// over Tor the circuits to the directories are then built while the node's own onion
    /// service is being published, not after. Sends nothing about the node.
    pub fn warm_up_directories(&self) {
        if let Some(inner) = &self.inner {
            let (node, stop) = (inner.node.clone(), inner.service.token());
            inner.service.spawn(async move {
                let clients = node.membership.clients();
                let warm = futures::future::join_all(clients.iter().map(|c| c.warm_up()));
                tokio::select! {
                    _ = warm => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to `shutdown_grace`), stops the
    /// heartbeat and sweeper, flushes the writer, closes the database, removes the socket.
    pub async fn shutdown(mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        inner.service.shutdown().await;
        inner.node.writer.close().await;
        drop(inner.node);
        let _ = inner.writer_done.await;
        inner.socket.remove();
        tracing::info!("node {} stopped", self.peer_addr);
    }
}

/// Starts a node: opens its home and store, binds the peer API, creates the local socket,
/// and (with `auto_join`) subscribes to the directories once before returning.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    config.check().map_err(NodeError::Config)?;
    let (identity, store) = open_home(&config).await?;
    let listener = bind_peer_api(&config).await?;
    let peer_addr = listener.local_addr().map_err(|error| NodeError::Bind {
        addr: config.listen,
        error,
    })?;
    let (writer, writer_done) =
        writer::spawn(store.clone(), config.quota).map_err(|error| NodeError::Home {
            path: config.home.clone(),
            error,
        })?;
    config.transport.warn_if_direct();
    let node = Arc::new(build_state(config, identity, store, writer, peer_addr)?);
    let socket_path = node.cfg.socket_path();
    let (socket, local_listener) = match LocalSocket::bind(&socket_path).await {
        Ok(s) => s,
        Err(e) => {
            node.writer.close().await;
            return Err(e);
        }
    };
    let service = Service::new();
    spawn_tasks(&service, &node, listener, local_listener);
    let public_key = node.identity.public();
    tracing::info!(
        "node {public_key} serving peers on {peer_addr} (advertised as {}), local API on {}",
        node.advertise,
        socket_path.display()
    );
    if node.cfg.auto_join {
        let reached = heartbeat::join(&node).await;
        tracing::info!(
            "joined: {reached} of {} directories reached",
            node.cfg.directories.len()
        );
    }
    Ok(NodeHandle {
        peer_addr,
        socket_path,
        public_key,
        inner: Some(Inner {
            _stop_on_drop: service.stop_on_drop(),
            service,
            node,
            socket,
            writer_done,
        }),
    })
}

/// Creates the home if needed, loads (or creates) the identity and opens the piece store.
/// Opening takes the database lock: a second daemon on the same home stops here.
async fn open_home(config: &NodeConfig) -> Result<(Identity, Store), NodeError> {
    let home = config.home.clone();
    let cache = config.limits.db_cache_bytes;
    tokio::task::spawn_blocking(move || {
        let home_err = |error| NodeError::Home {
            path: home.clone(),
            error,
        };
        kairos_net::home::ensure_home(&home).map_err(home_err)?;
        let identity = kairos_net::home::load_or_create_identity(&home).map_err(home_err)?;
        let store = Store::open(&home, cache)?;
        Ok::<_, NodeError>((identity, store))
    })
    .await
    .map_err(|e| NodeError::Internal(format!("startup task failed: {e}")))?
}

async fn bind_peer_api(config: &NodeConfig) -> Result<TcpListener, NodeError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|error| NodeError::Bind {
            addr: config.listen,
            error,
        })
}

/// A client of `addrs` (failing over among them) on the node's transport and clock.
fn directory_client(config: &NodeConfig, addrs: Vec<String>) -> Result<DirectoryClient, NodeError> {
    Ok(DirectoryClient::new(config.transport.clone(), addrs)?.with_clock(config.clock.clone()))
}

fn build_state(
    config: NodeConfig,
    identity: Identity,
    store: Store,
    writer: writer::Writer,
    peer_addr: SocketAddr,
) -> Result<Node, NodeError> {
    let directory = if config.directories.is_empty() {
        None
    } else {
        Some(directory_client(&config, config.directories.clone())?)
    };
    // One client per directory, so membership can report each one's answer.
    let dir_clients = (config.directories.iter())
        .map(|d| directory_client(&config, vec![d.clone()]))
        .collect::<Result<Vec<_>, _>>()?;
    let advertise = (config.advertise.clone()).unwrap_or_else(|| peer_addr.to_string());
    let peers = Arc::new(
        PeerClient::new(
            &config.transport,
            config.upload_concurrency.max(config.download_concurrency),
        )?
        .with_self(advertise.clone(), peer_addr)?,
    );
    let l = &config.limits;
    let rate = l.requests_per_second;
    Ok(Node {
        identity,
        advertise,
        peer_addr,
        store,
        writer,
        conn_limiter: RateLimiter::new(rate, rate * 2.0, l.max_connections.saturating_mul(4)),
        key_limiter: RateLimiter::new(rate, rate * 2.0, 100_000),
        stores: kairos_net::request::BodyBudget::new(
            l.max_concurrent_stores
                .saturating_mul(crate::piece::MAX_BODY_LEN),
            "piece stores",
        ),
        membership: Membership::new(dir_clients),
        peer_book: PeerBook::default(),
        directory,
        peers,
        cfg: config,
        repairs: tokio::sync::Mutex::new(()),
    })
}

/// Starts both accept loops, the heartbeat and the sweeper under `service`.
fn spawn_tasks(
    service: &Service,
    node: &Arc<Node>,
    listener: TcpListener,
    local_listener: tokio::net::UnixListener,
) {
    let limits = |max_connections| ServeLimits {
        max_connections,
        header_timeout: node.cfg.limits.header_timeout,
        shutdown_grace: node.cfg.limits.shutdown_grace,
    };
    service.spawn(serve::serve(
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        peer_api::router(node.clone()),
        limits(node.cfg.limits.max_connections),
        service.token(),
    ));
    service.spawn(serve::serve(
        local_listener,
        local_api::router(node.clone(), service.token()),
        limits(64),
        service.token(),
    ));
    service.spawn(heartbeat::heartbeat_loop(node.clone(), service.token()));
    service.spawn(sweep::sweep_loop(node.clone(), service.token()));
    service.spawn(crate::repair::audit_loop(node.clone(), service.token()));
}

/// Starts a node, serves until `shutdown` resolves (e.g. [`kairos_net::shutdown_signal`]),
/// then shuts down gracefully.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let handle = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down node {}", handle.peer_addr());
    handle.shutdown().await;
    Ok(())
}
