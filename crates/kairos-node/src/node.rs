//! Starting and stopping a node: the shared state of its tasks, and their lifecycle.
//!
//! A running node is: the peer API accept loop, the local API accept loop (Unix socket), the
//! heartbeat loop ([`crate::membership`]), the retention sweeper ([`crate::sweep`]) and the
//! writer thread ([`crate::writer`]), all sharing one [`Node`].
//!
//! Invariants: the local socket appears only once everything behind it is ready, so a CLI
//! never talks to a half-started daemon; [`NodeHandle::shutdown`] returns only after both
//! servers stopped accepting, in-flight requests got `shutdown_grace` to finish, the writer
//! committed what it had queued, the database is closed and the socket removed — so the same
//! home can be reopened at once.

use crate::config::NodeConfig;
use crate::error::{NodeError, StoreError};
use crate::membership::{self, Membership};
use crate::peer_client::PeerClient;
use crate::socket::LocalSocket;
use crate::store::Store;
use crate::wire::Status;
use crate::writer::Writer;
use crate::{local_api, peer_api, sweep};
use axum::serve::ListenerExt;
use kairos_directory_client::DirectoryClient;
use kairos_net::ratelimit::RateLimiter;
use kairos_net::request::ConnLimited;
use kairos_net::serve::{self, ServeLimits};
use kairos_net::Transport;
use kairos_proto::{Identity, PublicKey, ReplayGuard};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

/// Most signed-request nonces remembered at once.
const REPLAY_CAPACITY: usize = 200_000;

/// State shared by every task of one node.
pub struct Node {
    pub cfg: NodeConfig,
    pub identity: Identity,
    /// `host:port` peers reach us at.
    pub advertise: String,
    pub peer_addr: SocketAddr,
    pub store: Store,
    pub writer: Writer,
    pub replay: Mutex<ReplayGuard>,
    pub conn_limiter: RateLimiter<u64>,
    pub key_limiter: RateLimiter<PublicKey>,
    pub stores: Semaphore,
    pub membership: Membership,
    /// A client of all configured directories (`None` if none are configured).
    pub directory: Option<DirectoryClient>,
    pub peers: PeerClient,
}

impl ConnLimited for Node {
    fn conn_limiter(&self) -> &RateLimiter<u64> {
        &self.conn_limiter
    }
}

impl Node {
    /// The node's clock, Unix seconds.
    pub fn now(&self) -> u64 {
        self.cfg.clock.now()
    }

    pub fn skew(&self) -> u64 {
        kairos_proto::request::DEFAULT_MAX_SKEW
    }

