//! Configuration of a node: where it keeps its state, where it listens, whom it talks to, how
//! much it stores and for how long, and which clock decides the time-lock.
//!
//! Every field has a documented default ([`NodeConfig::default`]); [`NodeConfig::check`]
//! refuses settings that cannot work before anything is opened. Time-lock, retention and
//! signed-request decisions read [`Clock`] only, never the system clock directly.

use kairos_net::Transport;
use kairos_seal::Params;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use kairos_lock::Chain;
pub use kairos_proto::clock::{Clock, ManualClock};

/// Default SOCKS port of a system tor, used by the default [`Transport`].
pub const DEFAULT_TOR_SOCKS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9050);

/// File name of the local API socket inside the home.
pub const SOCKET_FILE: &str = "kairos.sock";

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// State directory (mode 0700): `identity.key`, `node.redb`, `kairos.sock` (default
    /// `kairos-node`, relative to the working directory; the binary passes `--home`).
    pub home: PathBuf,
    /// Where the peer API listens (default `127.0.0.1:0`; in Tor mode the onion service
    /// forwards to it).
    pub listen: SocketAddr,
    /// `host:port` other nodes reach the peer API at (the onion address in Tor mode);
    /// `None` = the bound listen address.
    pub advertise: Option<String>,
    /// `host:port` of the directories to subscribe to and ask for peers (default none).
    pub directories: Vec<String>,
    /// How outgoing requests leave this process (default Tor through `127.0.0.1:9050`).
    pub transport: Transport,
    /// Bytes of pieces this node accepts from others (default 10 GiB).
    pub quota: u64,
    /// Refuse pieces whose release time is further ahead than this (default 365 days).
    pub max_release: Duration,
    /// Pieces are deleted this long after their release time (default 30 days).
    pub retention: Duration,
    /// Re-subscribe to the directories this often (default 60 s; must stay below the
    /// directories' node TTL, 5 min by default).
    pub heartbeat: Duration,
    /// How often expired pieces are swept (default 60 s).
    pub sweep_interval: Duration,
    /// A stored piece that no published placement references (no commit from its uploader,
    /// [`crate::pending`]) is dropped once its uploader key stored nothing for this long
    /// (default 6 h): junk from throwaway keys, and what interrupted uploads left behind.
    pub pending_window: Duration,
    /// Coding parameters of this node's uploads (default [`Params::default`]: k = 4, m = 2).
    pub params: Params,
    /// Pieces uploaded at once by a put (default 16).
    pub upload_concurrency: usize,
    /// Pieces downloaded at once by a get (default 16).
    pub download_concurrency: usize,
    /// A get asks for one more piece of a block each time this passes without the block
    /// completing, racing slow peers (default 5 s).
    pub spare_fetch_after: Duration,
    /// Subscribe to the directories at start (default false: wait for `kairos start`).
    pub auto_join: bool,
    /// The clock of the time-lock, retention and signed requests (default the system clock).
    pub clock: Clock,
    /// Limits on what peers may make this node spend.
    pub limits: PeerLimits,
    /// The drand chain new uploads are locked to unless a put asks for `peer` (default
    /// `None`: peer lock only). The binary sets drand quicknet in Tor mode and the devnet's
    /// test chain on a devnet. A get accepts manifests locked to quicknet or to this chain.
    pub lock_chain: Option<Chain>,
    /// How long a get keeps asking for a drand beacon that is due but not yet relayed before
    /// it gives up with "waiting for beacon round R" (default 60 s).
    pub beacon_wait: Duration,
    /// drand HTTP APIs (base URLs) a get asks for a beacon when no directory has it, through
    /// [`Self::transport`] (default none; the binary sets drand's public endpoints in Tor mode,
    /// fetched over Tor, and the devnet its test chain's server). Direct: loopback only.
    pub beacon_upstreams: Vec<String>,
    /// How often the daemon audits its own unreleased uploads and repairs what it finds
    /// missing (jittered ±25 %; default 4 h; zero turns scheduled audits off).
    pub audit_interval: Duration,
}

