//! A local kairos network of real processes: one directory and N daemons, each a child
//! `kairos` process with its own home under one folder, on loopback (direct transport) or on a
//! private Tor network started here (`kairos-tor-testnet`), plus a local drand **test chain**
//! (`kairos-beacon`, in this process) so that uploads carry the drand lock: its key lives in
//! `<home>/beacon/test-chain.key` (kept across restarts, so locked files stay openable), the
//! directory relays its beacons, and every daemon locks to it. On a Tor devnet the beacon
//! server is an onion service of its own tor, so the directory fetches beacons through SOCKS
//! like any other request.
//!
//! Invariants: every child is started by us and stopped by us by PID (SIGTERM, then SIGKILL
//! after a grace period), also when start-up fails half-way or the `Devnet` is dropped; nothing
//! binds a fixed port; the test chain says loudly that it is not drand.

use anyhow::{bail, Context, Result};
use kairos_tor_testnet::TestNetwork;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a child may take to become ready.
const READY_TIMEOUT_DIRECT: Duration = Duration::from_secs(60);
const READY_TIMEOUT_TOR: Duration = Duration::from_secs(240);

/// One child process of the network.
pub struct Proc {
    pub name: String,
    pub home: PathBuf,
    child: Option<Child>,
    /// `key=value` lines of its ready file (`key`, `addr`, `socket`).
    pub info: HashMap<String, String>,
}

impl Proc {
    /// Stops the process: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Linux pids fit in an i32 (pid_max <= 2^22).
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// A running local network.
pub struct Devnet {
    pub home: PathBuf,
    pub directory: Proc,
    pub nodes: Vec<Proc>,
    tor: Option<TestNetwork>,
    beacon: Option<TestBeacon>,
}

/// Seconds between rounds of a devnet's test chain: short, so a devnet file opens within a
/// second of its release time.
const TEST_CHAIN_PERIOD: u64 = 1;

/// The devnet's test chain: its beacon server and the files the children read.
struct TestBeacon {
    server: kairos_beacon::BeaconServer,
    /// The tor publishing the server as an onion service (Tor devnet).
    network: crate::serve::Network,
    /// The chain info JSON (`--lock-chain` of the daemons).
    info_file: PathBuf,
    /// The beacon server's URL (an onion on a Tor devnet): the daemons' `--beacon-upstream`.
    url: String,
    /// The directory's config file naming the chain and the server.
    directory_config: PathBuf,
}

impl TestBeacon {
    /// Loads (or creates) the test chain under `<home>/beacon` and serves its beacons on
    /// loopback; with `torrc` (the private Tor network's client lines), also as an onion
    /// service, which is then the directory's upstream.
    async fn start(home: &Path, torrc: Option<&Path>) -> Result<TestBeacon> {
        let dir = home.join("beacon");
        std::fs::create_dir_all(&dir)?;
        let now = kairos_proto::time::now_unix();
        let chain =
            kairos_beacon::load_or_create(&dir.join("test-chain.key"), now, TEST_CHAIN_PERIOD)?;
        let info = kairos_lock::ChainInfo::of(chain.chain());
        let info_file = dir.join("chain-info.json");
        std::fs::write(&info_file, serde_json::to_vec_pretty(&info)?)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = kairos_beacon::start(
            listener,
            std::sync::Arc::new(chain),
            kairos_proto::clock::Clock::system(),
        )?;
        let (kind, tor) = match torrc {
            Some(torrc) => (
                crate::cli::TransportKind::Tor,
                crate::cli::TorArgs {
                    tor_config: Some(torrc.to_owned()),
                    tor_timeout: Some(READY_TIMEOUT_TOR.as_secs()),
                    ..Default::default()
                },
            ),
            None => (crate::cli::TransportKind::Direct, Default::default()),
        };
        let mut network = crate::serve::Network::open(kind, &tor, &dir).await?;
        let addr = network
            .publish(
                &kairos_proto::Identity::generate(),
                server.local_addr(),
                server.local_addr().to_string(),
            )
            .await?;
        let url = format!("http://{addr}");
        let directory_config = dir.join("directory.toml");
        let toml = format!(
            "# Written by kairos devnet on every start: the devnet's test chain.\n[[test_chains]]\ninfo_file = {}\nupstreams = [{}]\n",
            toml_string(&info_file.display().to_string()),
            toml_string(&url),
        );
        std::fs::write(&directory_config, toml)?;
        eprintln!(
            "devnet: TEST CHAIN {} (a local stand-in for drand, not drand) serving beacons at {url}",
            server.chain_hash(),
        );
        Ok(TestBeacon {
            server,
            network,
            url,
            info_file,
            directory_config,
        })
    }
}

impl TestBeacon {
    async fn shutdown(self) {
        self.server.shutdown().await;
        self.network.shutdown().await;
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().context("finding the kairos executable")
}

async fn spawn(name: &str, home: &Path, args: &[String], log_dir: &Path) -> Result<Proc> {
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    let ready = home.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(log_dir.join(format!("{name}.log")))?;
    let child = Command::new(exe()?)
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .env(
            "KAIROS_LOG",
            std::env::var("KAIROS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Proc {
        name: name.to_owned(),
        home: home.to_owned(),
        child: Some(child),
        info: HashMap::new(),
    })
}

/// Waits until `proc` wrote its ready file (the child writes it atomically once serving) or
/// exits.
async fn wait_ready(proc: &mut Proc, timeout: Duration, log_dir: &Path) -> Result<()> {
    let ready = proc.home.join("ready");
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Ok(text) = std::fs::read_to_string(&ready) {
            proc.info = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            return Ok(());
        }
        let log = || {
            std::fs::read_to_string(log_dir.join(format!("{}.log", proc.name))).unwrap_or_default()
        };
        if let Some(child) = proc.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready; its log:\n{}",
                    proc.name,
                    log()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} was not ready after {timeout:?}; its log:\n{}",
                proc.name,
                log()
            );
        }
    }
}

