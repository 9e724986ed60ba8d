//! Starting the system `tor` as an owned child process, or attaching to a running one.
//!
//! Invariants:
//! * A launched tor runs with its own DataDirectory, binds its control and SOCKS ports to
//!   127.0.0.1 on ports the kernel picks (`auto`), and is told our PID
//!   (`__OwningControllerProcess`) before we even connect; once connected we send
//!   `TAKEOWNERSHIP`, so tor exits as soon as our control connection closes — including when
//!   this process crashes.
//! * [`TorProcess`] kills its child on drop. We keep the child's PID ourselves (tor deletes its
//!   own PidFile as soon as a clean exit starts).
//! * The torrc we write is complete on its own: `--defaults-torrc` points at an empty file in
//!   the DataDirectory, so no system-wide torrc can change the behaviour.
//! * Errors say what to do: a missing binary names the Debian package, an early exit or a
//!   bootstrap timeout carries the tail of tor's log.

use crate::control::{BootstrapStatus, Control, ControlAuth, ControlError};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

/// Lines of tor's log kept for error messages.
const LOG_TAIL_LINES: usize = 40;
/// How long tor may take to open its control port.
const CONTROL_PORT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed for bootstrapping.
pub const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(180);
const CONTROL_PORT_FILE: &str = "control_port";
const TORRC_FILE: &str = "torrc";
const DEFAULTS_FILE: &str = "torrc-defaults";

/// Everything that can go wrong running tor.
#[derive(Debug, Error)]
pub enum TorError {
    #[error("the tor binary was not found (looked at: {looked}); install the Debian package `tor` (apt-get install tor) or configure the path to the tor binary")]
    TorNotFound { looked: String },
    #[error("the helper program {tool} was not found (looked at: {looked}); install the Debian package `tor`, which provides it")]
    ToolNotFound { tool: &'static str, looked: String },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare tor's directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tor ({label}) exited during startup with {status}; last lines of its log:\n{log}")]
    EarlyExit {
        label: String,
        status: String,
        log: String,
    },
    #[error("tor ({label}) did not open its control port within {timeout:?}; last lines of its log:\n{log}")]
    ControlPortTimeout {
        label: String,
        timeout: Duration,
        log: String,
    },
    #[error("tor did not finish bootstrapping within {timeout:?}: stuck at {progress}% ({summary}){warning}. Check that tor can reach its directory authorities (network, firewall, DirAuthority lines). Last lines of its log:\n{log}")]
    BootstrapTimeout {
        timeout: Duration,
        progress: u8,
        summary: String,
        /// `"; tor warns: ..."` or empty.
        warning: String,
        log: String,
    },
    #[error(
        "tor has no SOCKS listener on 127.0.0.1; set `SocksPort auto` (or a port) in its torrc"
    )]
    NoSocks,
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("tor published onion service {published}.onion but this identity's address is {expected}; refusing to use a service that does not match the key")]
    OnionMismatch { published: String, expected: String },
    #[error("onion service target {0} is not a loopback address; kairos only forwards onion traffic to 127.0.0.1")]
    NotLoopback(SocketAddr),
    #[error(
        "cannot reach {target} through tor after {attempts} attempt(s) in {elapsed:?}: {source}"
    )]
    Unreachable {
        target: String,
        attempts: u32,
        elapsed: Duration,
        source: crate::socks::SocksError,
    },
    #[error("the private Tor test network did not converge within {timeout:?}: {detail}")]
    TestNetTimeout { timeout: Duration, detail: String },
}

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

/// Finds the tor binary: `configured` if given (a bare name is searched in `PATH`), else `tor`
/// in `PATH`, then in `/usr/sbin` and `/usr/bin` (not on a non-root user's `PATH` on Debian).
pub fn find_tor(configured: Option<&Path>) -> Result<PathBuf, TorError> {
    let mut looked = Vec::new();
    let found = match configured {
        Some(p) if p.components().count() > 1 || p.is_absolute() => {
            looked.push(p.display().to_string());
            is_executable(p).then(|| p.to_path_buf())
        }
        Some(p) => search("tor", Some(p), &mut looked),
        None => search("tor", None, &mut looked),
    };
    found.ok_or_else(|| TorError::TorNotFound {
        looked: looked.join(", "),
    })
}

