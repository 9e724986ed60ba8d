//! The Tor side of `kairos daemon` and `kairos directory`: launch (or attach to) tor, publish
//! the process's identity as an onion service, and hand out the SOCKS transport.
//!
//! Start-up runs tor's bootstrap alongside ours: [`TorSession::open`] returns as soon as tor's
//! SOCKS port is up, the server starts, and [`TorSession::publish`] registers the onion
//! service at once (so tor builds circuits as soon as it has directory information, about a
//! second sooner than without), waits for bootstrap, then registers it again (so the
//! introduction circuits are built right away, not at tor's next one-second tick) and waits
//! for the descriptor upload.
//!
//! Invariants: in Tor mode the only `Transport` handed to the libraries is `Transport::Tor`
//! with this tor's SOCKS port — a request made while tor bootstraps waits in tor, it never
//! goes anywhere else; the server is announced (ready file, directories) only after
//! [`TorSession::publish`], so after bootstrap; the listener is bound to loopback only (tor
//! is its only client). There is no fallback: a tor that cannot start is a fatal error.

use crate::cli::TorArgs;
use anyhow::{Context, Result};
use kairos_net::Transport;
use kairos_proto::Identity;
use kairos_tor::{ControlAuth, LaunchConfig, TorProcess};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

pub use kairos_proto::addr::ONION_PORT;

/// A running (or attached) tor for this process.
pub struct TorSession {
    /// A launched tor until [`TorSession::publish`] has waited for its bootstrap.
    starting: Option<kairos_tor::Starting>,
    /// The bootstrapped (or attached) tor.
    tor: Option<TorProcess>,
    socks: SocketAddr,
    /// Service ids we published (without `.onion`), removed again on shutdown.
    published: Vec<String>,
    /// Start-up phases measured here: tor launch (until its control and SOCKS ports are up),
    /// and per publish ADD_ONION, bootstrap (the first time) and descriptor upload.
    phases: Vec<(&'static str, Duration)>,
}

impl TorSession {
    /// Launches tor with its data in `data_dir` and returns once its SOCKS port is up (it
    /// bootstraps meanwhile, reporting progress on stderr), or attaches to a running tor
    /// (`--tor-control`).
    pub async fn open(args: &TorArgs, data_dir: &Path) -> Result<Self> {
        let started = Instant::now();
        let (starting, tor, socks) = if let Some(control) = args.tor_control {
            let tor = TorProcess::attach(control, ControlAuth::Cookie(None))
                .await
                .with_context(|| format!("attaching to the tor control port {control}"))?;
            let socks = tor.socks_addr();
            (None, Some(tor), socks)
        } else {
            let starting = TorProcess::start(launch_config(args, data_dir)?)
                .await
                .context(NO_FALLBACK)?;
            let socks = starting.socks_addr();
            (Some(starting), None, socks)
        };
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, %socks, "tor started");
        Ok(TorSession {
            starting,
            tor,
            socks,
            published: Vec::new(),
            phases: vec![("tor launch", started.elapsed())],
        })
    }

    /// The transport every outgoing request of this process must use.
    pub fn transport(&self) -> Transport {
        Transport::Tor { socks: self.socks }
    }

    /// Publishes `identity` as an onion service forwarding port 80 to `target`, waits until
    /// tor has bootstrapped (the first time) and a descriptor is uploaded, and returns
    /// `<onion>:80`.
    pub async fn publish(&mut self, identity: &Identity, target: SocketAddr) -> Result<String> {
        let started = Instant::now();
        let early = self.starting.is_some();
        if let Some(mut starting) = self.starting.take() {
            let t = Instant::now();
            kairos_tor::onion::publish_onion(starting.control(), identity, ONION_PORT, target)
                .await
                .context("publishing the onion service")?;
            self.phases.push(("ADD_ONION", t.elapsed()));
            let t = Instant::now();
            self.tor = Some(starting.bootstrapped().await.context(NO_FALLBACK)?);
            self.phases.push(("bootstrap", t.elapsed()));
        }
        let tor = (self.tor.as_mut()).context("tor is not running (its start failed)")?;
        // Registering again replaces the early registration (see the module docs).
        let published = kairos_tor::onion::publish_onion_timed(
            tor.control(),
            identity,
            ONION_PORT,
            target,
            Duration::from_secs(120),
        )
        .await
        .context("publishing the onion service")?;
        if early {
            let upload = published.add_onion + published.upload;
            self.phases.push(("descriptor upload", upload));
        } else {
            self.phases.push(("ADD_ONION", published.add_onion));
            self.phases.push(("descriptor upload", published.upload));
        }
        let host = published.host;
        eprintln!(
            "tor: onion service {host} published in {:.1?}",
            started.elapsed()
        );
        self.published
            .push(host.trim_end_matches(".onion").to_owned());
        Ok(format!("{host}:{ONION_PORT}"))
    }

    /// The start-up phases measured so far ([`crate::startup::Phases`]).
    pub fn phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// `tor_socks` / `tor_control` / `tor_pid` lines for the ready file (tests check that the
    /// process talks to nothing else).
    pub fn ready_lines(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("tor_socks", self.socks.to_string())];
        if let Some(tor) = &self.tor {
            v.push(("tor_control", tor.control_addr().to_string()));
            if let Some(pid) = tor.pid() {
                v.push(("tor_pid", pid.to_string()));
            }
        }
        v
    }

    /// Removes our onion services and stops a launched tor. An attached tor keeps running, so
    /// the services (added detached) must be deleted explicitly or they would outlive us,
    /// pointing at a closed port.
    pub async fn shutdown(mut self) {
        // A tor still starting is killed when dropped.
        let Some(mut tor) = self.tor.take() else {
            return;
        };
        for id in std::mem::take(&mut self.published) {
            if let Err(e) = tor.control().del_onion(&id).await {
                tracing::warn!("removing onion service {id}: {e}");
            }
        }
        if let Err(e) = tor.shutdown().await {
            tracing::warn!("stopping tor: {e}");
        }
    }
}

const NO_FALLBACK: &str = "starting tor (kairos does not fall back to direct connections)";

/// How to launch tor: the binary, extra torrc lines and bootstrap deadline `args` give, its
/// data in `data_dir`, bootstrap progress reported on stderr.
fn launch_config(args: &TorArgs, data_dir: &Path) -> Result<LaunchConfig> {
    let mut cfg = LaunchConfig::new(data_dir).on_progress(|s| {
        eprintln!("tor: bootstrapped {:>3}% ({})", s.progress, s.summary);
    });
    if let Some(bin) = &args.tor_binary {
        cfg = cfg.tor_binary(bin);
    }
    if let Some(file) = &args.tor_config {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading extra torrc lines from {}", file.display()))?;
        cfg = cfg.torrc_lines(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if let Some(secs) = args.tor_timeout {
        cfg = cfg.bootstrap_timeout(Duration::from_secs(secs));
    }
    Ok(cfg)
}

/// Listener address for Tor mode: loopback, port chosen by the OS unless configured.
pub fn tor_listen(configured: Option<SocketAddr>) -> Result<SocketAddr> {
    let addr = configured.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "in Tor mode the listener must be on loopback (tor connects to it); {addr} is not"
    );
    Ok(addr)
}
