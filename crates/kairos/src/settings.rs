//! Turning flags, environment and the TOML config file into the libraries' configs.
//!
//! Precedence: flag / `KAIROS_*` variable (clap handles both) over `config.toml` over the
//! defaults documented in `--help` and in the libraries' `Default` impls.

use crate::cli::{DaemonArgs, DirectoryArgs, TorArgs, TransportKind};
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The home directory: `--home` / `KAIROS_HOME`, else `~/.kairos` (daemon) or
/// `~/.kairos-directory` (directory).
pub fn home_or_default(home: Option<PathBuf>, leaf: &str) -> Result<PathBuf> {
    if let Some(h) = home {
        return Ok(h);
    }
    let base = std::env::var_os("HOME")
        .context("no --home given and $HOME is not set; pass --home DIR or set KAIROS_HOME")?;
    Ok(PathBuf::from(base).join(leaf))
}

/// Reads `explicit` (must exist) or `<home>/config.toml` (optional).
fn load_file<T: DeserializeOwned + Default>(home: &Path, explicit: Option<&Path>) -> Result<T> {
    let path = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.join("config.toml"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("reading config file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            Ok(T::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading config file {}", path.display())),
    }
}

/// A duration like `30s`, `5m`, `2h`, `7d`.
pub fn duration(text: &str, what: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim())
        .with_context(|| format!("{what}: {text:?} is not a duration like 30s, 5m, 2h or 7d"))
}

