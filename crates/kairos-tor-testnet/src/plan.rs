//! Planning one start of the network: which nodes, their directories and ports, and the
//! bandwidth file the authorities vote with.
//!
//! Invariants:
//! * Ports are distinct loopback ports the kernel reported free; they are released just before
//!   tor binds them, so a race with another process is possible and is handled by starting
//!   again ([`crate::TestNetError::is_port_race`]).
//! * The bandwidth file gives every relay the same weight: a fresh network's measured weights
//!   are degenerate and make onion circuits stall.

use crate::error::TestNetError;
use kairos_tor::launch::prepare_dir;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Directory authorities in the network (each also a relay).
pub const AUTHORITIES: usize = 3;
/// Plain relays in the network.
pub const RELAYS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Authority,
    Relay,
}

/// One node to start; `fingerprint` and `v3ident` are filled in once its keys exist.
pub(crate) struct NodePlan {
    pub name: String,
    pub role: Role,
    pub dir: PathBuf,
    pub or_port: u16,
    pub dir_port: Option<u16>,
    pub fingerprint: String,
    pub v3ident: Option<String>,
}

/// Plans [`AUTHORITIES`] authorities and [`RELAYS`] relays under `dir`, creating their
/// directories and picking their ports.
pub(crate) fn plan_nodes(dir: &Path) -> Result<Vec<NodePlan>, TestNetError> {
    let ports = free_ports(2 * AUTHORITIES + RELAYS)?;
    let mut plans = Vec::new();
    for i in 0..AUTHORITIES + RELAYS {
        let (role, name) = if i < AUTHORITIES {
            (Role::Authority, format!("kairosauth{i}"))
        } else {
            (Role::Relay, format!("kairosrelay{}", i - AUTHORITIES))
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
    Ok(plans)
}

/// Reserves `n` distinct free loopback ports (released just before tor binds them).
fn free_ports(n: usize) -> Result<Vec<u16>, TestNetError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(TestNetError::Ports)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(TestNetError::Ports)
}

/// Writes the `V3BandwidthsFile` (equal weight for every planned relay) into `dir`.
pub(crate) fn write_bandwidths(dir: &Path, plans: &[NodePlan]) -> Result<PathBuf, TestNetError> {
    let path = dir.join("bandwidths");
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut bw = format!("{timestamp}\n");
    for p in plans {
        bw.push_str(&format!("node_id=${} bw=1000\n", p.fingerprint));
    }
    std::fs::write(&path, bw).map_err(TestNetError::io(&path))?;
    Ok(path)
}
