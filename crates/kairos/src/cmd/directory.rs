//! `kairos directory`: run a directory server, over Tor (default) or direct loopback HTTP.

use crate::cli::{DirectoryArgs, TransportKind};
use crate::settings;
use crate::tor::{tor_listen, TorSession};
use anyhow::{Context, Result};
use kairos_net::Transport;

pub async fn run(flags: DirectoryArgs) -> Result<()> {
    let ready_file = flags.ready_file.clone();
    let listen_flag = flags.listen;
    let settings::DirectorySettings {
        home,
        mut config,
        transport,
        allow_loopback_nodes,
        tor: tor_args,
    } = settings::directory(flags)?;
    kairos_net::home::ensure_home(&home)
        .with_context(|| format!("creating home {}", home.display()))?;
    let identity = kairos_net::home::load_or_create_identity(&home)
        .context("loading the directory identity")?;

    let mut tor = None;
    match settings::transport_kind(transport) {
        TransportKind::Tor => {
            // Only tor connects to the listener; let the OS pick its port unless configured.
            config.listen = tor_listen(listen_flag)?;
            let session = TorSession::open(&tor_args, &home.join("tor")).await?;
            config.transport = session.transport();
            // Over Tor only onion addresses bound to their record's key are real identities.
            config.allow_loopback_nodes = false;
            tor = Some(session);
        }
        TransportKind::Direct => {
            // kairos_directory::start logs the loud not-anonymous warning.
            config.transport = Transport::Direct;
            kairos_net::check_direct_addr(&config.listen.to_string(), false)?;
            config.allow_loopback_nodes = allow_loopback_nodes.unwrap_or(true);
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
    if let Some(path) = &ready_file {
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
