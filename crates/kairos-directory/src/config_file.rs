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
//!
//! [limits]
//! max_nodes = 100000
//! manifest_store_bytes = 8589934592
//! per_identity = { per_second = 5.0, burst = 20.0 }
//! ```

use crate::config::{DirectoryConfig, RateLimit, Sibling};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
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
            allow_loopback_nodes
        );
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
            manifest_store_bytes
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
        assert_eq!(c.limits.max_list, 256, "untouched defaults stay");
        assert_eq!(c.sync_interval, Duration::from_secs(30));
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(ConfigFile::from_toml("node_tll = \"5m\"").is_err());
        assert!(ConfigFile::from_toml("node_ttl = \"soon\"").is_err());
        let f = ConfigFile::from_toml("siblings = [\"nokey\"]").unwrap();
        assert!(f.apply(&mut DirectoryConfig::default()).is_err());
    }
}
