//! `kairos directory`: run a directory server, over Tor (default) or direct loopback HTTP.

use crate::cli::{DirectoryArgs, TransportKind};
use crate::settings;
use crate::tor::{tor_listen, TorSession};
use anyhow::{Context, Result};
use kairos_directory::{DirectoryConfig, Sibling};
use kairos_net::Transport;

pub async fn run(flags: DirectoryArgs) -> Result<()> {
    let (home, args) = settings::directory(flags)?;
    kairos_net::home::ensure_home(&home)
        .with_context(|| format!("creating home {}", home.display()))?;
    let identity = kairos_net::home::load_or_create_identity(&home)
        .context("loading the directory identity")?;
    let kind = settings::transport_kind(args.transport);

    let mut config = DirectoryConfig {
        home: home.clone(),
        ..DirectoryConfig::default()
    };
    if let Some(v) = &args.node_ttl {
        config.node_ttl = settings::duration(v, "--node-ttl")?;
    }
    if let Some(v) = &args.retention {
        config.manifest_retention = settings::duration(v, "--retention")?;
    }
    if let Some(v) = &args.sync_interval {
        config.sync_interval = settings::duration(v, "--sync-interval")?;
    }
    for s in args.siblings.iter().flatten() {
        let sibling: Sibling = s
            .parse()
            .map_err(|e| anyhow::anyhow!("--sibling {s:?}: {e}"))?;
        config.siblings.push(sibling);
    }

    let mut tor = None;
    match kind {
        TransportKind::Tor => {
            config.listen = tor_listen(args.listen)?;
            let session = TorSession::open(&args.tor, &home.join("tor")).await?;
            config.transport = session.transport();
            // Only onion addresses bound to their record's key are real identities over Tor.
            config.allow_loopback_nodes = false;
            tor = Some(session);
        }
        TransportKind::Direct => {
            config.transport = Transport::Direct;
            config.transport.warn_if_direct();
            if let Some(l) = args.listen {
                config.listen = l;
            }
            kairos_net::check_direct_addr(&config.listen.to_string(), false)?;
            config.allow_loopback_nodes = args.allow_loopback_nodes.unwrap_or(true);
        }
    }

    let handle = kairos_directory::start(config)
        .await
        .context("starting the directory")?;
    let addr = match tor.as_mut() {
        Some(t) => t.publish(&identity, handle.local_addr()).await?,
        None => handle.local_addr().to_string(),
    };
    let key = handle.public_key();
    println!("directory ready: address {addr}, key {key}");
    println!("nodes use: --directory {addr}    siblings use: --sibling {key}@{addr}");
    if let Some(path) = &args.ready_file {
        let mut lines = vec![
            ("key", key.to_string()),
            ("addr", addr.clone()),
            ("listen", handle.local_addr().to_string()),
            ("pid", std::process::id().to_string()),
        ];
        if let Some(t) = &tor {
            lines.extend(t.ready_lines());
        }
        settings::write_ready_file(path, &lines)?;
    }

    kairos_net::shutdown_signal().await;
    eprintln!("directory: shutting down");
    handle.shutdown().await;
    if let Some(t) = tor {
        t.shutdown().await;
    }
    Ok(())
}
