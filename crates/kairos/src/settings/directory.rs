//! The directory's settings: its flags ([`DirectoryFlags`]) layered by [`super::layers`] over a
//! file that also takes every key of the directory library's
//! [`kairos_directory::ConfigFile`], then laid over [`DirectoryConfig`]'s defaults.
//!
//! The library owns its keys (limits, intervals; see `docs/directory-api.md`); this program
//! adds only `transport` and the `[tor]` table, and the flags use the library's key names
//! (`--retention` is `manifest_retention`, `--sibling` is `siblings`).

use super::layers::{self, home_or_default, ConfigSource};
use crate::cli::{DirectoryArgs, TorArgs, TransportKind};
use anyhow::{Context, Result};
use kairos_directory::DirectoryConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The directory program's settings: its own keys, and the library's.
#[derive(Deserialize)]
struct DirectorySettings {
    transport: Option<TransportKind>,
    #[serde(default)]
    tor: TorArgs,
    /// Checked by `kairos_directory::ConfigFile`, which refuses unknown keys.
    #[serde(flatten)]
    library: toml::Table,
}

/// The directory's resolved settings.
#[derive(Debug)]
pub struct Directory {
    pub home: PathBuf,
    /// Every layered setting applied; `transport` still the default.
    pub config: DirectoryConfig,
    pub transport: TransportKind,
    /// Flag or file; `None` lets the transport decide.
    pub listen: Option<SocketAddr>,
    /// Flag or file; `None` lets the transport decide (direct: yes, Tor: never).
    pub allow_loopback_nodes: Option<bool>,
    pub tor: TorArgs,
}

/// Resolves the directory's settings from its arguments and config file.
pub fn resolve(args: &DirectoryArgs) -> Result<Directory> {
    let home = home_or_default(args.home.clone(), ".kairos-directory")?;
    let file = ConfigSource::new(&home, args.config.as_deref());
    let s: DirectorySettings = layers::resolve(&args.settings, &file)?;
    let library: kairos_directory::ConfigFile = toml::Value::Table(s.library)
        .try_into()
        .with_context(|| file.describe())?;
    let mut config = DirectoryConfig {
        home: home.clone(),
        ..Default::default()
    };
    library
        .apply(&mut config)
        .map_err(anyhow::Error::msg)
        .with_context(|| file.describe())?;
    Ok(Directory {
        home,
        config,
        transport: s.transport.unwrap_or(TransportKind::Tor),
        listen: library.listen,
        allow_loopback_nodes: library.allow_loopback_nodes,
        tor: s.tor,
    })
}
