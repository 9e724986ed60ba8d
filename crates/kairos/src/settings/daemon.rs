//! The daemon's settings: [`DaemonSettings`] layered by [`super::layers`], then laid over
//! [`NodeConfig`]'s defaults.
//!
//! What depends on the transport (listen address, advertised address, the transport itself)
//! is left to the command, which knows whether tor runs; everything else is final here.

use super::layers::{self, home_or_default, ConfigSource};
use crate::cli::{DaemonArgs, DaemonSettings, TorArgs, TransportKind};
use anyhow::{Context, Result};
use kairos_node::Chain;
use kairos_node::NodeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The daemon's resolved settings.
#[derive(Debug)]
pub struct Daemon {
    pub home: PathBuf,
    /// Every layered setting applied; `listen`, `advertise` and `transport` still the defaults.
    pub config: NodeConfig,
    pub transport: TransportKind,
    /// Flag or file; `None` lets the transport decide.
    pub listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    /// Join the network once serving.
    pub join: bool,
    pub tor: TorArgs,
}

/// Resolves the daemon's settings from its arguments and config file.
pub fn resolve(args: &DaemonArgs) -> Result<Daemon> {
    let home = home_or_default(args.home.clone(), ".kairos")?;
    let file = ConfigSource::new(&home, args.config.as_deref());
    let s: DaemonSettings = layers::resolve(&args.settings, &file)?;
    let transport = s.transport.unwrap_or(TransportKind::Tor);
    let mut config = node_config(&home, &s);
    config.lock_chain = lock_chain(s.lock_chain.as_deref(), transport)?;
    config.beacon_upstreams = match &s.beacon_upstreams {
        Some(list) => list.clone(),
        // drand's own API, over Tor, when the chain is drand's.
        None if transport == TransportKind::Tor
            && config.lock_chain.as_ref().is_some_and(|c| !c.is_test()) =>
        {
            (kairos_directory::DRAND_PUBLIC_UPSTREAMS.iter())
                .map(|s| s.to_string())
                .collect()
        }
        None => Vec::new(),
    };
    anyhow::ensure!(
        !config.directories.is_empty(),
        "no directory configured: pass --directory HOST:PORT (or set directories in config.toml)"
    );
    Ok(Daemon {
        home,
        config,
        transport,
        listen: s.listen,
        advertise: s.advertise,
        join: s.join.unwrap_or(false),
        tor: s.tor,
    })
}

/// `NodeConfig::default()` with every setting that `s` has.
fn node_config(home: &std::path::Path, s: &DaemonSettings) -> NodeConfig {
    let mut config = NodeConfig {
        home: home.to_owned(),
        directories: s.directories.clone().unwrap_or_default(),
        // The command joins once the node is reachable at its advertised address.
        auto_join: false,
        ..NodeConfig::default()
    };
    if let Some(v) = s.quota {
        config.quota = v.0;
    }
    if let Some(v) = s.max_release {
        config.max_release = v.0;
    }
    if let Some(v) = s.retention {
        config.retention = v.0;
    }
    if let Some(v) = s.heartbeat {
        config.heartbeat = v.0;
    }
    if let Some(v) = s.coding {
        config.params = v.0;
    }
    if let Some(v) = s.upload_concurrency {
        config.upload_concurrency = v;
    }
    if let Some(v) = s.download_concurrency {
        config.download_concurrency = v;
    }
    if let Some(v) = s.audit_interval {
        config.audit_interval = v.0;
    }
    if let Some(v) = s.pending_window {
        config.pending_window = v.0;
    }
    if let Some(v) = s.beacon_wait {
        config.beacon_wait = v.0;
    }
    config
}

/// The chain of `--lock-chain`: `quicknet`, `none`, or a test chain's info file; by default
/// quicknet over Tor (its beacons reach the directories over Tor) and none direct (a
/// development network has no drand unless it runs a test chain).
fn lock_chain(arg: Option<&str>, transport: TransportKind) -> Result<Option<Chain>> {
    match arg {
        None if transport == TransportKind::Tor => Ok(Some(Chain::quicknet())),
        None | Some("none") => Ok(None),
        Some("quicknet") => Ok(Some(Chain::quicknet())),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the --lock-chain file {path}"))?;
            let info = kairos_lock::ChainInfo::parse(&bytes)
                .with_context(|| format!("--lock-chain {path}: not a drand chain info file"))?;
            let chain = Chain::from_info(&info)
                .with_context(|| format!("--lock-chain {path}: unusable chain"))?;
            if chain.is_test() {
                tracing::warn!(
                    "TEST CHAIN: uploads are drand-locked to local test chain {} (not drand; development and tests only)",
                    chain.hash_hex()
                );
            }
            Ok(Some(chain))
        }
    }
}
