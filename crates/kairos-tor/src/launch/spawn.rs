//! Starting tor on a torrc of our own and taking ownership of it: the shared first half of
//! [`super::TorProcess::launch`] and of every node of the private test network
//! (`kairos-tor-testnet`), which needs relays and authorities that never act as clients.
//!
//! [`spawn_tor`] runs in steps: prepare the DataDirectory, write the torrc, start the child
//! (its output pumped into a log tail), wait for the control port, then authenticate with the
//! cookie and send `TAKEOWNERSHIP`.
//!
//! Invariants:
//! * A stale control-port file is removed before tor starts, so the address we read is the one
//!   this tor wrote.
//! * The child is `kill_on_drop`, and a control-port timeout kills it before returning: no
//!   failure leaves a tor running.
//! * A returned [`SpawnedTor`] is owned: its control connection is authenticated and has sent
//!   `TAKEOWNERSHIP`, so tor exits when that connection closes.

use super::log_tail::{pump_output, LogTail};
use super::torrc::{parse_port_file, write_torrc, TorrcFiles, CONTROL_PORT_FILE};
use crate::control::{Control, ControlAuth};
use crate::error::TorError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tracing::{debug, warn};

/// How long tor may take to open its control port.
const CONTROL_PORT_TIMEOUT: Duration = Duration::from_secs(60);

/// A freshly started tor with an authenticated, owning control connection (not necessarily
/// bootstrapped). Dropping it kills tor.
pub struct SpawnedTor {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) control: Control,
    pub(crate) log: LogTail,
    pub(crate) label: String,
}

impl std::fmt::Debug for SpawnedTor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnedTor")
            .field("label", &self.label)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl SpawnedTor {
    /// The owning control connection.
    pub fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    /// tor's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The label given to [`spawn_tor`] (used in logs and errors).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Kills tor and waits (briefly) until it is reaped.
    pub async fn terminate(&mut self) {
        let _ = self.child.start_kill();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            warn!(tor = %self.label, pid = self.pid, "tor did not exit after SIGKILL within 5 s");
        }
    }

    /// If tor has exited, the matching error (after letting the log pump catch up).
    pub async fn exit_error(&mut self) -> Option<TorError> {
        let status = self.child.try_wait().ok().flatten()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some(TorError::EarlyExit {
            label: self.label.clone(),
            status: status.to_string(),
            log: self.log.render(),
        })
    }
}

/// Creates `path` if needed and restricts it to this user (tor refuses a DataDirectory that
/// others can read).
pub fn prepare_dir(path: &Path) -> Result<(), TorError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| TorError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(())
}

/// Writes a torrc and starts tor on it; waits for the control port, authenticates with the
/// cookie and takes ownership. `lines` are complete torrc lines after our base lines; `label`
/// names this tor in logs and errors.
pub async fn spawn_tor(
    binary: &Path,
    data_dir: &Path,
    lines: &[String],
    label: &str,
) -> Result<SpawnedTor, TorError> {
    let data_dir = prepare_data_dir(data_dir)?;
    let port_file = data_dir.join(CONTROL_PORT_FILE);
    let files = write_torrc(&data_dir, &port_file, lines)?;
    let (mut child, log) = start_child(binary, &files, label)?;
    let pid = child.id().unwrap_or(0);
    debug!(tor = label, pid, "started tor");
    let control_addr = wait_control_port(&mut child, binary, &port_file, label, &log).await?;
    let control = connect_owning(control_addr, &data_dir).await?;
    debug!(tor = label, %control_addr, "tor control port ready; we own this tor");
    Ok(SpawnedTor {
        child,
        pid,
        control,
        log,
        label: label.to_string(),
    })
}

/// Creates the DataDirectory, returns its absolute path, and removes a control-port file left
/// by an earlier run.
fn prepare_data_dir(data_dir: &Path) -> Result<PathBuf, TorError> {
    prepare_dir(data_dir)?;
    let data_dir = std::fs::canonicalize(data_dir).map_err(|source| TorError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let port_file = data_dir.join(CONTROL_PORT_FILE);
    match std::fs::remove_file(&port_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TorError::DataDir {
                path: port_file,
                source,
            })
        }
    }
    Ok(data_dir)
}

/// Starts tor on `files` with its stdout and stderr pumped into a new [`LogTail`].
fn start_child(
    binary: &Path,
    files: &TorrcFiles,
    label: &str,
) -> Result<(Child, LogTail), TorError> {
    let mut child = Command::new(binary)
        .arg("-f")
        .arg(&files.torrc)
        .arg("--defaults-torrc")
        .arg(&files.defaults)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TorError::TorNotFound {
                    looked: binary.display().to_string(),
                }
            } else {
                TorError::Spawn {
                    binary: binary.to_path_buf(),
                    source,
                }
            }
        })?;
    let log = LogTail::default();
    if let Some(out) = child.stdout.take() {
        pump_output(out, label.to_string(), log.clone());
    }
    if let Some(err) = child.stderr.take() {
        pump_output(err, label.to_string(), log.clone());
    }
    Ok((child, log))
}

/// Polls until tor has written its control port to `port_file`; fails if tor exits first or
/// takes longer than [`CONTROL_PORT_TIMEOUT`] (then tor is killed).
async fn wait_control_port(
    child: &mut Child,
    binary: &Path,
    port_file: &Path,
    label: &str,
    log: &LogTail,
) -> Result<SocketAddr, TorError> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|source| TorError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })? {
            // Let the log pump catch up so the error shows why tor exited.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(TorError::EarlyExit {
                label: label.to_string(),
                status: status.to_string(),
                log: log.render(),
            });
        }
        if let Ok(text) = std::fs::read_to_string(port_file) {
            if let Some(addr) = parse_port_file(&text) {
                return Ok(addr);
            }
        }
        if start.elapsed() > CONTROL_PORT_TIMEOUT {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            return Err(TorError::ControlPortTimeout {
                label: label.to_string(),
                timeout: CONTROL_PORT_TIMEOUT,
                log: log.render(),
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Connects to the control port, authenticates with the cookie in `data_dir` and sends
/// `TAKEOWNERSHIP`.
async fn connect_owning(control_addr: SocketAddr, data_dir: &Path) -> Result<Control, TorError> {
    let mut control = Control::connect(control_addr).await?;
    control
        .authenticate(&ControlAuth::Cookie(Some(
            data_dir.join("control_auth_cookie"),
        )))
        .await?;
    control.take_ownership().await?;
    Ok(control)
}