/// Resource limits of the peer API.
#[derive(Clone, Debug)]
pub struct PeerLimits {
    /// Store bodies held in memory at once, in maximal bodies (default 32 × 16 MiB): the
    /// budget counts bytes actually received, so stalled senders hold none of it.
    pub max_concurrent_stores: usize,
    /// Simultaneous peer connections (default 512; more wait in the accept queue).
    pub max_connections: usize,
    /// Requests per second per connection and per signing key, with a burst of twice that
    /// (default 500/s: generous for bulk uploads of 1 MiB pieces, a brake on floods).
    pub requests_per_second: f64,
    /// Time allowed to send request headers (default 20 s).
    pub header_timeout: Duration,
    /// Time allowed to send a request body (default 120 s: 16 MiB over one Tor circuit).
    pub body_timeout: Duration,
    /// Time in-flight requests get at shutdown before connections are cut (default 10 s).
    pub shutdown_grace: Duration,
    /// redb page cache of the piece store (default 8 MiB: pieces are read once, so a large
    /// cache only costs memory; measured no slower than 32 MiB).
    pub db_cache_bytes: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_concurrent_stores: 32,
            max_connections: 512,
            requests_per_second: 500.0,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(10),
            db_cache_bytes: 8 << 20,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            home: PathBuf::from("kairos-node"),
            listen: SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertise: None,
            directories: Vec::new(),
            transport: Transport::Tor {
                socks: DEFAULT_TOR_SOCKS,
            },
            quota: 10 << 30,
            max_release: Duration::from_secs(365 * 24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            heartbeat: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            pending_window: Duration::from_secs(6 * 3600),
            params: Params::default(),
            upload_concurrency: 16,
            download_concurrency: 16,
            spare_fetch_after: Duration::from_secs(5),
            auto_join: false,
            clock: Clock::system(),
            limits: PeerLimits::default(),
            lock_chain: None,
            beacon_wait: Duration::from_secs(60),
            audit_interval: Duration::from_secs(4 * 3600),
            beacon_upstreams: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// Refuses settings that cannot work, with a message naming the setting.
    pub fn check(&self) -> Result<(), String> {
        self.params
            .validate()
            .map_err(|e| format!("coding parameters: {e}"))?;
        if self.upload_concurrency == 0 || self.download_concurrency == 0 {
            return Err("upload and download concurrency must be at least 1".into());
        }
        if self.heartbeat.is_zero() || self.sweep_interval.is_zero() {
            return Err("heartbeat and sweep intervals must be positive".into());
        }
        if self.spare_fetch_after.is_zero() {
            return Err("spare_fetch_after must be positive".into());
        }
        if self.pending_window < Duration::from_secs(60) {
            return Err(format!(
                "pending_window must be at least 1 minute (got {} s): pieces of an upload still storing would be dropped",
                self.pending_window.as_secs()
            ));
        }
        if self.max_release.as_secs() == 0 {
            return Err("the maximum release horizon must be at least one second".into());
        }
        for d in &self.directories {
            kairos_proto::addr::validate(d).map_err(|e| format!("directory {d:?}: {e}"))?;
            if self.transport == Transport::Direct {
                kairos_net::check_direct_addr(d, false)
                    .map_err(|e| format!("directory {d:?}: {e}"))?;
            }
        }
        if let Some(a) = &self.advertise {
            kairos_proto::addr::validate(a)
                .map_err(|e| format!("advertised address {a:?}: {e}"))?;
        }
        let l = &self.limits;
        if l.max_concurrent_stores == 0 || l.max_connections == 0 {
            return Err("max_concurrent_stores and max_connections must be positive".into());
        }
        if l.requests_per_second.is_nan() || l.requests_per_second <= 0.0 {
            return Err("requests_per_second must be positive".into());
        }
        Ok(())
    }

    /// Path of the local API socket.
    /// The drand chain with info hash `hash` if this node can verify its beacons: quicknet
    /// (pinned in the binary) or the configured [`Self::lock_chain`].
    pub fn known_chain(&self, hash: &[u8; 32]) -> Option<Chain> {
        let quicknet = Chain::quicknet();
        [Some(quicknet), self.lock_chain.clone()]
            .into_iter()
            .flatten()
            .find(|c| c.hash() == hash)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.home.join(SOCKET_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().check().unwrap();
    }

    #[test]
    fn refuses_remote_directories_in_direct_mode() {
        let c = NodeConfig {
            transport: Transport::Direct,
            directories: vec!["192.0.2.1:7700".into()],
            ..NodeConfig::default()
        };
        assert!(c.check().is_err());
        let c = NodeConfig {
            upload_concurrency: 0,
            ..NodeConfig::default()
        };
        assert!(c.check().is_err());
    }
}
