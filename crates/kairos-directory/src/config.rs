//! Configuration of a directory server: where it keeps its data, whom it federates with, how
//! long it remembers things, how much it accepts, and which clock it trusts.
//!
//! Every field has a documented default ([`DirectoryConfig::default`]); [`DirectoryConfig::check`]
//! refuses inconsistent settings before anything is opened. Time-lock and expiry decisions read
//! [`Clock`] only, never the system clock directly, so tests can move time with
//! [`ManualClock`](kairos_proto::clock::ManualClock).

use kairos_lock::Chain;
use kairos_net::Transport;
use kairos_proto::clock::Clock;
use kairos_proto::PublicKey;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Default listen address (loopback: in Tor mode the onion service forwards to it).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT);
/// Default TCP port of the directory API.
pub const DEFAULT_PORT: u16 = 7700;
/// Default SOCKS port of a system tor, used by the default [`Transport`].
pub const DEFAULT_TOR_SOCKS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9050);

/// A sibling directory: polled for new records, and allowed to poll this one.
///
/// The relation is symmetric: list each other on both sides. The text form used by flags and
/// files is `<key text>@<host:port>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    /// `host:port` of the sibling's directory API (its onion address in Tor mode).
    pub addr: String,
    /// The sibling directory's identity: signs its pulls, and is the only key it may pull with.
    pub key: PublicKey,
}

impl FromStr for Sibling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, addr) = s
            .trim()
            .split_once('@')
            .ok_or_else(|| format!("sibling {s:?} must be written <directory key>@<host:port>"))?;
        let key = PublicKey::from_text(key)
            .map_err(|e| format!("sibling {s:?}: bad directory key: {e}"))?;
        kairos_proto::addr::validate(addr)
            .map_err(|e| format!("sibling {s:?}: bad address: {e}"))?;
        Ok(Sibling {
            addr: addr.to_owned(),
            key,
        })
    }
}

