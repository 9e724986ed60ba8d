//! The directory's TOML configuration file, for the binary's `--config` (flags and environment
//! variables override it; `home` and the transport come from the binary's own flags).
//!
//! Every key is optional; absent keys keep the [`DirectoryConfig`] defaults. Durations are
//! human-readable (`"30s"`, `"5m"`, `"30days"`). Unknown keys are an error, so a typo is not
//! silently ignored.
//!
//! ```toml
//! listen = "127.0.0.1:7700"
//! siblings = ["<directory key>@<host:port>"]
//! node_ttl = "5m"
//! manifest_retention = "30days"
//! manifest_max_release = "400days"
//! sync_interval = "30s"
//! allow_loopback_nodes = false
//! serve_quicknet = true
//! beacon_upstreams = ["https://api.drand.sh"]   # quicknet's; default: by transport
//! beacon_timeout = "30s"
//!
//! [[test_chains]]                        # a local test chain (devnet), repeatable
//! info_file = "/path/to/chain-info.json" # its drand chain info; or `info = '{…}'` (JSON text),
//!                                        # or `info = { public_key = "…", … }` (a table)
//! upstreams = ["http://127.0.0.1:7801"]  # its beacon server(s)
//!
//! [limits]
//! max_nodes = 100000
//! manifest_store_bytes = 8589934592
//! per_identity = { per_second = 5.0, burst = 20.0 }
//! max_beacons_per_chain = 100000
//! db_cache_bytes = 67108864                # redb page cache (memory vs lookup CPU)
//! ```

use crate::config::{DirectoryConfig, RateLimit, Sibling, TestChainSource};
use kairos_lock::{Chain, ChainInfo};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration like \"30s\" or \"5m\": {e}"
        ))
    })
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub per_second: f64,
    pub burst: f64,
}

/// `[limits]` of the file; see [`crate::Limits`] for meanings and defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_list: Option<usize>,
    pub max_nodes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
    pub manifest_store_bytes: Option<u64>,
    pub per_connection: Option<RateLimitFile>,
    pub per_identity: Option<RateLimitFile>,
    pub max_beacons_per_chain: Option<u64>,
    pub max_beacon_fetches: Option<usize>,
    pub max_reach_probes: Option<usize>,
    pub db_cache_bytes: Option<usize>,
}

/// A test chain's drand chain info in the file: JSON text, or a TOML table with the same keys.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChainInfoValue {
    Json(String),
    Table(ChainInfo),
}

/// One `[[test_chains]]` entry: the chain (by `info` or `info_file`) and its upstreams.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestChainFile {
    pub info: Option<ChainInfoValue>,
    /// A file holding the chain info JSON (as served at `/{hash}/info`).
    pub info_file: Option<PathBuf>,
    #[serde(default)]
    pub upstreams: Vec<String>,
}

impl TestChainFile {
    /// Reads (`info_file`) and validates the chain; errors name the entry.
    pub fn resolve(&self) -> Result<TestChainSource, String> {
        let info = match (&self.info, &self.info_file) {
            (Some(ChainInfoValue::Table(info)), None) => info.clone(),
            (Some(ChainInfoValue::Json(text)), None) => {
                ChainInfo::parse(text.as_bytes()).map_err(|e| format!("test chain info: {e}"))?
            }
            (None, Some(path)) => {
                let text = std::fs::read(path)
                    .map_err(|e| format!("test chain info file {}: {e}", path.display()))?;
                ChainInfo::parse(&text)
                    .map_err(|e| format!("test chain info file {}: {e}", path.display()))?
            }
            _ => return Err("a test chain needs exactly one of `info` and `info_file`".into()),
        };
        let chain =
            Chain::from_info(&info).map_err(|e| format!("test chain {}: {e}", info.hash))?;
        Ok(TestChainSource {
            chain,
            upstreams: self.upstreams.clone(),
        })
    }
}

/// The file's contents; see [`DirectoryConfig`] for meanings and defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    /// `<directory key>@<host:port>` each.
    pub siblings: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    pub node_ttl: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub manifest_retention: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub manifest_max_release: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub max_skew: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub sync_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub sync_max_backoff: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub sync_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub sweep_interval: Option<Duration>,
    pub allow_loopback_nodes: Option<bool>,
    pub serve_quicknet: Option<bool>,
    /// Quicknet's upstream base URLs.
    pub beacon_upstreams: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    pub beacon_timeout: Option<Duration>,
    pub test_chains: Option<Vec<TestChainFile>>,
    #[serde(default)]
    pub limits: LimitsFile,
}

