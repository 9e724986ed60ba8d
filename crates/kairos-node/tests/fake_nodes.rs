//! Fake nodes cannot lock uploads out (issue: "fake nodes lock out uploads"): thousands of
//! validly self-signed node records at addresses nobody serves.
//!
//! * An honest directory reaches a node before listing it: every fake subscription is refused
//!   (`422 unreachable`), the listing holds only the real nodes, and puts work as before.
//! * A directory that lists whatever it is sent (here: a real directory with reaching turned
//!   off, standing for a hostile or careless one) hands the uploader 256 dead candidates next
//!   to the real nodes; the put tries them, drops each one that fails, and completes on the
//!   real nodes; the file opens identical after release.

mod common;

use common::*;
use kairos_directory::config::RateLimit;
use kairos_directory::{DirectoryClient, DirectoryConfig};
use kairos_directory_client::ClientError;
use kairos_net::Transport;
use kairos_proto::{Identity, NodeRecord, SignedNodeRecord};
use std::time::{Duration, Instant};

const FAKES: usize = 2000;

/// `count` fresh identities' records, each at a loopback address nobody listens on.
fn fake_records(count: usize, now: u64) -> Vec<SignedNodeRecord> {
    // A port just released: nothing listens there on any 127.x address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (0..count)
        .map(|i| {
            let id = Identity::generate();
            let addr = format!("127.0.{}.{}:{port}", 1 + i / 250, 1 + i % 250);
            NodeRecord::new(&id, addr, 1 << 40, now).sign(&id).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_honest_directory_lists_no_fake_node_and_puts_keep_working() {
    let clock = manual_clock();
    let net = Net::start(6, small_params(), clock.clock()).await;
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let started = Instant::now();
    let mut refused = 0;
    for rec in fake_records(200, clock.now()) {
        match dir.subscribe(&rec).await {
            Err(ClientError::Rejected { code, .. }) if code == "unreachable" => refused += 1,
            other => panic!("a fake node was not refused as unreachable: {other:?}"),
        }
    }
    eprintln!("200 fake subscriptions refused in {:?}", started.elapsed());
    assert_eq!(refused, 200);
    let listed = dir.list_nodes(256, None).await.unwrap();
    assert_eq!(listed.len(), 6, "only the real nodes are listed");

    // A record claiming a real node's address under another key is refused too: that node
    // answers with its own key.
    let thief = Identity::generate();
    let stolen = NodeRecord::new(&thief, net.node(1).peer_addr().to_string(), 1, clock.now())
        .sign(&thief)
        .unwrap();
    match dir.subscribe(&stolen).await {
        Err(ClientError::Rejected { code, message, .. }) => {
            assert_eq!(code, "unreachable");
            assert!(message.contains("another node"), "{message}");
        }
        other => panic!("a stolen address was accepted: {other:?}"),
    }

    let work = tempfile::tempdir().unwrap();
    let bytes = data(3_000_000, 3);
    let path = write_file(work.path(), "f", &bytes);
    let put = net.client(0).put(&path, clock.now() + 30, |_| {}).await;
    let put = put.unwrap();
    assert_eq!(put.retries, 0, "no fake node was a candidate: {put:?}");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_candidates_from_a_careless_directory_cost_time_not_the_upload() {
    let clock = manual_clock();
    let root = tempfile::tempdir().unwrap();
    let unlimited = RateLimit {
        per_second: 1e9,
        burst: 1e9,
    };
    let mut careless = DirectoryConfig {
        home: root.path().join("careless"),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        reach_nodes: false,
        clock: clock.clock(),
        node_ttl: Duration::from_secs(3600),
        ..DirectoryConfig::default()
    };
    careless.limits.per_connection = unlimited;
    careless.limits.shutdown_grace = Duration::from_secs(2);
    let careless = kairos_directory::start(careless).await.unwrap();
    let careless_addr = careless.local_addr().to_string();
    // The real nodes subscribe to both directories; the careless one also lists the fakes.
    let net = Net::start_with(6, small_params(), clock.clock(), |c| {
        c.directories.push(careless_addr.clone())
    })
    .await;
    let dir = DirectoryClient::new(Transport::Direct, vec![careless_addr.clone()])
        .unwrap()
        .with_clock(clock.clock());
    let started = Instant::now();
    for rec in fake_records(FAKES, clock.now()) {
        dir.subscribe(&rec).await.unwrap();
    }
    eprintln!("{FAKES} fake records listed in {:?}", started.elapsed());
    let listed = dir.list_nodes(256, None).await.unwrap();
    assert_eq!(listed.len(), 256);

    let work = tempfile::tempdir().unwrap();
    // 20 blocks: far more piece uploads than there are honest nodes.
    let bytes = data(5_000_000, 5);
    let path = write_file(work.path(), "f", &bytes);
    let started = Instant::now();
    let put = net.client(0).put(&path, clock.now() + 30, |_| {}).await;
    let put = put.unwrap();
    eprintln!(
        "put of {} bytes next to {FAKES} fakes: {:?}, {} retries",
        bytes.len(),
        started.elapsed(),
        put.retries
    );
    assert!(put.retries >= 1, "no fake node was ever tried: {put:?}");
    assert!(put.nodes <= 6, "a fake node holds a piece: {put:?}");
    clock.advance(Duration::from_secs(31));
    let dest = work.path().join("out");
    let got = net.client(5).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    net.shutdown().await;
    careless.shutdown().await;
}
