//! What the two server commands (`kairos daemon`, `kairos directory`) share: the home and its
//! identity, the network (tor, or direct loopback HTTP), the ready file, and stopping on
//! SIGINT / SIGTERM.
//!
//! Invariants: the ready file appears only once the server serves at the address it names,
//! and atomically (devnet, tests and scripts poll for it and read its `key`, `addr`, `listen`,
//! `pid` and, over Tor, `tor_*` lines). At shutdown the server stops before tor, and tor
//! removes the onion services it published for us.

use crate::cli::{TorArgs, TransportKind};
use crate::role::Role;
use crate::tor::{tor_listen, TorSession};
use anyhow::{Context, Result};
use kairos_net::Transport;
use kairos_proto::Identity;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

/// Creates `home` if needed, checks that it is `role`'s ([`crate::role`]) and loads (or
/// creates) the identity kept there.
pub fn open_home(home: &Path, role: Role) -> Result<Identity> {
    kairos_net::home::ensure_home(home)
        .with_context(|| format!("creating home {}", home.display()))?;
    crate::role::claim(home, role)?;
    kairos_net::home::load_or_create_identity(home)
        .with_context(|| format!("loading the {} identity", role.name()))
}

/// The listen address for `kind`: over Tor loopback only (tor is the only client), port chosen
/// by the OS unless configured; direct, the configured address or `default`, refused unless on
/// loopback (or `allow_non_loopback`).
pub fn listen_addr(
    kind: TransportKind,
    configured: Option<SocketAddr>,
    default: SocketAddr,
    allow_non_loopback: bool,
) -> Result<SocketAddr> {
    match kind {
        TransportKind::Tor => tor_listen(configured),
        TransportKind::Direct => {
            let addr = configured.unwrap_or(default);
            kairos_net::check_direct_addr(&addr.to_string(), allow_non_loopback)?;
            Ok(addr)
        }
    }
}

/// How a server process reaches and is reached by others.
pub enum Network {
    /// Our tor (bootstrapping until the server is published, see [`crate::tor`]): every
    /// request goes through its SOCKS port, the server is published as an onion service.
    Tor(Box<TorSession>),
    /// Plain HTTP on loopback. Not anonymous.
    Direct,
}

impl Network {
    /// Starts (or attaches to) tor for `TransportKind::Tor`, with its data under `home/tor`;
    /// tor goes on bootstrapping until [`Network::publish`] waits for it.
    pub async fn open(kind: TransportKind, tor: &TorArgs, home: &Path) -> Result<Network> {
        Ok(match kind {
            TransportKind::Tor => {
                Network::Tor(Box::new(TorSession::open(tor, &home.join("tor")).await?))
            }
            TransportKind::Direct => Network::Direct,
        })
    }

    /// The transport every outgoing request of this process must use.
    pub fn transport(&self) -> Transport {
        match self {
            Network::Tor(t) => t.transport(),
            Network::Direct => Transport::Direct,
        }
    }

    /// Makes the server listening on `target` reachable and returns its address: over Tor
    /// `identity`'s onion service (once tor has bootstrapped and uploaded its descriptor),
    /// direct `direct`.
    pub async fn publish(
        &mut self,
        identity: &Identity,
        target: SocketAddr,
        direct: String,
    ) -> Result<String> {
        match self {
            Network::Tor(t) => t.publish(identity, target).await,
            Network::Direct => Ok(direct),
        }
    }

    /// The start-up phases tor's side measured (none for direct).
    pub fn phases(&self) -> &[(&'static str, std::time::Duration)] {
        match self {
            Network::Tor(t) => t.phases(),
            Network::Direct => &[],
        }
    }

    /// Stops tor (after removing our onion services); nothing to do for direct.
    pub async fn shutdown(self) {
        if let Network::Tor(t) = self {
            t.shutdown().await;
        }
    }
}

/// Announces a serving server and runs until `signal` ([`kairos_net::shutdown_signal`], made
/// before the server announced itself anywhere, so a SIGTERM sent on seeing the announcement
/// shuts it down instead of killing it): writes the ready file (if asked) with `lines`, then
/// this process's `pid`, then tor's lines; on the signal prints `<name>: shutting down`,
/// awaits `stop` (the server's shutdown), then stops tor.
pub async fn until_signal(
    name: &str,
    ready_file: Option<&Path>,
    mut lines: Vec<(&'static str, String)>,
    net: Network,
    signal: impl Future<Output = ()>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    if let Some(path) = ready_file {
        lines.push(("pid", std::process::id().to_string()));
        if let Network::Tor(t) = &net {
            lines.extend(t.ready_lines());
        }
        write_ready_file(path, &lines)?;
    }
    signal.await;
    eprintln!("{name}: shutting down");
    stop.await;
    net.shutdown().await;
    Ok(())
}

/// Writes `key=value` lines atomically (write a temp file, rename): a reader never sees half.
fn write_ready_file(path: &Path, lines: &[(&str, String)]) -> Result<()> {
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
