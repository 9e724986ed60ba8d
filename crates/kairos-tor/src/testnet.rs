//! A private Tor network on 127.0.0.1: 3 directory authorities (which are also relays, guards
//! and HSDirs) and 2 plain relays, built from the system `tor` and `tor-gencert`.
//!
//! Used by this crate's integration tests, by other crates' tests, and by `kairos devnet --tor`.
//! Clients and onion services join it with [`TestNetwork::client_torrc_lines`] passed to
//! [`crate::LaunchConfig::torrc_lines`].
//!
//! Invariants:
//! * Every port is on 127.0.0.1 and picked free by the kernel; no relay is an exit and nothing
//!   resolves DNS, so no packet ever leaves the machine.
//! * [`TestNetwork::start`] returns only when *every* node has a consensus that lists all
//!   relays with the flags onion services need (Running, Valid, Guard, HSDir) and holds all
//!   their microdescriptors. Clients started before that pick guards from a partial consensus
//!   and lose 10–30 s.
//! * Every node's `V3BandwidthsFile` gives all relays equal weight (a fresh network's measured
//!   weights are degenerate and make onion circuits stall).
//! * Dropping the [`TestNetwork`] kills every tor it started; each tor also exits by itself if
//!   this process dies (owning control connection).
//! * If a node fails to bind a port (a race with another process for a "free" port), the whole
//!   network is started again on new ports, up to [`START_ATTEMPTS`] times.

use crate::launch::{find_tool, find_tor, prepare_dir, spawn_tor, Spawned, TorError};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::Command;
use tracing::{debug, info, warn};

/// Directory authorities in the network (each also a relay).
pub const AUTHORITIES: usize = 3;
/// Plain relays in the network.
pub const RELAYS: usize = 2;
/// How many times a start is retried after a port race.
pub const START_ATTEMPTS: usize = 3;
/// Default deadline for the network to converge.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Options every tor of the test network uses, clients included.
const COMMON_OPTIONS: &[&str] = &[
    "TestingTorNetwork 1",
    "OutboundBindAddress 127.0.0.1",
    "PathsNeededToBuildCircuits 0.67",
    "GeoIPFile /dev/null",
    "GeoIPv6File /dev/null",
    "KISTSchedRunInterval 1 msec",
    "ShutdownWaitLength 0",
];

/// Options of every relay (authorities included).
const RELAY_OPTIONS: &[&str] = &[
    "Address 127.0.0.1",
    "AssumeReachable 1",
    "SocksPort 0",
    "ExitRelay 0",
    "ExitPolicy reject *:*",
    "ServerDNSResolvConfFile /dev/null",
    "ServerDNSDetectHijacking 0",
    "ServerDNSTestAddresses",
    "ContactInfo kairos-testnet@localhost",
];

/// Options of the directory authorities: fast voting, every relay gets every flag at once.
const AUTHORITY_OPTIONS: &[&str] = &[
    "AuthoritativeDirectory 1",
    "V3AuthoritativeDirectory 1",
    "TestingV3AuthInitialVotingInterval 5",
    "TestingV3AuthInitialVoteDelay 2",
    "TestingV3AuthInitialDistDelay 2",
    "V3AuthVotingInterval 10",
    "V3AuthVoteDelay 2",
    "V3AuthDistDelay 2",
    "V3AuthNIntervalsValid 2",
    "TestingDirAuthVoteGuard *",
    "TestingDirAuthVoteHSDir *",
    "AuthDirVoteStableGuaranteeMinUptime 0",
    "AuthDirVoteStableGuaranteeMTBF 0",
    "AuthDirFastGuarantee 1",
    "ConsensusParams cc_alg=2",
];

/// Flags every relay must have in a node's consensus before the network counts as ready.
const REQUIRED_FLAGS: &[&str] = &["Running", "Valid", "Guard", "HSDir"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Authority,
    Relay,
}

struct NodePlan {
    name: String,
    role: Role,
    dir: PathBuf,
    or_port: u16,
    dir_port: Option<u16>,
    fingerprint: String,
    v3ident: Option<String>,
}

struct Node {
    name: String,
    tor: Spawned,
}

/// A running private Tor network. Dropping it stops every node.
pub struct TestNetwork {
    nodes: Vec<Node>,
    dir_authority_lines: Vec<String>,
    dir: PathBuf,
    startup: Duration,
}

impl std::fmt::Debug for TestNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNetwork")
            .field("dir", &self.dir)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
            )
            .field("startup", &self.startup)
            .finish_non_exhaustive()
    }
}

impl TestNetwork {
    /// Starts the network in `dir` (one subdirectory per node) with the system tor and
    /// [`DEFAULT_START_TIMEOUT`].
    pub async fn start(dir: &Path) -> Result<TestNetwork, TorError> {
        Self::start_with(dir, None, DEFAULT_START_TIMEOUT).await
    }