/// Finds a helper program shipped with tor (e.g. `tor-gencert`): next to `tor`, in `PATH`,
/// then in the system directories.
pub fn find_tool(tool: &'static str, tor: &Path) -> Result<PathBuf, TorError> {
    let mut looked = Vec::new();
    if let Some(dir) = tor.parent() {
        let p = dir.join(tool);
        looked.push(p.display().to_string());
        if is_executable(&p) {
            return Ok(p);
        }
    }
    search(tool, None, &mut looked).ok_or_else(|| TorError::ToolNotFound {
        tool,
        looked: looked.join(", "),
    })
}

fn search(default: &str, name: Option<&Path>, looked: &mut Vec<String>) -> Option<PathBuf> {
    let name = name
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default.into());
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/bin".into());
    for dir in dirs {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let candidate = dir.join(&name);
        if is_executable(&candidate) {
            return Some(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The last lines tor printed, shared with the task that reads its output.
#[derive(Clone, Default)]
pub(crate) struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= LOG_TAIL_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().cloned().collect()
    }

    pub(crate) fn render(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            "(tor printed nothing)".into()
        } else {
            lines
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fn pump_output(reader: impl AsyncRead + Unpin + Send + 'static, label: String, tail: LogTail) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("[err]") {
                warn!(tor = %label, "{line}");
            } else {
                debug!(tor = %label, "{line}");
            }
            tail.push(line);
        }
    });
}

/// Quotes a torrc value (torrc accepts C-style escapes inside double quotes).
pub(crate) fn torrc_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn prepare_dir(path: &Path) -> Result<(), TorError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| TorError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(())
}

/// A freshly started tor with an authenticated, owning control connection.
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub control: Control,
    pub log: LogTail,
    pub label: String,
}

impl Spawned {
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

/// Writes a torrc and starts tor on it; waits for the control port, authenticates with the
/// cookie and takes ownership. `lines` are complete torrc lines after our base lines.
pub(crate) async fn spawn_tor(
    binary: &Path,
    data_dir: &Path,
    lines: &[String],
    label: &str,
) -> Result<Spawned, TorError> {
    prepare_dir(data_dir)?;
    let data_dir = std::fs::canonicalize(data_dir).map_err(|source| TorError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let port_file = data_dir.join(CONTROL_PORT_FILE);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TorError::DataDir { path, source }
    };
    match std::fs::remove_file(&port_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&port_file)(e)),
    }
    let mut torrc = vec![
        format!("DataDirectory {}", torrc_quote(&data_dir.to_string_lossy())),
        "ControlPort auto".to_string(),
        format!(
            "ControlPortWriteToFile {}",
            torrc_quote(&port_file.to_string_lossy())
        ),
        "CookieAuthentication 1".to_string(),
        format!("__OwningControllerProcess {}", std::process::id()),
        "Log notice stdout".to_string(),
        "ClientUseIPv6 0".to_string(),
    ];
    torrc.extend(lines.iter().cloned());
    for line in &torrc {
        if line.contains('\n') || line.contains('\r') {
            return Err(TorError::Tool {
                tool: "torrc".into(),
                detail: format!("torrc line contains a newline: {line:?}"),
            });
        }
    }
    let torrc_path = data_dir.join(TORRC_FILE);
    let defaults_path = data_dir.join(DEFAULTS_FILE);
    std::fs::write(&torrc_path, torrc.join("\n") + "\n").map_err(io_err(&torrc_path))?;
    std::fs::write(&defaults_path, "").map_err(io_err(&defaults_path))?;

    let mut child = Command::new(binary)
        .arg("-f")
        .arg(&torrc_path)
        .arg("--defaults-torrc")
        .arg(&defaults_path)
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
    let pid = child.id().unwrap_or(0);
    debug!(tor = label, pid, "started tor");
    let log = LogTail::default();
    if let Some(out) = child.stdout.take() {
        pump_output(out, label.to_string(), log.clone());
    }
    if let Some(err) = child.stderr.take() {
        pump_output(err, label.to_string(), log.clone());
    }

    // Wait for tor to write its control port.
    let start = Instant::now();
    let control_addr = loop {
        if let Some(status) = child.try_wait().map_err(|source| TorError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })? {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(TorError::EarlyExit {
                label: label.to_string(),
                status: status.to_string(),
                log: log.render(),
            });
        }
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Some(addr) = parse_port_file(&text) {
                break addr;
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
    };
    let mut control = Control::connect(control_addr).await?;
    control
        .authenticate(&ControlAuth::Cookie(Some(
            data_dir.join("control_auth_cookie"),
        )))
        .await?;
    control.take_ownership().await?;
    debug!(tor = label, %control_addr, "tor control port ready; we own this tor");
    Ok(Spawned {
        child,
        pid,
        control,
        log,
        label: label.to_string(),
    })
}

