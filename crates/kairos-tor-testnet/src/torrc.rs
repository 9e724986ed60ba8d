//! The torrc lines of the network's nodes and of the clients that join it.
//!
//! Invariants:
//! * Every tor of the network, clients included, runs with `TestingTorNetwork 1` and binds
//!   outgoing connections to 127.0.0.1; relays are never exits and resolve nothing, so no
//!   packet leaves the machine.
//! * Authorities vote fast and give every relay the Guard and HSDir flags at once, because a
//!   fresh network would otherwise wait hours for them.

use crate::plan::{NodePlan, Role};
use kairos_tor::launch::torrc_quote;
use std::path::Path;

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

fn owned(options: &'static [&'static str]) -> impl Iterator<Item = String> {
    options.iter().map(|s| s.to_string())
}

/// Options of the clients and onion services that join the network.
///
/// No entry guards: in a network of five relays tor 0.4.9 often builds an onion-service
/// circuit whose last hop is its own guard, the middle relay refuses to extend back to the
/// hop it came from, and every such failure costs a one-second tick (a start-up took 2–9 s
/// instead of 1). Among the thousands of relays of the real network this hardly happens.
const CLIENT_OPTIONS: &[&str] = &["UseEntryGuards 0"];

/// torrc lines for a client or onion-service tor joining the network.
pub(crate) fn client_lines(dir_authority_lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = owned(COMMON_OPTIONS).chain(owned(CLIENT_OPTIONS)).collect();
    lines.extend(dir_authority_lines.iter().cloned());
    lines
}

/// The `DirAuthority` line of an authority whose keys exist.
pub(crate) fn dir_authority_line(p: &NodePlan) -> String {
    format!(
        "DirAuthority {} orport={} v3ident={} 127.0.0.1:{} {}",
        p.name,
        p.or_port,
        p.v3ident.as_deref().unwrap_or(""),
        p.dir_port.unwrap_or(0),
        p.fingerprint
    )
}

/// The torrc lines of one relay or authority (after the base lines `spawn_tor` writes).
pub(crate) fn node_lines(
    p: &NodePlan,
    dir_authority_lines: &[String],
    bandwidths: &Path,
) -> Vec<String> {
    let mut lines: Vec<String> = owned(COMMON_OPTIONS).chain(owned(RELAY_OPTIONS)).collect();
    lines.push(format!("Nickname {}", p.name));
    // Keep each node's log next to its data (torrc cannot quote a path inside `Log`).
    let log_file = p.dir.join("notice.log").to_string_lossy().into_owned();
    if !log_file.contains(char::is_whitespace) {
        lines.push(format!("Log notice file {log_file}"));
    }
    lines.push(format!("ORPort 127.0.0.1:{}", p.or_port));
    if p.role == Role::Authority {
        lines.extend(owned(AUTHORITY_OPTIONS));
        lines.push(format!("DirPort 127.0.0.1:{}", p.dir_port.unwrap_or(0)));
        lines.push(format!(
            "V3BandwidthsFile {}",
            torrc_quote(&bandwidths.to_string_lossy())
        ));
    }
    lines.extend(dir_authority_lines.iter().cloned());
    lines
}
