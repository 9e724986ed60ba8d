//! The one layering mechanism: flags over `KAIROS_*` variables over the config file over the
//! defaults.
//!
//! clap parses flags and variables into a command's settings struct (a flag beats its
//! variable); every layered field there is an `Option` that stays `None` unless given. That
//! struct is serialised to a TOML table (the `None`s leave no key), merged key by key over the
//! config file's table, and the merged table is deserialised into the program's settings type.
//! Fields still unset after that take the libraries' defaults, which the callers fill in.
//!
//! Invariants: merging recurses into nested tables (`[tor]`, `[limits]`), so a flag overrides
//! one key of a table and leaves its siblings from the file; a list is one value (a given
//! `--directory` replaces the file's `directories`, it does not extend them). A key the program
//! does not know is refused, so a typo is never silently ignored. `--config FILE` must exist;
//! `<home>/config.toml` is optional.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The home directory: `--home` / `KAIROS_HOME`, else `$HOME/<leaf>` (`.kairos` for the
/// daemon and the clients, `.kairos-directory` for a directory).
pub fn home_or_default(home: Option<PathBuf>, leaf: &str) -> Result<PathBuf> {
    if let Some(h) = home {
        return Ok(h);
    }
    let base = std::env::var_os("HOME")
        .context("no --home given and $HOME is not set; pass --home DIR or set KAIROS_HOME")?;
    Ok(PathBuf::from(base).join(leaf))
}

/// Where a program's config file is.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    path: PathBuf,
    /// Given with `--config` / `KAIROS_CONFIG`: then a missing file is an error.
    explicit: bool,
}

impl ConfigSource {
    /// `explicit` if given, else `<home>/config.toml`.
    pub fn new(home: &Path, explicit: Option<&Path>) -> Self {
        match explicit {
            Some(p) => ConfigSource {
                path: p.to_owned(),
                explicit: true,
            },
            None => ConfigSource {
                path: home.join("config.toml"),
                explicit: false,
            },
        }
    }

    /// For error messages about values that came from this file.
    pub fn describe(&self) -> String {
        format!("config file {}", self.path.display())
    }

    /// The file's text, `None` if the default file does not exist.
    fn read(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.explicit => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.describe())),
        }
    }

    /// The file as a table, after checking that it reads as `T` on its own (so a bad key or
    /// value is reported with its line).
    fn table<T: DeserializeOwned>(&self) -> Result<toml::Table> {
        let Some(text) = self.read()? else {
            return Ok(toml::Table::new());
        };
        let context = || format!("reading {}", self.describe());
        toml::from_str::<T>(&text).with_context(context)?;
        toml::from_str(&text).with_context(context)
    }
}

/// Layers `flags` (clap's parse of flags and variables) over `file` and returns the result
/// as `T`, the program's settings type.
pub fn resolve<T: DeserializeOwned>(flags: &impl Serialize, file: &ConfigSource) -> Result<T> {
    let upper = toml::Table::try_from(flags).context("flags as settings")?;
    let merged = merge(upper, file.table::<T>()?);
    toml::Value::Table(merged)
        .try_into()
        .with_context(|| format!("settings from flags, KAIROS_* and {}", file.describe()))
}

/// `upper`'s keys over `lower`'s, recursing into tables present in both.
fn merge(upper: toml::Table, mut lower: toml::Table) -> toml::Table {
    for (key, value) in upper {
        let merged = match (value, lower.remove(&key)) {
            (toml::Value::Table(u), Some(toml::Value::Table(l))) => toml::Value::Table(merge(u, l)),
            (v, _) => v,
        };
        lower.insert(key, merged);
    }
    lower
}
