//! [`TorProcess`]: the tor the rest of kairos uses — launched and owned by us, or attached to.
//!
//! Invariants:
//! * A launched [`TorProcess`] is bootstrapped and has a loopback SOCKS listener before it is
//!   returned; if either fails, the tor is killed before the error is. A [`Starting`] tor has
//!   the SOCKS listener but may not have bootstrapped; it becomes a [`TorProcess`] only
//!   through [`Starting::bootstrapped`].
//! * Dropping a launched tor kills it; an attached tor is never stopped by us (only our
//!   connection closes).
//! * Outgoing streams always go through tor's SOCKS port with the hostname resolved by tor
//!   ([`crate::socks`]), isolated per caller-chosen string.

use super::binary::find_tor;
use super::bootstrap::wait_bootstrapped;
use super::config::LaunchConfig;
use super::log_tail::LogTail;
use super::spawn::{spawn_tor, SpawnedTor};
use crate::control::{Control, ControlAuth, Signal};
use crate::error::TorError;
use crate::socks::{self, SocksError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Child;
use tracing::{debug, info, warn};

/// A tor we launched (and own) or attached to.
pub struct TorProcess {
    child: Option<Child>,
    pid: Option<u32>,
    control: Control,
    control_addr: SocketAddr,
    socks_addr: SocketAddr,
    data_dir: Option<PathBuf>,
    log: LogTail,
}

impl std::fmt::Debug for TorProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorProcess")
            .field("pid", &self.pid)
            .field("control_addr", &self.control_addr)
            .field("socks_addr", &self.socks_addr)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A tor we launched that is still bootstrapping ([`TorProcess::start`]). Its SOCKS listener
/// is up, but streams wait until tor has circuits. Dropping it kills tor.
pub struct Starting {
    spawned: SpawnedTor,
    socks_addr: SocketAddr,
    config: LaunchConfig,
    started: Instant,
}

impl std::fmt::Debug for Starting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starting")
            .field("pid", &self.spawned.pid)
            .field("socks_addr", &self.socks_addr)
            .finish_non_exhaustive()
    }
}

impl Starting {
    /// The control connection (authenticated and owning).
    pub fn control(&mut self) -> &mut Control {
        &mut self.spawned.control
    }

    /// tor's SOCKS listener (on 127.0.0.1).
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks_addr
    }

    /// Waits until tor has bootstrapped (or the config's deadline passes, or tor exits: then
    /// tor is killed and the error returned), reporting progress to the config's callback.
    pub async fn bootstrapped(mut self) -> Result<TorProcess, TorError> {
        let config = &self.config;
        let waited = wait_bootstrapped(
            &mut self.spawned,
            config.bootstrap_timeout,
            config.progress.as_ref(),
        )
        .await;
        if let Err(e) = waited {
            self.spawned.terminate().await;
            return Err(e);
        }
        let spawned = self.spawned;
        info!(
            pid = spawned.pid,
            socks = %self.socks_addr,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "tor bootstrapped"
        );
        let control_addr = spawned.control.addr();
        Ok(TorProcess {
            pid: Some(spawned.pid),
            child: Some(spawned.child),
            control: spawned.control,
            control_addr,
            socks_addr: self.socks_addr,
            data_dir: Some(self.config.data_dir),
            log: spawned.log,
        })
    }
}

impl TorProcess {
    /// Starts tor, waits until it is bootstrapped (or the deadline passes) and returns it.
    pub async fn launch(config: LaunchConfig) -> Result<TorProcess, TorError> {
        TorProcess::start(config).await?.bootstrapped().await
    }

    /// Starts tor and returns as soon as its control port and SOCKS listener are up, before it
    /// has bootstrapped ([`Starting::bootstrapped`] waits for that). Meanwhile onion services
    /// can be registered: tor then builds circuits as soon as it has directory information,
    /// and so finishes bootstrapping sooner.
    pub async fn start(config: LaunchConfig) -> Result<Starting, TorError> {
        let binary = find_tor(config.tor_binary.as_deref())?;
        let started = Instant::now();
        let mut lines = vec!["SocksPort auto ExtendedErrors".to_string()];
        lines.extend(config.extra_torrc.iter().cloned());
        let label = config
            .data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tor".into());
        let mut spawned = spawn_tor(&binary, &config.data_dir, &lines, &label).await?;
        let socks_addr = match spawned.control.socks_listener().await {
            Ok(Some(addr)) => addr,
            other => {
                spawned.terminate().await;
                return Err(other.err().map_or(TorError::NoSocks, Into::into));
            }
        };
        Ok(Starting {
            spawned,
            socks_addr,
            config,
            started,
        })
    }