    /// Starts the network with an explicit tor binary (`None`: search the system) and deadline.
    pub async fn start_with(
        dir: &Path,
        tor_binary: Option<&Path>,
        timeout: Duration,
    ) -> Result<TestNetwork, TorError> {
        let tor = find_tor(tor_binary)?;
        let gencert = find_tool("tor-gencert", &tor)?;
        prepare_dir(dir)?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let attempt_dir = dir.join(format!("net{attempt}"));
            match start_once(&tor, &gencert, &attempt_dir, timeout, started).await {
                Ok(mut net) => {
                    net.dir = dir.to_path_buf();
                    net.startup = started.elapsed();
                    info!(
                        elapsed_ms = net.startup.as_millis() as u64,
                        attempt, "private Tor network ready"
                    );
                    return Ok(net);
                }
                Err(e) if attempt < START_ATTEMPTS && is_port_race(&e) => {
                    warn!(
                        attempt,
                        "test network lost a port race; retrying on new ports: {e}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// torrc lines for a client or onion-service tor joining this network (pass them to
    /// [`crate::LaunchConfig::torrc_lines`]).
    pub fn client_torrc_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = COMMON_OPTIONS.iter().map(|s| s.to_string()).collect();
        lines.extend(self.dir_authority_lines.iter().cloned());
        lines
    }

    /// The `DirAuthority` lines of this network.
    pub fn dir_authority_lines(&self) -> &[String] {
        &self.dir_authority_lines
    }

    /// Number of relays (authorities included).
    pub fn relay_count(&self) -> usize {
        self.nodes.len()
    }

    /// How long [`TestNetwork::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Stops every node and waits until each has exited (dropping the network also kills them,
    /// without waiting).
    pub async fn stop(mut self) {
        self.terminate().await;
    }

    async fn terminate(&mut self) {
        for node in &mut self.nodes {
            node.tor.terminate().await;
        }
        self.nodes.clear();
    }

    /// Where the nodes keep their data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn is_port_race(e: &TorError) -> bool {
    match e {
        TorError::EarlyExit { log, .. } | TorError::ControlPortTimeout { log, .. } => {
            log.contains("Address already in use") || log.contains("Could not bind")
        }
        _ => false,
    }
}

/// Reserves `n` distinct free loopback ports (released just before tor binds them).
fn free_ports(n: usize) -> Result<Vec<u16>, TorError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TorError::DataDir {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TorError::DataDir {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

async fn run_tool(cmd: &mut Command, tool: &str) -> Result<std::process::Output, TorError> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| TorError::Tool {
            tool: tool.to_string(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        return Err(TorError::Tool {
            tool: tool.to_string(),
            detail: format!(
                "exited with {}:\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        });
    }
    Ok(out)
}

async fn start_once(
    tor: &Path,
    gencert: &Path,
    dir: &Path,
    timeout: Duration,
    started: Instant,
) -> Result<TestNetwork, TorError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| TorError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    prepare_dir(dir)?;
    let empty = dir.join("empty-torrc");
    std::fs::write(&empty, "").map_err(|source| TorError::DataDir {
        path: empty.clone(),
        source,
    })?;

    // Plan the nodes and their ports.
    let ports = free_ports(2 * AUTHORITIES + RELAYS)?;
    let mut plans = Vec::new();
    for i in 0..AUTHORITIES + RELAYS {
        let role = if i < AUTHORITIES {
            Role::Authority
        } else {
            Role::Relay
        };
        let name = match role {
            Role::Authority => format!("kairosauth{i}"),
            Role::Relay => format!("kairosrelay{}", i - AUTHORITIES),
        };
        let node_dir = dir.join(&name);
        prepare_dir(&node_dir)?;
        plans.push(NodePlan {
            name,
            role,
            dir: node_dir,
            or_port: ports[i],
            dir_port: (role == Role::Authority).then(|| ports[AUTHORITIES + RELAYS + i]),
            fingerprint: String::new(),
            v3ident: None,
        });
    }

    // Keys: authority v3 identities, then every relay's fingerprint (in parallel).
    let mut jobs = Vec::new();
    for plan in &plans {
        let tor = tor.to_path_buf();
        let gencert = gencert.to_path_buf();
        let empty = empty.clone();
        let dir = plan.dir.clone();
        let name = plan.name.clone();
        let or_port = plan.or_port;
        let dir_port = plan.dir_port;
        jobs.push(tokio::spawn(async move {
            generate_keys(&tor, &gencert, &empty, &dir, &name, or_port, dir_port).await
        }));
    }
    for (plan, job) in plans.iter_mut().zip(jobs) {
        let (fingerprint, v3ident) = job.await.map_err(|e| TorError::Tool {
            tool: "key generation".into(),
            detail: e.to_string(),
        })??;
        plan.fingerprint = fingerprint;
        plan.v3ident = v3ident;
    }
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "test network keys ready"
    );

    let dir_authority_lines: Vec<String> = plans
        .iter()
        .filter(|p| p.role == Role::Authority)
        .map(|p| {
            format!(
                "DirAuthority {} orport={} v3ident={} 127.0.0.1:{} {}",
                p.name,
                p.or_port,
                p.v3ident.as_deref().unwrap_or(""),
                p.dir_port.unwrap_or(0),
                p.fingerprint
            )
        })
        .collect();

    let bw_file = dir.join("bandwidths");
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut bw = format!("{timestamp}\n");
    for p in &plans {
        bw.push_str(&format!("node_id=${} bw=1000\n", p.fingerprint));
    }
    std::fs::write(&bw_file, bw).map_err(|source| TorError::DataDir {
        path: bw_file.clone(),
        source,
    })?;

    // Start every node. From here on, a failure stops the nodes already started.
    let mut net = TestNetwork {
        nodes: Vec::new(),
        dir_authority_lines: dir_authority_lines.clone(),
        dir: dir.to_path_buf(),
        startup: Duration::ZERO,
    };
    let fingerprints: Vec<String> = plans.iter().map(|p| p.fingerprint.clone()).collect();
    let result = start_nodes(&mut net, tor, &plans, &bw_file, started).await;
    let result = match result {
        Ok(()) => net.wait_converged(&fingerprints, timeout, started).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(net),
        Err(e) => {
            net.terminate().await;
            Err(e)
        }
    }
}

async fn start_nodes(
    net: &mut TestNetwork,
    tor: &Path,
    plans: &[NodePlan],
    bw_file: &Path,
    started: Instant,
) -> Result<(), TorError> {
    let dir_authority_lines = net.dir_authority_lines.clone();
    // Start all nodes at once (each start waits for its control port), then collect every
    // result so that nodes started before a failure are still stopped by the caller.
    let mut jobs = Vec::new();
    for p in plans {
        let mut lines: Vec<String> = COMMON_OPTIONS.iter().map(|s| s.to_string()).collect();
        lines.extend(RELAY_OPTIONS.iter().map(|s| s.to_string()));
        lines.push(format!("Nickname {}", p.name));
        // Keep each node's log next to its data (torrc cannot quote a path inside `Log`).
        let log_file = p.dir.join("notice.log").to_string_lossy().into_owned();
        if !log_file.contains(char::is_whitespace) {
            lines.push(format!("Log notice file {log_file}"));
        }
        lines.push(format!("ORPort 127.0.0.1:{}", p.or_port));
        if p.role == Role::Authority {
            lines.extend(AUTHORITY_OPTIONS.iter().map(|s| s.to_string()));
            lines.push(format!("DirPort 127.0.0.1:{}", p.dir_port.unwrap_or(0)));
            lines.push(format!(
                "V3BandwidthsFile {}",
                crate::launch::torrc_quote(&bw_file.to_string_lossy())
            ));
        }
        lines.extend(dir_authority_lines.iter().cloned());
        let (tor, dir, name) = (tor.to_path_buf(), p.dir.clone(), p.name.clone());
        jobs.push(tokio::spawn(async move {
            spawn_tor(&tor, &dir, &lines, &name).await
        }));
    }
    let mut first_error = None;
    for (p, job) in plans.iter().zip(jobs) {
        let result = job.await.unwrap_or_else(|e| {
            Err(TorError::Tool {
                tool: "tor start".into(),
                detail: e.to_string(),
            })
        });
        match result {
            Ok(tor) => net.nodes.push(Node {
                name: p.name.clone(),
                tor,
            }),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "test network nodes started"
    );
    Ok(())
}

/// Creates a node's keys; returns its relay fingerprint and, for an authority, its v3 identity.
async fn generate_keys(
    tor: &Path,
    gencert: &Path,
    empty: &Path,
    dir: &Path,
    name: &str,
    or_port: u16,
    dir_port: Option<u16>,
) -> Result<(String, Option<String>), TorError> {
    let mut v3ident = None;
    if let Some(dir_port) = dir_port {
        let keys = dir.join("keys");
        prepare_dir(&keys)?;
        // tor-gencert reads the (empty) passphrase from stdin with --passphrase-fd 0.
        run_tool(
            Command::new(gencert)
                .current_dir(&keys)
                .arg("--create-identity-key")
                .args(["-m", "12"])
                .args(["-a", &format!("127.0.0.1:{dir_port}")])
                .args(["-i", "authority_identity_key"])
                .args(["-s", "authority_signing_key"])
                .args(["-c", "authority_certificate"])
                .args(["--passphrase-fd", "0"]),
            "tor-gencert",
        )
        .await?;
        let cert = keys.join("authority_certificate");
        let text = std::fs::read_to_string(&cert).map_err(|source| TorError::DataDir {
            path: cert.clone(),
            source,
        })?;
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("fingerprint "))
            .map(|s| s.trim().to_string())
            .filter(|s| is_fingerprint(s))
            .ok_or_else(|| TorError::Tool {
                tool: "tor-gencert".into(),
                detail: "certificate has no fingerprint line".into(),
            })?;
        v3ident = Some(fp);
    }
    run_tool(
        Command::new(tor)
            .arg("--list-fingerprint")
            .arg("-f")
            .arg(empty)
            .arg("--defaults-torrc")
            .arg(empty)
            .arg("--DataDirectory")
            .arg(dir)
            .args(["--ORPort", &format!("127.0.0.1:{or_port}")])
            .args(["--Nickname", name])
            .args(["--Address", "127.0.0.1"])
            .args(["--ContactInfo", "kairos-testnet@localhost"])
            .args(["--ExitRelay", "0"])
            .args(["--Log", "err stderr"]),
        "tor --list-fingerprint",
    )
    .await?;
    let fp_file = dir.join("fingerprint");
    let text = std::fs::read_to_string(&fp_file).map_err(|source| TorError::DataDir {
        path: fp_file.clone(),
        source,
    })?;
    let fingerprint = text
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
        .filter(|s| is_fingerprint(s))
        .ok_or_else(|| TorError::Tool {
            tool: "tor --list-fingerprint".into(),
            detail: format!("unexpected fingerprint file: {text:?}"),
        })?;
    Ok((fingerprint, v3ident))
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What one node's consensus says, for readiness checks and error messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct NodeView {
    listed: usize,
    with_flags: usize,
    microdescs: usize,
}

impl TestNetwork {
    async fn wait_converged(
        &mut self,
        fingerprints: &[String],
        timeout: Duration,
        started: Instant,
    ) -> Result<(), TorError> {
        let deadline = Instant::now() + timeout;
        let n = fingerprints.len();
        let mut views = vec![NodeView::default(); self.nodes.len()];
        let mut ready = vec![false; self.nodes.len()];
        loop {
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if ready[i] {
                    continue;
                }
                if let Some(e) = node.tor.exit_error().await {
                    return Err(e);
                }
                let view = node_view(&mut node.tor, fingerprints).await?;
                if view != views[i] {
                    debug!(node = %node.name, ?view, "consensus view");
                }
                ready[i] = view.listed == n && view.with_flags == n && view.microdescs >= n;
                if ready[i] {
                    debug!(
                        node = %node.name,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "node has the full consensus"
                    );
                }
                views[i] = view;
            }
            if ready.iter().all(|r| *r) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let detail = self
                    .nodes
                    .iter()
                    .zip(&views)
                    .map(|(node, v)| {
                        format!(
                            "{}: {}/{n} relays listed, {}/{n} with {:?}, {}/{n} microdescriptors",
                            node.name, v.listed, v.with_flags, REQUIRED_FLAGS, v.microdescs
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(TorError::TestNetTimeout { timeout, detail });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn node_view(tor: &mut Spawned, fingerprints: &[String]) -> Result<NodeView, TorError> {
    // Before the first consensus, tor answers these keys with an error: count that as empty.
    let ns = tor.control.get_info("ns/all").await.unwrap_or_default();
    let md = tor.control.get_info("md/all").await.unwrap_or_default();
    let mut view = NodeView::default();
    let mut current_listed = false;
    let b64 = data_encoding::BASE64_NOPAD;
    let wanted: Vec<Vec<u8>> = fingerprints
        .iter()
        .filter_map(|f| data_encoding::HEXUPPER.decode(f.as_bytes()).ok())
        .collect();
    for line in ns.lines() {
        if let Some(rest) = line.strip_prefix("r ") {
            // r <nickname> <base64 identity> ...
            current_listed = rest
                .split(' ')
                .nth(1)
                .and_then(|id| b64.decode(id.as_bytes()).ok())
                .is_some_and(|id| wanted.contains(&id));
            if current_listed {
                view.listed += 1;
            }
        } else if let Some(flags) = line.strip_prefix("s ") {
            let flags: Vec<&str> = flags.split(' ').collect();
            if current_listed && REQUIRED_FLAGS.iter().all(|f| flags.contains(f)) {
                view.with_flags += 1;
            }
        }
    }
    view.microdescs = md
        .lines()
        .filter(|l| l.starts_with("ntor-onion-key "))
        .count();
    Ok(view)
}