/// A byte size like `10GiB`, `500MB`, `4096`.
pub fn bytes(text: &str, what: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .with_context(|| format!("{what}: {text:?} is not a size like 10GiB or 500MB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => bail!("{what}: unknown unit in {text:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"),
    };
    Ok((num * mult) as u64)
}

/// Coding parameters `K+M` (e.g. `4+2`) with the default shard size.
pub fn coding(text: &str) -> Result<kairos_seal::Params> {
    let (k, m) = text
        .split_once('+')
        .with_context(|| format!("--coding {text:?}: expected K+M such as 4+2"))?;
    let params = kairos_seal::Params {
        data_shards: k
            .trim()
            .parse()
            .with_context(|| format!("--coding {text:?}: K is not a number"))?,
        parity_shards: m
            .trim()
            .parse()
            .with_context(|| format!("--coding {text:?}: M is not a number"))?,
        ..kairos_seal::Params::default()
    };
    params
        .validate()
        .with_context(|| format!("--coding {text:?}"))?;
    Ok(params)
}

fn merge_tor(flags: TorArgs, file: TorArgs) -> TorArgs {
    TorArgs {
        tor_binary: flags.tor_binary.or(file.tor_binary),
        tor_control: flags.tor_control.or(file.tor_control),
        tor_config: flags.tor_config.or(file.tor_config),
        tor_timeout: flags.tor_timeout.or(file.tor_timeout),
    }
}

/// Daemon settings with the config file merged in, and the resolved home.
pub fn daemon(flags: DaemonArgs) -> Result<(PathBuf, DaemonArgs)> {
    let home = home_or_default(flags.home.clone(), ".kairos")?;
    let file: DaemonArgs = load_file(&home, flags.config.as_deref())?;
    let merged = DaemonArgs {
        home: Some(home.clone()),
        config: flags.config,
        transport: flags.transport.or(file.transport),
        directories: flags.directories.or(file.directories),
        listen: flags.listen.or(file.listen),
        advertise: flags.advertise.or(file.advertise),
        quota: flags.quota.or(file.quota),
        max_release: flags.max_release.or(file.max_release),
        retention: flags.retention.or(file.retention),
        heartbeat: flags.heartbeat.or(file.heartbeat),
        coding: flags.coding.or(file.coding),
        upload_concurrency: flags.upload_concurrency.or(file.upload_concurrency),
        download_concurrency: flags.download_concurrency.or(file.download_concurrency),
        join: flags.join.or(file.join),
        allow_non_loopback: flags.allow_non_loopback,
        ready_file: flags.ready_file,
        tor: merge_tor(flags.tor, file.tor),
    };
    Ok((home, merged))
}

/// What the directory command needs besides the library config: the transport and Tor options
/// (flags over the file's `transport` key and `[tor]` table).
pub struct DirectorySettings {
    pub home: PathBuf,
    pub config: kairos_directory::DirectoryConfig,
    pub transport: Option<TransportKind>,
    /// Flag or file; `None` lets the transport decide (direct: yes, Tor: never).
    pub allow_loopback_nodes: Option<bool>,
    pub tor: TorArgs,
}

/// Directory settings: defaults, then `config.toml` (the directory library's file format plus
/// `transport` and `[tor]`), then flags and environment.
pub fn directory(flags: DirectoryArgs) -> Result<DirectorySettings> {
    let home = home_or_default(flags.home.clone(), ".kairos-directory")?;
    let mut table: toml::Table = load_file(&home, flags.config.as_deref())?;
    let file_transport: Option<TransportKind> = table
        .remove("transport")
        .map(|v| v.try_into())
        .transpose()
        .context("config file: transport")?;
    let file_tor: TorArgs = table
        .remove("tor")
        .map(|v| v.try_into())
        .transpose()
        .context("config file: [tor]")?
        .unwrap_or_default();
    let file = kairos_directory::ConfigFile::from_toml(&toml::to_string(&table)?)
        .map_err(anyhow::Error::msg)?;
    let mut config = kairos_directory::DirectoryConfig {
        home: home.clone(),
        ..Default::default()
    };
    file.apply(&mut config).map_err(anyhow::Error::msg)?;
    if let Some(v) = flags.listen {
        config.listen = v;
    }
    if let Some(v) = &flags.node_ttl {
        config.node_ttl = duration(v, "--node-ttl")?;
    }
    if let Some(v) = &flags.retention {
        config.manifest_retention = duration(v, "--retention")?;
    }
    if let Some(v) = &flags.sync_interval {
        config.sync_interval = duration(v, "--sync-interval")?;
    }
    if let Some(list) = &flags.siblings {
        config.siblings = list
            .iter()
            .map(|s| {
                s.parse::<kairos_directory::Sibling>()
                    .map_err(|e| anyhow::anyhow!("--sibling {s:?}: {e}"))
            })
            .collect::<Result<_>>()?;
    }
    Ok(DirectorySettings {
        home,
        config,
        transport: flags.transport.or(file_transport),
        allow_loopback_nodes: flags.allow_loopback_nodes.or(file.allow_loopback_nodes),
        tor: merge_tor(flags.tor, file_tor),
    })
}

/// The transport kind, defaulting to Tor.
pub fn transport_kind(t: Option<TransportKind>) -> TransportKind {
    t.unwrap_or(TransportKind::Tor)
}

/// Writes `key=value` lines atomically (write a temp file, rename), for scripts and devnet.
pub fn write_ready_file(path: &Path, lines: &[(&str, String)]) -> Result<()> {
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes("10GiB", "q").unwrap(), 10 << 30);
        assert_eq!(bytes("500MB", "q").unwrap(), 500_000_000);
        assert_eq!(bytes("4096", "q").unwrap(), 4096);
        assert!(bytes("ten", "q").is_err());
        assert!(bytes("3 parsecs", "q").is_err());
        assert_eq!(duration("5m", "d").unwrap(), Duration::from_secs(300));
        assert!(duration("soon", "d").is_err());
        assert_eq!(coding("3+1").unwrap().total_shards(), 4);
        assert!(coding("1+1").is_err());
        assert!(coding("4").is_err());
    }

    #[test]
    fn config_file_fills_unset_flags_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "transport = \"direct\"\nquota = \"1GiB\"\ndirectories = [\"127.0.0.1:7700\"]\n[tor]\ntor_timeout = 9\n").unwrap();
        let flags = DaemonArgs {
            home: Some(dir.path().into()),
            quota: Some("2GiB".into()),
            ..Default::default()
        };
        let (_, merged) = daemon(flags).unwrap();
        assert_eq!(merged.transport, Some(TransportKind::Direct));
        assert_eq!(merged.quota.as_deref(), Some("2GiB"));
        assert_eq!(merged.directories, Some(vec!["127.0.0.1:7700".to_string()]));
        assert_eq!(merged.tor.tor_timeout, Some(9));
        std::fs::write(dir.path().join("config.toml"), "bogus = 1\n").unwrap();
        let flags = DaemonArgs {
            home: Some(dir.path().into()),
            ..Default::default()
        };
        assert!(daemon(flags).is_err(), "unknown keys are refused");
    }

    #[test]
    fn directory_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "transport = \"direct\"\nallow_loopback_nodes = false\nnode_ttl = \"2m\"\n[tor]\ntor_timeout = 5\n",
        )
        .unwrap();
        let flags = DirectoryArgs {
            home: Some(dir.path().into()),
            retention: Some("1d".into()),
            ..Default::default()
        };
        let s = directory(flags).unwrap();
        assert_eq!(s.transport, Some(TransportKind::Direct));
        assert_eq!(
            s.allow_loopback_nodes,
            Some(false),
            "the file's choice is kept"
        );
        assert_eq!(s.config.node_ttl, Duration::from_secs(120));
        assert_eq!(s.config.manifest_retention, Duration::from_secs(86400));
        assert_eq!(s.tor.tor_timeout, Some(5));
        let flags = DirectoryArgs {
            home: Some(dir.path().into()),
            allow_loopback_nodes: Some(true),
            ..Default::default()
        };
        assert_eq!(
            directory(flags).unwrap().allow_loopback_nodes,
            Some(true),
            "flags win"
        );
    }
}
