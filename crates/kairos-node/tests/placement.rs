//! Placement against a directory that lists only its own nodes: real directories, real nodes.
//!
//! Directory A lists the honest nodes; directory B lists only nodes of its own (Sybils). The
//! uploader asks both, and no block may end up with `k` pieces on B's nodes — which is what a
//! hostile directory would need to open a block early with the peer lock alone.

mod common;

use common::*;
use kairos_directory::{DirectoryClient, DirectoryConfig};
use kairos_net::Transport;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_listing_only_its_own_nodes_never_gets_k_pieces_of_a_block() {
    let clock = manual_clock();
    let params = small_params();
    let k = params.k();
    let net = Net::start(6, params, clock.clock()).await;
    let hostile = kairos_directory::start(DirectoryConfig {
        home: net.root.path().join("hostile-directory"),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        clock: clock.clock(),
        node_ttl: Duration::from_secs(3600),
        ..DirectoryConfig::default()
    })
    .await
    .unwrap();
    let hostile_addr = hostile.local_addr().to_string();
    let mut sybils = Vec::new();
    for i in 0..12 {
        let home = net.root.path().join(format!("sybil-{i}"));
        let cfg = node_config(&home, &hostile_addr, params, &clock.clock());
        sybils.push(kairos_node::start(cfg).await.unwrap());
    }
    let sybil_keys: HashSet<_> = sybils.iter().map(|s| s.public_key()).collect();
    // The uploader asks both directories.
    let home = net.root.path().join("uploader");
    let mut cfg = node_config(&home, &net.dir_addr(), params, &clock.clock());
    cfg.directories.push(hostile_addr.clone());
    let uploader = kairos_node::start(cfg.clone()).await.unwrap();
    let client = kairos_node::LocalClient::new(cfg.socket_path());

    let work = tempfile::tempdir().unwrap();
    // 40 blocks of 256 KiB.
    let bytes = data(10_000_000, 7);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 30;
    let put = client.put(&path, release, |_| {}).await.unwrap();
    clock.advance(Duration::from_secs(30));

    let dirs = DirectoryClient::new(Transport::Direct, vec![net.dir_addr(), hostile_addr])
        .unwrap()
        .with_clock(clock.clock());
    let (_, placement) = v2_file(&dirs, &put.id).await;
    let mut on_sybils = 0;
    for (b, block) in placement.blocks.iter().enumerate() {
        let count = block
            .iter()
            .filter(|&&h| sybil_keys.contains(&placement.holders[h as usize]))
            .count();
        assert!(
            count < k,
            "block {b} has {count} pieces on the hostile directory's nodes"
        );
        on_sybils += count;
    }
    // B's nodes were candidates (the survey asked B), only capped.
    assert!(
        on_sybils > 0,
        "no piece went to the second directory's nodes"
    );
    let dest = work.path().join("out");
    client.get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    uploader.shutdown().await;
    for s in sybils {
        s.shutdown().await;
    }
    hostile.shutdown().await;
    net.shutdown().await;
}
