//! [`TestNetwork`]: starting the whole network (retrying after a port race), the lines clients
//! join it with, and stopping it.
//!
//! One start ([`start_once`]) runs in named steps: a clean attempt directory, the node plan,
//! every node's keys, the `DirAuthority` lines and bandwidth file, then all nodes at once, then
//! the wait for convergence (`converge.rs`).
//!
//! Invariants:
//! * [`TestNetwork::start`] returns only when *every* node has a consensus that lists all
//!   relays with the flags onion services need and holds all their microdescriptors. Clients
//!   started before that pick guards from a partial consensus and lose 10–30 s.
//! * A failed attempt stops every node it started before the error is returned; dropping a
//!   [`TestNetwork`] kills every tor it started.
//! * Each attempt uses a fresh subdirectory (`net1`, `net2`, …) so no state of a failed
//!   attempt leaks into the next.

use crate::converge::wait_converged;
use crate::error::TestNetError;
use crate::keys::{generate_all, KeyTools};
use crate::nodes::{start_nodes, stop_all, Node};
use crate::plan::{plan_nodes, write_bandwidths, NodePlan, Role};
use crate::torrc::{client_lines, dir_authority_line};
use kairos_tor::launch::{find_tool, find_tor, prepare_dir};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How many times a start is retried after a port race.
pub const START_ATTEMPTS: usize = 3;
/// Default deadline for the network to converge.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

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
    pub async fn start(dir: &Path) -> Result<TestNetwork, TestNetError> {
        Self::start_with(dir, None, DEFAULT_START_TIMEOUT).await
    }

    /// Starts the network with an explicit tor binary (`None`: search the system) and deadline.
    pub async fn start_with(
        dir: &Path,
        tor_binary: Option<&Path>,
        timeout: Duration,
    ) -> Result<TestNetwork, TestNetError> {
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
                Err(e) if attempt < START_ATTEMPTS && e.is_port_race() => {
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
    /// [`kairos_tor::LaunchConfig::torrc_lines`]).
    pub fn client_torrc_lines(&self) -> Vec<String> {
        client_lines(&self.dir_authority_lines)
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
        stop_all(&mut self.nodes).await;
    }

    /// Where the nodes keep their data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// One attempt to start the network in `dir` (see the module docs for the steps).
async fn start_once(
    tor: &Path,
    gencert: &Path,
    dir: &Path,
    timeout: Duration,
    started: Instant,
) -> Result<TestNetwork, TestNetError> {
    let tools = KeyTools {
        tor: tor.to_path_buf(),
        gencert: gencert.to_path_buf(),
        empty_torrc: fresh_attempt_dir(dir)?,
    };
    let mut plans = plan_nodes(dir)?;
    generate_all(&tools, &mut plans).await?;
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "test network keys ready"
    );
    let dir_authority_lines: Vec<String> = plans
        .iter()
        .filter(|p| p.role == Role::Authority)
        .map(dir_authority_line)
        .collect();
    let bandwidths = write_bandwidths(dir, &plans)?;

    // From here on, a failure stops the nodes already started.
    let mut net = TestNetwork {
        nodes: Vec::new(),
        dir_authority_lines,
        dir: dir.to_path_buf(),
        startup: Duration::ZERO,
    };
    match run_nodes(&mut net, tor, &plans, &bandwidths, timeout, started).await {
        Ok(()) => Ok(net),
        Err(e) => {
            stop_all(&mut net.nodes).await;
            Err(e)
        }
    }
}

/// Empties (or creates) the attempt directory; returns the path of an empty torrc in it for
/// the key-generation helpers.
fn fresh_attempt_dir(dir: &Path) -> Result<PathBuf, TestNetError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(TestNetError::io(dir))?;
    }
    prepare_dir(dir)?;
    let empty = dir.join("empty-torrc");
    std::fs::write(&empty, "").map_err(TestNetError::io(&empty))?;
    Ok(empty)
}

/// Starts every planned node into `net`, then waits for the network to converge.
async fn run_nodes(
    net: &mut TestNetwork,
    tor: &Path,
    plans: &[NodePlan],
    bandwidths: &Path,
    timeout: Duration,
    started: Instant,
) -> Result<(), TestNetError> {
    start_nodes(
        &mut net.nodes,
        tor,
        plans,
        &net.dir_authority_lines,
        bandwidths,
    )
    .await?;
    debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "test network nodes started"
    );
    let fingerprints: Vec<String> = plans.iter().map(|p| p.fingerprint.clone()).collect();
    wait_converged(&mut net.nodes, &fingerprints, timeout, started).await
}
