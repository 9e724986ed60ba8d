//! The daemon's settings: [`DaemonSettings`] layered by [`super::layers`], then laid over
//! [`NodeConfig`]'s defaults.
//!
//! What depends on the transport (listen address, advertised address, the transport itself)
//! is left to the command, which knows whether tor runs; everything else is final here.

use super::layers::{self, home_or_default, ConfigSource};
use crate::cli::{DaemonArgs, DaemonSettings, TorArgs, TransportKind};
use anyhow::Result;
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
    let config = node_config(&home, &s);
    anyhow::ensure!(
        !config.directories.is_empty(),
        "no directory configured: pass --directory HOST:PORT (or set directories in config.toml)"
    );
    Ok(Daemon {
        home,
        config,
        transport: s.transport.unwrap_or(TransportKind::Tor),
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
    config
}
