//! The state every task of one running node shares: configuration, identity, the piece store
//! and its writer, the peer-API limits, membership, and the clients for directories and peers.
//!
//! Invariant: a [`Node`] is built once by [`crate::start`] and never mutated after, except
//! through the interior-mutable parts it names (store counters, rate limiters,
//! membership); nothing here starts or stops tasks — that is [`crate::start`]'s business.

use crate::config::NodeConfig;
use crate::membership::Membership;
use crate::ops::OpError;
use crate::peer_book::PeerBook;
use crate::peer_client::PeerClient;
use crate::store::Store;
use crate::wire::Status;
use crate::writer::Writer;
use kairos_directory_client::DirectoryClient;
use kairos_net::ratelimit::RateLimiter;
use kairos_net::request::ConnLimited;
use kairos_net::Transport;
use kairos_proto::{Identity, PublicKey};
use std::net::SocketAddr;
use std::sync::Arc;

/// State shared by every task of one node.
pub struct Node {
    pub cfg: NodeConfig,
    pub identity: Identity,
    /// `host:port` peers reach us at.
    pub advertise: String,
    pub peer_addr: SocketAddr,
    pub store: Store,
    pub writer: Writer,
    pub conn_limiter: RateLimiter<u64>,
    pub key_limiter: RateLimiter<PublicKey>,
    pub stores: kairos_net::request::BodyBudget,
    pub membership: Membership,
    /// How long each peer has been seen listed (placement prefers older nodes).
    pub peer_book: PeerBook,
    /// A client of all configured directories (`None` if none are configured).
    pub directory: Option<DirectoryClient>,
    /// Shared with background tasks that outlive a request ([`crate::commits`]).
    pub peers: Arc<PeerClient>,
    /// Held while a repair runs: a scheduled and a requested repair of the same file must not
    /// rebuild the same piece twice and race for the same placement seq.
    pub repairs: tokio::sync::Mutex<()>,
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

    /// The client of every configured directory, or why an operation cannot run without one.
    pub fn directories(&self) -> Result<DirectoryClient, OpError> {
        self.directory.clone().ok_or_else(|| {
            OpError::DirectoryUnreachable(
                "this node has no directories configured; start the daemon with --directory".into(),
            )
        })
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
