//! `kairos daemon`: run a node, over Tor (default) or direct loopback HTTP.

use crate::cli::{DaemonArgs, TransportKind};
use crate::settings;
use crate::tor::{tor_listen, TorSession, ONION_PORT};
use anyhow::{Context, Result};
use kairos_net::Transport;
use kairos_node::local_client::LocalClient;
use kairos_node::NodeConfig;

pub async fn run(flags: DaemonArgs) -> Result<()> {
    let (home, args) = settings::daemon(flags)?;
    kairos_net::home::ensure_home(&home)
        .with_context(|| format!("creating home {}", home.display()))?;
    let identity =
        kairos_net::home::load_or_create_identity(&home).context("loading the node identity")?;

    let mut config = NodeConfig {
        home: home.clone(),
        ..NodeConfig::default()
    };
    if let Some(v) = &args.quota {
        config.quota = settings::bytes(v, "--quota")?;
    }
    if let Some(v) = &args.max_release {
        config.max_release = settings::duration(v, "--max-release")?;
    }
    if let Some(v) = &args.retention {
        config.retention = settings::duration(v, "--retention")?;
    }
    if let Some(v) = &args.heartbeat {
        config.heartbeat = settings::duration(v, "--heartbeat")?;
    }
    if let Some(v) = args.upload_concurrency {
        config.upload_concurrency = v;
    }
    if let Some(v) = args.download_concurrency {
        config.download_concurrency = v;
    }
    if let Some(v) = &args.coding {
        config.params = settings::coding(v)?;
    }
    config.directories = args.directories.clone().unwrap_or_default();
    anyhow::ensure!(
        !config.directories.is_empty(),
        "no directory configured: pass --directory HOST:PORT (or set directories in config.toml)"
    );
    // Joining happens below, once the node is reachable at its advertised address.
    config.auto_join = false;
    let join = args.join.unwrap_or(false);

    let mut tor = None;
    match settings::transport_kind(args.transport) {
        TransportKind::Tor => {
            config.listen = tor_listen(args.listen)?;
            let session = TorSession::open(&args.tor, &home.join("tor")).await?;
            config.transport = session.transport();
            config.advertise = Some(format!(
                "{}:{ONION_PORT}",
                identity.public().onion_address()
            ));
            tor = Some(session);
        }
        TransportKind::Direct => {
            config.transport = Transport::Direct;
            config.transport.warn_if_direct();
            if let Some(l) = args.listen {
                config.listen = l;
            }
            kairos_net::check_direct_addr(&config.listen.to_string(), args.allow_non_loopback)?;
            for d in &config.directories {
                kairos_net::check_direct_addr(d, args.allow_non_loopback)?;
            }
            config.advertise = args.advertise.clone();
        }
    }

    let handle = kairos_node::start(config)
        .await
        .context("starting the node")?;
    let addr = match tor.as_mut() {
        Some(t) => t.publish(&identity, handle.peer_addr()).await?,
        None => args
            .advertise
            .clone()
            .unwrap_or_else(|| handle.peer_addr().to_string()),
    };
    let socket = handle.socket_path();
    if join {
        LocalClient::new(socket.clone())
            .start()
            .await
            .context("joining the network")?;
    }
    println!(
        "daemon ready: address {addr}, key {}, local socket {}",
        handle.public_key(),
        socket.display()
    );
    if let Some(path) = &args.ready_file {
        let mut lines = vec![
            ("key", handle.public_key().to_string()),
            ("addr", addr),
            ("socket", socket.display().to_string()),
            ("listen", handle.peer_addr().to_string()),
            ("pid", std::process::id().to_string()),
        ];
        if let Some(t) = &tor {
            lines.extend(t.ready_lines());
        }
        settings::write_ready_file(path, &lines)?;
    }

    kairos_net::shutdown_signal().await;
    eprintln!("daemon: shutting down");
    handle.shutdown().await;
    if let Some(t) = tor {
        t.shutdown().await;
    }
    Ok(())
}