/// What every child is started with for the chosen transport.
struct ChildTransport {
    /// `--transport ...` (and, over Tor, `--tor-config` with the private network's torrc lines).
    args: Vec<String>,
    /// How long a child may take to become ready.
    timeout: Duration,
}

/// The children's transport flags; with `tor`, first starts the private Tor network they use.
async fn child_transport(home: &Path, tor: bool) -> Result<(ChildTransport, Option<TestNetwork>)> {
    if !tor {
        let args = vec!["--transport".into(), "direct".into()];
        let timeout = READY_TIMEOUT_DIRECT;
        return Ok((ChildTransport { args, timeout }, None));
    }
    eprintln!("devnet: starting a private Tor network on 127.0.0.1 ...");
    let started = Instant::now();
    let net = TestNetwork::start(&home.join("tor-network"))
        .await
        .context("starting the private Tor network")?;
    eprintln!(
        "devnet: private Tor network up in {:.1?}",
        started.elapsed()
    );
    let torrc = home.join("tor-network").join("client.torrc");
    std::fs::write(&torrc, net.client_torrc_lines().join("\n") + "\n")?;
    let args = vec![
        "--transport".into(),
        "tor".into(),
        "--tor-config".into(),
        torrc.display().to_string(),
    ];
    let timeout = READY_TIMEOUT_TOR;
    Ok((ChildTransport { args, timeout }, Some(net)))
}

/// `kairos directory ...` for the directory at `home`, relaying the test chain of `beacon`.
fn directory_command(home: &Path, transport: &ChildTransport, beacon: &TestBeacon) -> Vec<String> {
    let mut args = vec![
        "directory".into(),
        "--home".into(),
        home.display().to_string(),
        "--config".into(),
        beacon.directory_config.display().to_string(),
    ];
    args.extend(transport.args.iter().cloned());
    args.extend([
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--sync-interval".into(),
        "2s".into(),
    ]);
    args
}