    /// Uses an already-running tor: connects to its loopback control port, authenticates
    /// (`ControlAuth::Cookie(None)` takes the cookie path from PROTOCOLINFO) and reads its SOCKS
    /// port. The tor is not owned: dropping the handle leaves it running.
    pub async fn attach(
        control_addr: SocketAddr,
        auth: ControlAuth,
    ) -> Result<TorProcess, TorError> {
        let mut control = Control::connect_authenticated(control_addr, &auth).await?;
        let socks_addr = control.socks_listener().await?.ok_or(TorError::NoSocks)?;
        let pid = control
            .get_info("process/pid")
            .await
            .ok()
            .and_then(|p| p.parse().ok());
        info!(%control_addr, socks = %socks_addr, "attached to a running tor");
        Ok(TorProcess {
            child: None,
            pid,
            control,
            control_addr,
            socks_addr,
            data_dir: None,
            log: LogTail::default(),
        })
    }

    /// The control connection (authenticated; owning when launched).
    pub fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// tor's SOCKS listener (always on 127.0.0.1 for a launched tor).
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks_addr
    }

    /// `socks5h://<isolation>:x@<socks addr>`: a proxy URL (e.g. for reqwest) whose streams
    /// share circuits only with streams of the same `isolation` string (tor isolates by SOCKS
    /// credentials), and whose hostnames are resolved by tor, never locally (`socks5h`).
    pub fn socks_proxy_url(&self, isolation: &str) -> String {
        socks_proxy_url(self.socks_addr, isolation)
    }

    /// tor's PID (ours for a launched tor; tor's own report for an attached one).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// True if we launched (and own) this tor.
    pub fn is_owned(&self) -> bool {
        self.child.is_some()
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The last lines tor printed (launched tors only).
    pub fn log_tail(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Opens a stream to `host:port` (typically an onion service) through this tor's SOCKS port,
    /// on circuits isolated by `isolation`. Retryable failures (descriptor not on the HSDirs yet,
    /// circuit timeouts) are retried until `deadline`, with `SIGNAL NEWNYM` before each retry:
    /// it clears tor's cache of failed onion lookups, without which a fresh service stays
    /// "unreachable" for a while after its first failed fetch.
    pub async fn connect_with_retry(
        &mut self,
        host: &str,
        port: u16,
        isolation: &str,
        deadline: Duration,
    ) -> Result<tokio::net::TcpStream, TorError> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // One attempt may not outlive the deadline by much (tor's own stream timeout is
            // two minutes), but gets at least a few seconds to build its circuits.
            let budget = deadline
                .saturating_sub(start.elapsed())
                .max(Duration::from_secs(5));
            let attempt_result = tokio::time::timeout(
                budget,
                socks::connect(self.socks_addr, host, port, Some(isolation)),
            )
            .await
            .unwrap_or(Err(SocksError::Timeout(budget)));
            match attempt_result {
                Ok(stream) => {
                    debug!(
                        host,
                        port,
                        attempt,
                        elapsed_ms = start.elapsed().as_millis() as u64,
                        "stream open"
                    );
                    return Ok(stream);
                }
                Err(e) if e.is_retryable() && start.elapsed() < deadline => {
                    debug!(host, port, attempt, "retrying after: {e}");
                    self.control.signal(Signal::Newnym).await?;
                    let pause = Duration::from_millis(250 * u64::from(attempt.min(8)));
                    tokio::time::sleep(pause.min(deadline.saturating_sub(start.elapsed()))).await;
                }
                Err(e) => {
                    return Err(TorError::Unreachable {
                        target: format!("{host}:{port}"),
                        attempts: attempt,
                        elapsed: start.elapsed(),
                        source: e,
                    })
                }
            }
        }
    }

    /// Stops a launched tor (`SIGNAL SHUTDOWN`, then kill after a grace period) and waits for it
    /// to exit. For an attached tor this only closes our connection.
    pub async fn shutdown(mut self) -> Result<(), TorError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = self.control.signal(Signal::Shutdown).await;
        match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                warn!(pid = ?self.pid, "tor did not exit after SHUTDOWN; killing it");
                let _ = child.kill().await;
            }
        }
        Ok(())
    }
}

impl Drop for TorProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            debug!(pid = ?self.pid, "stopping tor");
            let _ = child.start_kill();
        }
    }
}

/// `socks5h://<isolation>:x@<addr>` with the isolation string percent-encoded.
pub fn socks_proxy_url(socks_addr: SocketAddr, isolation: &str) -> String {
    let mut user = String::new();
    for b in isolation.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            user.push(b as char);
        } else {
            user.push_str(&format!("%{b:02X}"));
        }
    }
    if user.is_empty() {
        user.push('-');
    }
    format!("socks5h://{user}:x@{socks_addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_url() {
        let a: SocketAddr = "127.0.0.1:9050".parse().unwrap();
        assert_eq!(socks_proxy_url(a, "w1"), "socks5h://w1:x@127.0.0.1:9050");
        assert_eq!(
            socks_proxy_url(a, "a b:c@"),
            "socks5h://a%20b%3Ac%40:x@127.0.0.1:9050"
        );
    }
}
