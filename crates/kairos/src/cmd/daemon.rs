//! `kairos daemon`: run a node, over Tor (default) or direct loopback HTTP.

use crate::cli::DaemonArgs;
use crate::serve::{self, Network};
use crate::settings;
use crate::startup::Phases;
use crate::tor::ONION_PORT;
use anyhow::{Context, Result};
use kairos_node::local_client::LocalClient;
use kairos_node::NodeConfig;
use kairos_proto::Identity;

pub async fn run(args: DaemonArgs) -> Result<()> {
    let s = settings::daemon::resolve(&args)?;
    let identity = serve::open_home(&s.home, crate::role::Role::Node)?;
    let mut config = s.config.clone();
    config.listen = serve::listen_addr(
        s.transport,
        s.listen,
        config.listen,
        args.allow_non_loopback,
    )?;
    let mut phases = Phases::new();
    let mut net = Network::open(s.transport, &s.tor, &s.home).await?;
    phases.extend(net.phases(), "network");
    set_network(&mut config, &net, &identity, &s, args.allow_non_loopback)?;

    let handle = kairos_node::start(config)
        .await
        .context("starting the node")?;
    phases.mark("node start");
    if s.join {
        // Over Tor the circuits to the directories are built while tor bootstraps and our
        // descriptor uploads (tor holds the requests until it can), not after.
        handle.warm_up_directories();
    }
    let direct = s
        .advertise
        .clone()
        .unwrap_or_else(|| handle.peer_addr().to_string());
    let before = net.phases().len();
    let addr = net.publish(&identity, handle.peer_addr(), direct).await?;
    phases.extend(&net.phases()[before..], "publish");
    let socket = handle.socket_path();
    if s.join {
        LocalClient::new(socket.clone())
            .start()
            .await
            .context("joining the network")?;
        phases.mark("join");
    }
    let startup = phases.summary();
    eprintln!("daemon start-up: {startup}");
    let signal = kairos_net::shutdown_signal();
    println!(
        "daemon ready: address {addr}, key {}, local socket {}",
        handle.public_key(),
        socket.display()
    );
    let lines = vec![
        ("key", handle.public_key().to_string()),
        ("addr", addr),
        ("socket", socket.display().to_string()),
        ("listen", handle.peer_addr().to_string()),
        ("startup", startup),
    ];
    let stop = handle.shutdown();
    let ready = args.ready_file.as_deref();
    serve::until_signal("daemon", ready, lines, net, signal, stop).await
}

/// The transport and the advertised address; direct, every directory must be reachable
/// without leaving loopback (unless allowed).
fn set_network(
    config: &mut NodeConfig,
    net: &Network,
    identity: &Identity,
    s: &settings::daemon::Daemon,
    allow_non_loopback: bool,
) -> Result<()> {
    // kairos_node::start prints the loud not-anonymous warning for the direct transport.
    config.transport = net.transport();
    config.advertise = match net {
        Network::Tor(_) => Some(format!(
            "{}:{ONION_PORT}",
            identity.public().onion_address()
        )),
        Network::Direct => {
            for d in &config.directories {
                kairos_net::check_direct_addr(d, allow_non_loopback)?;
            }
            s.advertise.clone()
        }
    };
    Ok(())
}