/// Parses tor's `ControlPortWriteToFile` content: `PORT=127.0.0.1:1234`.
fn parse_port_file(text: &str) -> Option<SocketAddr> {
    let line = text.lines().find(|l| l.starts_with("PORT="))?;
    let addr: SocketAddr = line.strip_prefix("PORT=")?.trim().parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}

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

impl TorProcess {
    /// Starts tor, waits until it is bootstrapped (or the deadline passes) and returns it.
    pub async fn launch(config: LaunchConfig) -> Result<TorProcess, TorError> {
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
        let ready = async {
            wait_bootstrapped(
                &mut spawned,
                config.bootstrap_timeout,
                config.progress.as_ref(),
            )
            .await?;
            spawned
                .control
                .socks_listener()
                .await?
                .ok_or(TorError::NoSocks)
        }
        .await;
        let socks_addr = match ready {
            Ok(a) => a,
            Err(e) => {
                spawned.terminate().await;
                return Err(e);
            }
        };
        info!(
            pid = spawned.pid,
            socks = %socks_addr,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tor bootstrapped"
        );
        let control_addr = spawned.control.addr();
        Ok(TorProcess {
            pid: Some(spawned.pid),
            child: Some(spawned.child),
            control: spawned.control,
            control_addr,
            socks_addr,
            data_dir: Some(config.data_dir),
            log: spawned.log,
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
                crate::socks::connect(self.socks_addr, host, port, Some(isolation)),
            )
            .await
            .unwrap_or(Err(crate::socks::SocksError::Timeout(budget)));
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
                    self.control.signal(crate::control::Signal::Newnym).await?;
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
        let _ = self.control.signal(crate::control::Signal::Shutdown).await;
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

/// Polls `status/bootstrap-phase` until 100 %, reporting progress; errors on exit or timeout.
pub(crate) async fn wait_bootstrapped(
    spawned: &mut Spawned,
    timeout: Duration,
    progress: Option<&ProgressFn>,
) -> Result<(), TorError> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<BootstrapStatus> = None;
    loop {
        let status = match spawned.control.bootstrap_status().await {
            Ok(s) => s,
            Err(e) => {
                if let Some(exit) = spawned.exit_error().await {
                    return Err(exit);
                }
                return Err(e.into());
            }
        };
        if last.as_ref() != Some(&status) {
            debug!(tor = %spawned.label, progress = status.progress, tag = %status.tag, "bootstrap");
            if let Some(f) = progress {
                f(&status);
            }
        }
        let done = status.progress >= 100;
        last = Some(status);
        if done {
            return Ok(());
        }
        if let Some(exit) = spawned.exit_error().await {
            return Err(exit);
        }
        if Instant::now() >= deadline {
            let s = last.unwrap_or(BootstrapStatus {
                progress: 0,
                tag: String::new(),
                summary: String::new(),
                warning: None,
            });
            return Err(TorError::BootstrapTimeout {
                timeout,
                progress: s.progress,
                summary: s.summary,
                warning: s
                    .warning
                    .map(|w| format!("; tor warns: {w}"))
                    .unwrap_or_default(),
                log: spawned.log.render(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_file() {
        assert_eq!(
            parse_port_file("PORT=127.0.0.1:44415\n"),
            Some("127.0.0.1:44415".parse().unwrap())
        );
        assert_eq!(parse_port_file("PORT=10.0.0.1:1\n"), None);
        assert_eq!(parse_port_file("garbage"), None);
    }

    #[test]
    fn proxy_url() {
        let a: SocketAddr = "127.0.0.1:9050".parse().unwrap();
        assert_eq!(socks_proxy_url(a, "w1"), "socks5h://w1:x@127.0.0.1:9050");
        assert_eq!(
            socks_proxy_url(a, "a b:c@"),
            "socks5h://a%20b%3Ac%40:x@127.0.0.1:9050"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(torrc_quote("/a b/\"c\\"), "\"/a b/\\\"c\\\\\"");
    }

    #[test]
    fn missing_binary_is_reported() {
        let e = find_tor(Some(Path::new("/nonexistent/dir/tor"))).unwrap_err();
        assert!(matches!(e, TorError::TorNotFound { .. }));
        assert!(e.to_string().contains("Debian package `tor`"));
    }
}
