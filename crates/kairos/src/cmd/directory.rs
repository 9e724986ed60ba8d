//! `kairos directory`: run a directory server, over Tor (default) or direct loopback HTTP.

use crate::cli::DirectoryArgs;
use crate::serve::{self, Network};
use crate::settings;
use anyhow::{Context, Result};

pub async fn run(args: DirectoryArgs) -> Result<()> {
    let s = settings::directory::resolve(&args)?;
    let identity = serve::open_home(&s.home, crate::role::Role::Directory)?;
    let mut config = s.config;
    config.listen = serve::listen_addr(s.transport, s.listen, config.listen, false)?;
    let mut net = Network::open(s.transport, &s.tor, &s.home).await?;
    // kairos_directory::start logs the loud not-anonymous warning in direct mode.
    config.transport = net.transport();
    config.allow_loopback_nodes = match net {
        // Over Tor only onion addresses bound to their record's key are real identities.
        Network::Tor(_) => false,
        Network::Direct => s.allow_loopback_nodes.unwrap_or(true),
    };

    let handle = kairos_directory::start(config)
        .await
        .context("starting the directory")?;
    let local = handle.local_addr();
    let addr = net.publish(&identity, local, local.to_string()).await?;
    let key = handle.public_key();
    let signal = kairos_net::shutdown_signal();
    println!("directory ready: address {addr}, key {key}");
    println!("nodes use: --directory {addr}    siblings use: --sibling {key}@{addr}");
    let lines = vec![
        ("key", key.to_string()),
        ("addr", addr),
        ("listen", local.to_string()),
    ];
    let stop = handle.shutdown();
    let ready = args.ready_file.as_deref();
    serve::until_signal("directory", ready, lines, net, signal, stop).await
}