    pub fn status(&self) -> Status {
        Status {
            key: self.identity.public().to_text(),
            advertise: self.advertise.clone(),
            listen: self.peer_addr.to_string(),
            transport: match &self.cfg.transport {
                Transport::Direct => "direct".into(),
                Transport::Tor { socks } => format!("tor (socks {socks})"),
            },
            joined: self.membership.joined(),
            directories: self.membership.directories(),
            peers_known: self.membership.peers_known(),
            pieces_held: self.store.piece_count(),
            bytes_used: self.store.bytes_used(),
            quota: self.cfg.quota,
            now: self.now(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// A running node. Dropping it without [`NodeHandle::shutdown`] still signals every task to
/// stop, but does not wait for them.
pub struct NodeHandle {
    peer_addr: SocketAddr,
    socket_path: PathBuf,
    public_key: PublicKey,
    inner: Option<Inner>,
}

struct Inner {
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
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

    /// Stops accepting, lets in-flight requests finish (up to `shutdown_grace`), stops the
    /// heartbeat and sweeper, flushes the writer, closes the database, removes the socket.
    pub async fn shutdown(mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let _ = inner.stop.send(true);
        for s in inner.servers {
            let _ = s.await;
        }
        for t in inner.tasks {
            let _ = t.await;
        }
        inner.node.writer.close().await;
        drop(inner.node);
        let _ = inner.writer_done.await;
        inner.socket.remove();
        tracing::info!("node {} stopped", self.peer_addr);
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            let _ = inner.stop.send(true);
        }
    }
}

fn home_error(cfg: &NodeConfig) -> impl Fn(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Home {
        path: cfg.home.clone(),
        source,
    }
}

/// Starts a node: opens its home and store, binds the peer API, creates the local socket,
/// and (with `auto_join`) subscribes to the directories once before returning.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    config.check().map_err(NodeError::Config)?;
    let home = config.home.clone();
    let cache = config.limits.db_cache_bytes;
    let (identity, store) = tokio::task::spawn_blocking(move || {
        let home_err = |source| NodeError::Home {
            path: home.clone(),
            source,
        };
        kairos_net::home::ensure_home(&home).map_err(home_err)?;
        let identity = kairos_net::home::load_or_create_identity(&home).map_err(home_err)?;
        // Opening takes the database lock: a second daemon on the same home stops here.
        let store = Store::open(&home, cache)?;
        Ok::<_, NodeError>((identity, store))
    })
    .await
    .map_err(|e| NodeError::Internal(format!("startup task failed: {e}")))??;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
    let peer_addr = listener.local_addr().map_err(|source| NodeError::Bind {
        addr: config.listen,
        source,
    })?;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| peer_addr.to_string());

    let (writer, writer_done) =
        Writer::spawn(store.clone(), config.quota).map_err(home_error(&config))?;
    let directory = if config.directories.is_empty() {
        None
    } else {
        Some(
            DirectoryClient::new(config.transport.clone(), config.directories.clone())?
                .with_clock(config.clock.clone()),
        )
    };
    let mut dir_clients = Vec::new();
    for d in &config.directories {
        dir_clients.push(
            DirectoryClient::new(config.transport.clone(), vec![d.clone()])?
                .with_clock(config.clock.clone()),
        );
    }
    let peers = PeerClient::new(
        &config.transport,
        config.upload_concurrency.max(config.download_concurrency),
    )?;
    config.transport.warn_if_direct();

    let l = &config.limits;
    let rate = l.requests_per_second;
    let node = Arc::new(Node {
        identity,
        advertise,
        peer_addr,
        store,
        writer,
        replay: Mutex::new(ReplayGuard::new(
            kairos_proto::request::DEFAULT_MAX_SKEW,
            REPLAY_CAPACITY,
        )),
        conn_limiter: RateLimiter::new(rate, rate * 2.0, l.max_connections.saturating_mul(4)),
        key_limiter: RateLimiter::new(rate, rate * 2.0, 100_000),
        stores: Semaphore::new(l.max_concurrent_stores),
        membership: Membership::new(dir_clients),
        directory,
        peers,
        cfg: config,
    });

    let socket_path = node.cfg.socket_path();
    let (socket, local_listener) = match LocalSocket::bind(&socket_path).await {
        Ok(s) => s,
        Err(e) => {
            node.writer.close().await;
            return Err(e);
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let limits = |max_connections| ServeLimits {
        max_connections,
        header_timeout: node.cfg.limits.header_timeout,
        shutdown_grace: node.cfg.limits.shutdown_grace,
    };
    let peer_server = tokio::spawn(serve::serve(
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        peer_api::router(node.clone()),
        limits(node.cfg.limits.max_connections),
        stop_rx.clone(),
    ));
    let local_server = tokio::spawn(serve::serve(
        local_listener,
        local_api::router(node.clone(), stop_rx.clone()),
        limits(64),
        stop_rx.clone(),
    ));
    let tasks = vec![
        tokio::spawn(membership::heartbeat_loop(node.clone(), stop_rx.clone())),
        tokio::spawn(sweep::sweep_loop(node.clone(), stop_rx.clone())),
    ];
    let public_key = node.identity.public();
    tracing::info!(
        "node {public_key} serving peers on {peer_addr} (advertised as {}), local API on {}",
        node.advertise,
        socket_path.display()
    );
    if node.cfg.auto_join {
        let reached = membership::join(&node).await;
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
            stop,
            servers: vec![peer_server, local_server],
            tasks,
            node,
            socket,
            writer_done,
        }),
    })
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

impl From<StoreError> for kairos_net::ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("piece store failure while serving a request: {e}");
        match e {
            StoreError::Closed => kairos_net::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down; try another node",
            ),
            _ => kairos_net::ApiError::new(
                axum::http::StatusCode::INSUFFICIENT_STORAGE,
                "storage_failed",
                "the node could not write or read its piece database; try another node",
            ),
        }
    }
}