impl fmt::Display for Sibling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.key, self.addr)
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Resource limits. Every one bounds memory, disk or CPU that a remote party can make the
/// directory spend.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest `POST /v1/nodes` body (default [`kairos_proto::record::MAX_RECORD_BYTES`]).
    pub max_record_bytes: usize,
    /// Largest `PUT /v1/manifests/{id}` body (default
    /// [`kairos_proto::manifest::MAX_MANIFEST_BYTES`], 32 MiB).
    pub max_manifest_bytes: usize,
    /// Most nodes one `GET /v1/nodes` returns (default 256); larger `count`s are clamped.
    pub max_list: usize,
    /// Most live node records kept (default 100 000); beyond it new nodes get `503 full`.
    pub max_nodes: usize,
    /// Reachability probes in flight at once, per kind (subscriptions; relayed and loaded
    /// records) (default 16); a subscription beyond it gets `503 busy`.
    pub max_reach_probes: usize,
    /// Most simultaneous client connections (default 1024); more wait in the accept queue.
    pub max_connections: usize,
    /// Manifest and placement bodies held in memory at once, in maximal bodies (default 8 ×
    /// 32 MiB); counted in bytes received, so stalled senders hold none of it.
    pub max_concurrent_uploads: usize,
    /// Requests per connection (default 100/s, burst 200).
    pub per_connection: RateLimit,
    /// Writes and signed reads per identity (record key, manifest uploader, request signer)
    /// (default 5/s, burst 20).
    pub per_identity: RateLimit,
    /// Most items in one federation page (default 512).
    pub sync_page_items: usize,
    /// Most record/manifest bytes in one federation page (default 8 MiB; a page always holds at
    /// least one item, so one maximal manifest still travels).
    pub sync_page_bytes: usize,
    /// Most bytes of manifests stored in all (default 8 GiB). A publish or a relayed manifest
    /// that would go over it is refused (`507 directory_full`) until expiry makes room:
    /// throwaway keys can fill it, but not the disk.
    pub manifest_store_bytes: u64,
    /// Signed-request nonces remembered per signing key (default
    /// [`kairos_proto::request::DEFAULT_NONCES_PER_KEY`]); a key over it gets `429 busy`,
    /// other keys are unaffected.
    pub nonces_per_key: usize,
    /// Beacons kept per chain (default 100 000: the newest rounds; 3.5 days of quicknet).
    pub max_beacons_per_chain: u64,
    /// Upstream beacon fetches in flight at once (default 16); a miss beyond it gets `503 busy`.
    pub max_beacon_fetches: usize,
    /// redb's in-process page cache, bytes (default 1 GiB, redb's own default). It fills up to
    /// this size in a large directory; see [`crate::store`] for what a smaller one costs.
    pub db_cache_bytes: usize,
    /// Time allowed to send request headers (default 20 s).
    pub header_timeout: Duration,
    /// Time allowed to send a request body (default 120 s: 32 MiB over one Tor circuit).
    pub body_timeout: Duration,
    /// Time in-flight requests get to finish at shutdown before connections are cut (default 10 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: kairos_proto::record::MAX_RECORD_BYTES,
            max_manifest_bytes: kairos_proto::manifest::MAX_MANIFEST_BYTES,
            max_list: 256,
            max_nodes: 100_000,
            max_connections: 1024,
            max_reach_probes: 16,
            max_concurrent_uploads: 8,
            nonces_per_key: kairos_proto::request::DEFAULT_NONCES_PER_KEY,
            manifest_store_bytes: 8 << 30,
            per_connection: RateLimit {
                per_second: 100.0,
                burst: 200.0,
            },
            per_identity: RateLimit {
                per_second: 5.0,
                burst: 20.0,
            },
            sync_page_items: 512,
            sync_page_bytes: 8 << 20,
            max_beacons_per_chain: 100_000,
            max_beacon_fetches: 16,
            db_cache_bytes: 1 << 30,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything a directory server needs to start.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// Data directory: `directory.redb` and `identity.key` live here (default `kairos-directory`,
    /// relative to the working directory; the binary passes `--home` / `KAIROS_HOME`).
    pub home: PathBuf,
    /// Where the HTTP API listens (default `127.0.0.1:7700`; tests use port 0).
    pub listen: SocketAddr,
    /// How federation requests leave this process (default Tor through `127.0.0.1:9050`).
    pub transport: Transport,
    /// Sibling directories to federate with (default none).
    pub siblings: Vec<Sibling>,
    /// A node record lives this long after its timestamp without a newer heartbeat (default 5 min).
    pub node_ttl: Duration,
    /// A manifest is deleted this long after its release time (default 30 days).
    pub manifest_retention: Duration,
    /// Latest release time accepted, from now (default 400 days: nodes accept releases up to
    /// 365 days ahead by default). A manifest releasing later would hold storage for longer
    /// than anyone vouched for.
    pub manifest_max_release: Duration,
    /// Accepted distance between a signed timestamp and this directory's clock (default 300 s).
    pub max_skew: Duration,
    /// Pause between federation pulls from one sibling that is up to date (default 30 s).
    pub sync_interval: Duration,
    /// Longest pause before retrying a sibling that keeps failing (default 10 min).
    pub sync_max_backoff: Duration,
    /// Timeout of one federation request (default 60 s: circuits to a new onion are slow).
    pub sync_timeout: Duration,
    /// Pause between expiry sweeps (default 60 s).
    pub sweep_interval: Duration,
    /// List a node only after reaching it at the address its record advertises and checking
    /// its signed answer to a fresh challenge (default true; see [`crate::reach`]). Off only for
    /// tests of a directory alone with fabricated records.
    pub reach_nodes: bool,
    /// Timeout of one reachability probe (default 60 s: a first circuit to an onion is slow).
    pub reach_timeout: Duration,
    /// Accept node records whose address is a loopback IP (development networks only; default
    /// false: only `.onion` addresses derived from the record's own key).
    pub allow_loopback_nodes: bool,
    /// Relay beacons of drand quicknet (pinned in the binary) at `GET /v1/beacons/…`
    /// (default true).
    pub serve_quicknet: bool,
    /// Base URLs of drand HTTP APIs that quicknet beacons are fetched from on a miss
    /// (`{url}/{chain hash}/public/{round}`), through [`DirectoryConfig::transport`]. `None`
    /// (default): by transport — over Tor [`DRAND_PUBLIC_UPSTREAMS`], direct none.
    pub beacon_upstreams: Option<Vec<String>>,
    /// Local test chains whose beacons are relayed too (devnet, demo, tests), each with its
    /// own upstreams (default none).
    pub test_chains: Vec<TestChainSource>,
    /// Timeout of one upstream beacon request (default 30 s: a new Tor circuit is slow).
    pub beacon_timeout: Duration,
    /// The clock every time decision uses (default the system clock).
    pub clock: Clock,
    pub limits: Limits,
}

