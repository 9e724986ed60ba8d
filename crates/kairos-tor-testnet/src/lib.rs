//! kairos-tor-testnet: a private Tor network on 127.0.0.1 — 3 directory authorities (which are
//! also relays, guards and HSDirs) and 2 plain relays, built from the system `tor` and
//! `tor-gencert`.
//!
//! Used by the Tor tests of the workspace, by `kairos devnet --tor` and by `kairos demo --tor`.
//! It is a crate of its own so that the `kairos-tor` library, which every node links, carries
//! no test-network code. Clients and onion services join the network with
//! [`TestNetwork::client_torrc_lines`] passed to [`kairos_tor::LaunchConfig::torrc_lines`].
//!
//! Files, in the order a start runs through them:
//! * `network.rs` — [`TestNetwork`]: start (with retries), client lines, stop;
//! * `plan.rs` — which nodes, their directories, ports and bandwidth file;
//! * `keys.rs` — every node's keys, made before any node starts;
//! * `torrc.rs` — the torrc lines of nodes and clients;
//! * `nodes.rs` — starting the nodes (with [`kairos_tor::launch::spawn_tor`]);
//! * `converge.rs` — waiting until every node has the full consensus;
//! * `error.rs` — [`TestNetError`].
//!
//! Invariants:
//! * Every port is on 127.0.0.1 and picked free by the kernel; no relay is an exit and nothing
//!   resolves DNS, so no packet ever leaves the machine.
//! * [`TestNetwork::start`] returns only when *every* node has a consensus that lists all
//!   relays with the flags onion services need (Running, Valid, Guard, HSDir) and holds all
//!   their microdescriptors.
//! * Every node's `V3BandwidthsFile` gives all relays equal weight (a fresh network's measured
//!   weights are degenerate and make onion circuits stall).
//! * Dropping the [`TestNetwork`] kills every tor it started; each tor also exits by itself if
//!   this process dies (owning control connection).
//! * If a node fails to bind a port (a race with another process for a "free" port), the whole
//!   network is started again on new ports, up to [`START_ATTEMPTS`] times.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! use kairos_tor::{LaunchConfig, TorProcess};
//! use kairos_tor_testnet::TestNetwork;
//! let net = TestNetwork::start(&dir.join("net")).await?;
//! let client = TorProcess::launch(
//!     LaunchConfig::new(dir.join("client")).torrc_lines(net.client_torrc_lines()),
//! )
//! .await?;
//! # let _ = client;
//! net.stop().await;
//! # Ok(()) }
//! ```

mod converge;
mod error;
mod keys;
mod network;
mod nodes;
mod plan;
mod torrc;

pub use error::TestNetError;
pub use network::{TestNetwork, DEFAULT_START_TIMEOUT, START_ATTEMPTS};
pub use plan::{AUTHORITIES, RELAYS};
