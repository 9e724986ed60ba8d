//! [`LaunchConfig`]: which tor to start, where its state lives, extra torrc lines, how long
//! bootstrapping may take and who hears about its progress.
//!
//! Invariant: a config only describes a launch; nothing here touches the file system or
//! starts a process.

use crate::control::BootstrapStatus;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default time allowed for bootstrapping.
pub const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(180);

/// Called with every change of bootstrap progress.
pub type ProgressFn = Arc<dyn Fn(&BootstrapStatus) + Send + Sync>;

/// How to launch tor.
#[derive(Clone)]
pub struct LaunchConfig {
    /// Path to the `tor` binary; `None` searches `PATH`, then the usual system directories.
    pub tor_binary: Option<PathBuf>,
    /// tor's DataDirectory (created with mode 0700 when missing). Keys and state live here.
    pub data_dir: PathBuf,
    /// Extra torrc lines, appended after ours (e.g. a private network's `DirAuthority` lines).
    pub extra_torrc: Vec<String>,
    /// Deadline for bootstrapping to 100 %.
    pub bootstrap_timeout: Duration,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for LaunchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchConfig")
            .field("tor_binary", &self.tor_binary)
            .field("data_dir", &self.data_dir)
            .field("extra_torrc", &self.extra_torrc)
            .field("bootstrap_timeout", &self.bootstrap_timeout)
            .finish_non_exhaustive()
    }
}

impl LaunchConfig {
    /// Defaults: tor found on the system, no extra torrc lines, [`DEFAULT_BOOTSTRAP_TIMEOUT`].
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LaunchConfig {
            tor_binary: None,
            data_dir: data_dir.into(),
            extra_torrc: Vec::new(),
            bootstrap_timeout: DEFAULT_BOOTSTRAP_TIMEOUT,
            progress: None,
        }
    }

    pub fn tor_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.tor_binary = Some(path.into());
        self
    }

    pub fn torrc_lines<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_torrc.extend(lines.into_iter().map(Into::into));
        self
    }

    pub fn bootstrap_timeout(mut self, timeout: Duration) -> Self {
        self.bootstrap_timeout = timeout;
        self
    }

    pub fn on_progress(mut self, f: impl Fn(&BootstrapStatus) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}