/// drand's public HTTP API endpoints (League of Entropy), quicknet's default upstreams in Tor
/// mode. Only ever reached through Tor.
pub const DRAND_PUBLIC_UPSTREAMS: [&str; 4] = [
    "https://api.drand.sh",
    "https://api2.drand.sh",
    "https://api3.drand.sh",
    "https://drand.cloudflare.com",
];

/// A test chain the directory relays, and where its beacons come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestChainSource {
    /// A kairos test chain ([`Chain::is_test`]).
    pub chain: Chain,
    /// Base URLs of drand-format beacon servers for it (the devnet's beacon server).
    pub upstreams: Vec<String>,
}

/// One chain the directory relays: the chain and its upstreams, resolved for the transport.
#[derive(Clone, Debug)]
pub struct RelayedChain {
    pub chain: Chain,
    pub upstreams: Vec<String>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            home: PathBuf::from("kairos-directory"),
            listen: DEFAULT_LISTEN,
            transport: Transport::Tor {
                socks: DEFAULT_TOR_SOCKS,
            },
            siblings: Vec::new(),
            node_ttl: Duration::from_secs(5 * 60),
            manifest_retention: Duration::from_secs(30 * 24 * 3600),
            manifest_max_release: Duration::from_secs(400 * 24 * 3600),
            max_skew: Duration::from_secs(kairos_proto::request::DEFAULT_MAX_SKEW),
            sync_interval: Duration::from_secs(30),
            sync_max_backoff: Duration::from_secs(600),
            sync_timeout: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            reach_nodes: true,
            reach_timeout: Duration::from_secs(60),
            allow_loopback_nodes: false,
            serve_quicknet: true,
            beacon_upstreams: None,
            test_chains: Vec::new(),
            beacon_timeout: Duration::from_secs(30),
            clock: Clock::system(),
            limits: Limits::default(),
        }
    }
}

impl DirectoryConfig {
    /// Refuses settings that cannot work, with a message naming the setting.
    pub fn check(&self) -> Result<(), String> {
        if self.node_ttl.as_secs() == 0 {
            return Err("node TTL must be at least one second".into());
        }
        if self.sync_interval.is_zero()
            || self.sweep_interval.is_zero()
            || self.sync_timeout.is_zero()
        {
            return Err("sync interval, sync timeout and sweep interval must be positive".into());
        }
        let l = &self.limits;
        if l.max_list == 0 || l.max_nodes == 0 || l.max_connections == 0 {
            return Err("max_list, max_nodes and max_connections must be positive".into());
        }
        if l.max_concurrent_uploads == 0 || l.sync_page_items == 0 {
            return Err("max_concurrent_uploads and sync_page_items must be positive".into());
        }
        for r in [l.per_connection, l.per_identity] {
            if !(r.per_second > 0.0 && r.burst >= 1.0) {
                return Err("rate limits need per_second > 0 and burst >= 1".into());
            }
        }
        if l.max_beacons_per_chain == 0
            || l.max_beacon_fetches == 0
            || self.beacon_timeout.is_zero()
        {
            return Err(
                "max_beacons_per_chain, max_beacon_fetches and beacon_timeout must be positive"
                    .into(),
            );
        }
        self.check_beacon_chains()?;
        let mut keys = std::collections::HashSet::new();
        for s in &self.siblings {
            kairos_proto::addr::validate(&s.addr)
                .map_err(|e| format!("sibling {s}: bad address: {e}"))?;
            if self.transport == Transport::Direct {
                kairos_net::check_direct_addr(&s.addr, false)
                    .map_err(|e| format!("sibling {s}: {e}"))?;
            }
            if !keys.insert(s.key) {
                return Err(format!("sibling key {} is listed twice", s.key));
            }
        }
        Ok(())
    }

