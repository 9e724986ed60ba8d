//! The Tor side of `kairos daemon` and `kairos directory`: launch (or attach to) tor, publish
//! the process's identity as an onion service, and hand out the SOCKS transport.
//!
//! Invariant: in Tor mode nothing is served or fetched before tor has bootstrapped, the
//! listener is bound to loopback only (tor is its only client), and the only `Transport` handed
//! to the libraries is `Transport::Tor` with this tor's SOCKS port. There is no fallback: a tor
//! that cannot start is a fatal error.

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
    tor: TorProcess,
    /// Service ids we published (without `.onion`), removed again on shutdown.
    published: Vec<String>,
    /// Start-up phases measured here: tor launch (until its first bootstrap report),
    /// bootstrap, and per publish `ADD_ONION` and descriptor upload.
    phases: Vec<(&'static str, Duration)>,
}

impl TorSession {
    /// Launches tor with its data in `data_dir` (or attaches, with `--tor-control`) and waits
    /// for it to bootstrap, reporting progress on stderr.
    pub async fn open(args: &TorArgs, data_dir: &Path) -> Result<Self> {
        let started = Instant::now();
        let first_report = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
        let tor = if let Some(control) = args.tor_control {
            TorProcess::attach(control, ControlAuth::Cookie(None))
                .await
                .with_context(|| format!("attaching to the tor control port {control}"))?
        } else {
            let first_report = first_report.clone();
            let mut cfg = LaunchConfig::new(data_dir).on_progress(move |s| {
                let _ = first_report.set(Instant::now());
                eprintln!("tor: bootstrapped {:>3}% ({})", s.progress, s.summary);
            });
            if let Some(bin) = &args.tor_binary {
                cfg = cfg.tor_binary(bin);
            }
            if let Some(file) = &args.tor_config {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("reading extra torrc lines from {}", file.display())
                })?;
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
            TorProcess::launch(cfg)
                .await
                .context("starting tor (kairos does not fall back to direct connections)")?
        };
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, socks = %tor.socks_addr(), "tor ready");
        let launched = first_report
            .get()
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(started));
        Ok(TorSession {
            tor,
            published: Vec::new(),
            phases: vec![
                ("tor launch", launched),
                ("bootstrap", started.elapsed().saturating_sub(launched)),
            ],
        })
    }

    /// The transport every outgoing request of this process must use.
    pub fn transport(&self) -> Transport {
        Transport::Tor {
            socks: self.tor.socks_addr(),
        }
    }

    /// Publishes `identity` as an onion service forwarding port 80 to `target`, waits until a
    /// descriptor is uploaded, and returns `<onion>:80`.
    pub async fn publish(&mut self, identity: &Identity, target: SocketAddr) -> Result<String> {
        let started = Instant::now();
        let published = kairos_tor::onion::publish_onion_timed(
            self.tor.control(),
            identity,
            ONION_PORT,
            target,
            Duration::from_secs(120),
        )
        .await
        .context("publishing the onion service")?;
        self.phases.push(("ADD_ONION", published.add_onion));
        self.phases.push(("descriptor upload", published.upload));
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
        let mut v = vec![
            ("tor_socks", self.tor.socks_addr().to_string()),
            ("tor_control", self.tor.control_addr().to_string()),
        ];
        if let Some(pid) = self.tor.pid() {
            v.push(("tor_pid", pid.to_string()));
        }
        v
    }

    /// Removes our onion services and stops a launched tor. An attached tor keeps running, so
    /// the services (added detached) must be deleted explicitly or they would outlive us,
    /// pointing at a closed port.
    pub async fn shutdown(mut self) {
        for id in std::mem::take(&mut self.published) {
            if let Err(e) = self.tor.control().del_onion(&id).await {
                tracing::warn!("removing onion service {id}: {e}");
            }
        }
        if let Err(e) = self.tor.shutdown().await {
            tracing::warn!("stopping tor: {e}");
        }
    }
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