/// `kairos daemon ...` for the node at `home`, joining at `directory`, locking to the test
/// chain of `beacon`, with `extra` last.
fn daemon_command(
    home: &Path,
    directory: &str,
    transport: &ChildTransport,
    beacon: &TestBeacon,
    extra: &[String],
) -> Vec<String> {
    let mut args = vec![
        "daemon".into(),
        "--home".into(),
        home.display().to_string(),
        "--directory".into(),
        directory.to_owned(),
        "--join".into(),
        "true".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--lock-chain".into(),
        beacon.info_file.display().to_string(),
        "--beacon-upstream".into(),
        beacon.url.clone(),
    ];
    args.extend(transport.args.iter().cloned());
    args.extend(extra.iter().cloned());
    args
}

impl Devnet {
    /// Starts a directory and `nodes` daemons (each also given `daemon_args`) under `home`;
    /// with `tor`, first a private Tor network, and everything talks through it.
    pub async fn start(
        home: &Path,
        nodes: usize,
        tor: bool,
        daemon_args: &[String],
    ) -> Result<Devnet> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let home = std::path::absolute(home)?;
        let logs = home.join("logs");
        std::fs::create_dir_all(&logs)?;
        let (transport, network) = child_transport(&home, tor).await?;
        let torrc = tor.then(|| home.join("tor-network").join("client.torrc"));
        let beacon = match TestBeacon::start(&home, torrc.as_deref()).await {
            Ok(b) => b,
            Err(e) => {
                if let Some(tor) = network {
                    tor.stop().await;
                }
                return Err(e.context("starting the devnet's test chain"));
            }
        };
        let dir_home = home.join("directory");
        let dir_args = directory_command(&dir_home, &transport, &beacon);
        let directory = match spawn("directory", &dir_home, &dir_args, &logs).await {
            Ok(d) => d,
            Err(e) => {
                if let Some(tor) = network {
                    tor.stop().await;
                }
                beacon.shutdown().await;
                return Err(e);
            }
        };
        // From here on `net` owns every process, so each failure path can just shut it down.
        let mut net = Devnet {
            home,
            directory,
            nodes: Vec::new(),
            tor: network,
            beacon: Some(beacon),
        };
        if let Err(e) = net.start_nodes(nodes, &transport, daemon_args, &logs).await {
            net.shutdown().await;
            return Err(e);
        }
        Ok(net)
    }

    /// Waits for the directory, then starts `count` daemons joining it and waits for them.
    async fn start_nodes(
        &mut self,
        count: usize,
        transport: &ChildTransport,
        extra: &[String],
        logs: &Path,
    ) -> Result<()> {
        wait_ready(&mut self.directory, transport.timeout, logs).await?;
        let dir_addr = self
            .directory
            .info
            .get("addr")
            .cloned()
            .context("directory ready file has no addr")?;
        let beacon = self
            .beacon
            .as_ref()
            .context("the test chain is not running")?;
        for i in 0..count {
            let name = format!("node-{i}");
            let node_home = self.home.join(&name);
            let args = daemon_command(&node_home, &dir_addr, transport, beacon, extra);
            self.nodes
                .push(spawn(&name, &node_home, &args, logs).await?);
        }
        for node in &mut self.nodes {
            wait_ready(node, transport.timeout, logs).await?;
        }
        Ok(())
    }

    /// The directory's address (`host:port`).
    pub fn directory_addr(&self) -> &str {
        self.directory.info.get("addr").map_or("", String::as_str)
    }

    /// Stops every process (nodes first, then the directory, then the Tor network).
    pub async fn shutdown(&mut self) {
        let grace = Duration::from_secs(10);
        futures::future::join_all(self.nodes.iter_mut().map(|n| n.stop(grace))).await;
        self.directory.stop(grace).await;
        if let Some(tor) = self.tor.take() {
            tor.stop().await;
        }
        if let Some(beacon) = self.beacon.take() {
            beacon.shutdown().await;
        }
    }
}