    /// The chains relayed at `GET /v1/beacons/…`, with their upstreams for this transport.
    pub fn relayed_chains(&self) -> Vec<RelayedChain> {
        let mut out = Vec::new();
        if self.serve_quicknet {
            let upstreams = match (&self.beacon_upstreams, &self.transport) {
                (Some(list), _) => list.clone(),
                (None, Transport::Tor { .. }) => DRAND_PUBLIC_UPSTREAMS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                (None, Transport::Direct) => Vec::new(),
            };
            out.push(RelayedChain {
                chain: Chain::quicknet(),
                upstreams,
            });
        }
        out.extend(self.test_chains.iter().map(|t| RelayedChain {
            chain: t.chain.clone(),
            upstreams: t.upstreams.clone(),
        }));
        out
    }

    fn check_beacon_chains(&self) -> Result<(), String> {
        let mut hashes = std::collections::HashSet::new();
        for t in &self.test_chains {
            if !t.chain.is_test() {
                return Err(format!(
                    "chain {} is not a kairos test chain; quicknet is built in (serve_quicknet, beacon_upstreams)",
                    t.chain.hash_hex()
                ));
            }
        }
        for r in self.relayed_chains() {
            if !hashes.insert(*r.chain.hash()) {
                return Err(format!(
                    "beacon chain {} is listed twice",
                    r.chain.hash_hex()
                ));
            }
            for url in &r.upstreams {
                check_upstream(url, &self.transport)
                    .map_err(|e| format!("beacon upstream {url:?}: {e}"))?;
            }
        }
        Ok(())
    }

    pub(crate) fn skew_secs(&self) -> u64 {
        self.max_skew.as_secs()
    }
}

/// An upstream is an `http` or `https` base URL with a host and no query; with the direct
/// transport its host must be a loopback address.
fn check_upstream(url: &str, transport: &Transport) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("only http and https URLs are supported".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err("a base URL has no query, fragment or credentials".into());
    }
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let port = parsed
        .port_or_known_default()
        .ok_or("the URL has no port")?;
    if *transport == Transport::Direct {
        // `host_str` keeps the brackets of an IPv6 literal, as `host:port` needs.
        kairos_net::check_direct_addr(&format!("{host}:{port}"), false)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::Identity;

    #[test]
    fn sibling_text_round_trips() {
        let key = Identity::generate().public();
        let s: Sibling = format!("{key}@127.0.0.1:7701").parse().unwrap();
        assert_eq!(s.key, key);
        assert_eq!(s.addr, "127.0.0.1:7701");
        assert_eq!(s.to_string().parse::<Sibling>().unwrap(), s);
        assert!("127.0.0.1:7701".parse::<Sibling>().is_err());
        assert!(format!("{key}@nohost").parse::<Sibling>().is_err());
        assert!("abc@127.0.0.1:1".parse::<Sibling>().is_err());
    }

    #[test]
    fn defaults_are_valid_and_direct_mode_refuses_remote_siblings() {
        let mut c = DirectoryConfig::default();
        c.check().unwrap();
        c.transport = Transport::Direct;
        c.siblings.push(Sibling {
            addr: "192.0.2.1:7700".into(),
            key: Identity::generate().public(),
        });
        assert!(c.check().is_err());
    }
}
