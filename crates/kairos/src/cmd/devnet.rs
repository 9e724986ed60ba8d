//! `kairos devnet`: a local network until Ctrl-C / SIGTERM.

use crate::cli::DevnetArgs;
use crate::devnet::Devnet;
use anyhow::Result;

pub async fn run(args: DevnetArgs) -> Result<()> {
    let params = args
        .coding
        .map_or_else(kairos_seal::Params::default, |c| c.0);
    anyhow::ensure!(
        args.nodes >= params.total_shards(),
        "--nodes {} is too few: every block needs {} distinct nodes (coding {}+{})",
        args.nodes,
        params.total_shards(),
        params.k(),
        params.m()
    );
    if !args.tor {
        kairos_net::Transport::Direct.warn_if_direct();
    }
    let mut net = {
        let mut daemon_args = args.daemon_args.clone();
        if let Some(c) = &args.coding {
            daemon_args.extend(["--coding".into(), c.to_string()]);
        }
        Devnet::start(&args.home, args.nodes, args.tor, &daemon_args).await?
    };
    eprintln!(
        "devnet: directory at {} (home {})",
        net.directory_addr(),
        net.directory.home.display()
    );
    for n in &net.nodes {
        eprintln!(
            "devnet: {} at {}  —  KAIROS_HOME={} kairos put FILE --release-time +1m",
            n.name,
            n.info.get("addr").map_or("?", String::as_str),
            n.home.display()
        );
    }
    eprintln!(
        "devnet: logs in {}; Ctrl-C stops the network",
        net.home.join("logs").display()
    );
    // Handlers first: a SIGTERM sent on seeing `ready` must stop the network, not kill us.
    let stop = kairos_net::shutdown_signal();
    println!("ready");
    stop.await;
    eprintln!("devnet: stopping");
    net.shutdown().await;
    Ok(())
}