impl ConfigFile {
    /// Parses TOML text; errors name the offending key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("directory config: {e}"))
    }

    /// Overrides the fields of `cfg` that the file sets.
    pub fn apply(&self, cfg: &mut DirectoryConfig) -> Result<(), String> {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field { cfg.$field = v; }
            )*};
        }
        set!(
            listen,
            node_ttl,
            manifest_retention,
            manifest_max_release,
            max_skew,
            sync_interval,
            sync_max_backoff,
            sync_timeout,
            sweep_interval,
            allow_loopback_nodes,
            serve_quicknet,
            beacon_timeout
        );
        if let Some(list) = &self.beacon_upstreams {
            cfg.beacon_upstreams = Some(list.clone());
        }
        if let Some(list) = &self.test_chains {
            cfg.test_chains = list
                .iter()
                .map(TestChainFile::resolve)
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = &self.siblings {
            cfg.siblings = list
                .iter()
                .map(|s| s.parse::<Sibling>())
                .collect::<Result<_, _>>()?;
        }
        let (l, f) = (&mut cfg.limits, &self.limits);
        macro_rules! set_limit {
            ($($field:ident),*) => {$(
                if let Some(v) = f.$field { l.$field = v; }
            )*};
        }
        set_limit!(
            max_list,
            max_nodes,
            max_connections,
            max_concurrent_uploads,
            manifest_store_bytes,
            max_beacons_per_chain,
            max_beacon_fetches,
            max_reach_probes,
            db_cache_bytes
        );
        let rate = |r: RateLimitFile| RateLimit {
            per_second: r.per_second,
            burst: r.burst,
        };
        if let Some(r) = f.per_connection {
            l.per_connection = rate(r);
        }
        if let Some(r) = f.per_identity {
            l.per_identity = rate(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_applies() {
        let key = kairos_proto::Identity::generate().public();
        let text = format!(
            r#"
            listen = "127.0.0.1:7801"
            siblings = ["{key}@127.0.0.1:7802"]
            node_ttl = "2m"
            manifest_retention = "7days"
            allow_loopback_nodes = true
            [limits]
            max_nodes = 10
            per_identity = {{ per_second = 1.0, burst = 3.0 }}
            db_cache_bytes = 1048576
            "#
        );
        let f = ConfigFile::from_toml(&text).unwrap();
        let mut c = DirectoryConfig::default();
        f.apply(&mut c).unwrap();
        assert_eq!(c.listen.port(), 7801);
        assert_eq!(c.siblings[0].key, key);
        assert_eq!(c.node_ttl, Duration::from_secs(120));
        assert_eq!(c.manifest_retention, Duration::from_secs(7 * 86400));
        assert!(c.allow_loopback_nodes);
        assert_eq!(c.limits.max_nodes, 10);
        assert_eq!(c.limits.per_identity.burst, 3.0);
        assert_eq!(c.limits.db_cache_bytes, 1 << 20);
        assert_eq!(c.limits.max_list, 256, "untouched defaults stay");
        assert_eq!(c.sync_interval, Duration::from_secs(30));
    }

    #[test]
    fn test_chains_from_json_text_table_or_file() {
        use rand::SeedableRng;
        let tc = kairos_lock::TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(1), 10, 2)
            .unwrap();
        let info = ChainInfo::of(tc.chain());
        let json = serde_json::to_string(&info).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.json");
        std::fs::write(&path, &json).unwrap();
        let text = format!(
            r#"
            beacon_upstreams = []
            serve_quicknet = false
            [[test_chains]]
            info = '{json}'
            upstreams = ["http://127.0.0.1:7801"]
            [[test_chains]]
            info_file = {path:?}
            [[test_chains]]
            info = {{ public_key = "{pk}", period = 2, genesis_time = 10, hash = "{hash}", schemeID = "bls-unchained-g1-rfc9380" }}
            [limits]
            max_beacons_per_chain = 5
            "#,
            pk = info.public_key,
            hash = info.hash,
        );
        let f = ConfigFile::from_toml(&text).unwrap();
        let mut c = DirectoryConfig::default();
        f.apply(&mut c).unwrap();
        assert_eq!(c.test_chains.len(), 3);
        for t in &c.test_chains {
            assert_eq!(&t.chain, tc.chain());
        }
        assert_eq!(
            c.test_chains[0].upstreams,
            vec!["http://127.0.0.1:7801".to_owned()]
        );
        assert!(!c.serve_quicknet);
        assert_eq!(c.beacon_upstreams, Some(vec![]));
        assert_eq!(c.limits.max_beacons_per_chain, 5);
        // Listed twice: refused by the check.
        assert!(c.check().is_err());
        c.test_chains.truncate(1);
        c.check().unwrap();
        // A bad key, both or neither source: refused naming the entry.
        let bad = json.replace(&info.public_key[..8], "00000000");
        let f = ConfigFile::from_toml(&format!("[[test_chains]]\ninfo = '{bad}'")).unwrap();
        assert!(f.apply(&mut DirectoryConfig::default()).is_err());
        let f = ConfigFile::from_toml("[[test_chains]]\nupstreams = []").unwrap();
        assert!(f.apply(&mut DirectoryConfig::default()).is_err());
    }

    #[test]
    fn beacon_upstreams_follow_the_transport() {
        use kairos_net::Transport;
        let mut c = DirectoryConfig::default();
        assert_eq!(
            c.relayed_chains()[0].upstreams.len(),
            4,
            "Tor: drand's endpoints"
        );
        c.transport = Transport::Direct;
        assert!(c.relayed_chains()[0].upstreams.is_empty(), "direct: none");
        c.check().unwrap();
        c.beacon_upstreams = Some(vec!["https://api.drand.sh".into()]);
        assert!(c.check().is_err(), "direct mode refuses a remote upstream");
        c.beacon_upstreams = Some(vec!["http://127.0.0.1:9/".into()]);
        c.check().unwrap();
        c.beacon_upstreams = Some(vec!["ftp://127.0.0.1/".into()]);
        assert!(c.check().is_err());
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(ConfigFile::from_toml("node_tll = \"5m\"").is_err());
        assert!(ConfigFile::from_toml("node_ttl = \"soon\"").is_err());
        let f = ConfigFile::from_toml("siblings = [\"nokey\"]").unwrap();
        assert!(f.apply(&mut DirectoryConfig::default()).is_err());
    }
}
