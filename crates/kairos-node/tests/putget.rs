//! Put and get through the local API against a real directory and real nodes: the time-lock,
//! file sizes from 0 bytes to several blocks and ≥ 64 MiB, lost and corrupt pieces.

mod common;

use common::*;
use kairos_directory::DirectoryClient;
use kairos_net::Transport;
use kairos_node::{Clock, LocalError};
use kairos_proto::time::now_unix;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn time_lock_round_trip_with_the_system_clock() {
    let net = Net::start(6, small_params(), Clock::system()).await;
    let work = tempfile::tempdir().unwrap();
    let files = [
        ("empty", Vec::new()),
        ("one", vec![42u8]),
        ("several-blocks.bin", data(1_000_000, 1)),
    ];
    let release = now_unix() + 4;
    let client = net.client(0);
    let mut ids = Vec::new();
    for (name, bytes) in &files {
        let path = write_file(work.path(), name, bytes);
        let mut progress = 0;
        let r = client
            .put(&path, release, |e| {
                if matches!(e, kairos_node::Event::Progress { .. }) {
                    progress += 1;
                }
            })
            .await
            .unwrap_or_else(|e| panic!("put {name}: {e}"));
        assert_eq!(r.size, bytes.len() as u64);
        assert_eq!(r.release, release);
        assert_eq!(r.nodes, 6);
        assert!(progress > 0);
        ids.push(r.id);
    }
    // Before release: refused as locked, and nothing is written, not even a temp file.
    let out = tempfile::tempdir().unwrap();
    let other = net.client(3);
    for id in &ids {
        let err = other
            .get(id, &out.path().join("x"), |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.locked_until(), Some(release), "{err}");
        assert!(err.to_string().contains("locked until"), "{err}");
        assert!(listing(out.path()).is_empty());
    }
    while now_unix() < release {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for ((name, bytes), id) in files.iter().zip(&ids) {
        let dest = out.path().join(format!("{name}.out"));
        let r = other.get(id, &dest, |_| {}).await.unwrap();
        assert_eq!(r.path, dest);
        assert_eq!(&std::fs::read(&dest).unwrap(), bytes, "{name}");
        assert_eq!(r.name, *name);
        assert!(r.bad_pieces.is_empty());
        // The bytes on the wire: k whole pieces per block, each at least its share of the file.
        assert!(r.fetched_bytes >= bytes.len() as u64, "{r:?}");
    }
    // Into a directory: the sealed name is used, and an existing file is never replaced.
    let into = tempfile::tempdir().unwrap();
    let r = other.get(&ids[2], into.path(), |_| {}).await.unwrap();
    assert_eq!(r.path, into.path().join("several-blocks.bin"));
    assert_eq!(std::fs::read(&r.path).unwrap(), files[2].1);
    let err = other.get(&ids[2], into.path(), |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "bad_output", "{err}");
    assert_eq!(listing(into.path()), vec!["several-blocks.bin".to_string()]);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_file_streams() {
    let clock = manual_clock();
    let net = Net::start(6, kairos_seal::Params::default(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(64 << 20, 7);
    let path = write_file(work.path(), "big.bin", &bytes);
    let release = clock.now() + 100;
    let put = net.client(1).put(&path, release, |_| {}).await.unwrap();
    assert_eq!(put.blocks, 17);
    clock.advance(Duration::from_secs(100));
    let dest = work.path().join("big.out");
    let got = net.client(2).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(got.size, bytes.len() as u64);
    assert!(std::fs::read(&dest).unwrap() == bytes);
    assert_eq!(got.blake3, blake3::hash(&bytes).to_hex().to_string());
    net.shutdown().await;
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_and_corrupt_pieces() {
    let clock = manual_clock();
    let mut net = Net::start(6, small_params(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(700_000, 3);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 50;
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    clock.advance(Duration::from_secs(50));

    // Corrupt, on disk, the piece of shard 0 of block 0 (a data shard: fetched first).
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let (m, placement) = v2_file(&dir, &put.id).await;
    let hash = m.manifest().blocks[0].hashes[0];
    let victim = net.index_of(placement.holder_of(0, 0).unwrap()).unwrap();
    let holder_addr = net.node(victim).peer_addr().to_string();
    // The node whose local API drives the gets below: any node but the victim.
    let keep = (0..6).find(|&i| i != victim).unwrap();
    let url = Transport::url(
        &holder_addr,
        &format!("/v1/pieces/{}", kairos_node::piece::hash_to_text(&hash)),
    );
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    let sample = body[body.len() / 2..body.len() / 2 + 64].to_vec();
    net.stop_node(victim).await;
    let db = net.configs[victim].home.join(kairos_node::DB_FILE);
    let mut raw = std::fs::read(&db).unwrap();
    let at = find(&raw, &sample).expect("shard bytes are in the database file");
    raw[at + 10] ^= 0xff;
    std::fs::write(&db, raw).unwrap();
    net.restart_node(victim).await;

    let dest = work.path().join("out1");
    let mut bad_events = 0;
    let got = net
        .client(keep)
        .get(&put.id, &dest, |e| {
            if matches!(e, kairos_node::Event::BadPiece(_)) {
                bad_events += 1;
            }
        })
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    assert_eq!(got.bad_pieces.len(), 1, "{:?}", got.bad_pieces);
    assert_eq!(
        got.bad_pieces[0].peer,
        placement.holder_of(0, 0).unwrap().to_text()
    );
    assert_eq!((got.bad_pieces[0].block, got.bad_pieces[0].shard), (0, 0));
    assert_eq!(bad_events, 1);

    // m = 2 holders gone (every node holds one piece of each block with 6 nodes; the node with
    // the corrupt piece is one of them): still fine.
    let other = (0..6).find(|&i| i != victim && i != keep).unwrap();
    let gone = [victim, other];
    for &i in &gone {
        net.stop_node(i).await;
    }
    let dest = work.path().join("out2");
    let got = net.client(keep).get(&put.id, &dest, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    // Only peers asked for a piece show up (data shards are asked first).
    assert!(got.unreachable.len() <= 2, "{:?}", got.unreachable);

    // m + 1 gone: a clear error naming the block and the missing shards; no output.
    let third = (0..6)
        .find(|&i| i != keep && i != victim && !gone.contains(&i))
        .unwrap();
    net.stop_node(third).await;
    let dest = work.path().join("out3");
    let err = net
        .client(keep)
        .get(&put.id, &dest, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_enough_pieces", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("block 0") && msg.contains("missing shards"),
        "{msg}"
    );
    assert!(!dest.exists());
    assert!(listing(work.path())
        .iter()
        .all(|n| !n.starts_with(".kairos-get")));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_refusals_and_joining() {
    let clock = manual_clock();
    let net = Net::start(3, small_params(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let path = write_file(work.path(), "f", b"hello");
    let c = net.client(0);
    let err = c.put(&path, clock.now() + 60, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "not_enough_nodes", "{err}");
    match &err {
        LocalError::Daemon { needed, known, .. } => {
            assert_eq!((*needed, *known), (Some(6), Some(3)))
        }
        other => panic!("{other:?}"),
    }
    let err = c.put(&path, clock.now() - 1, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "release_in_past", "{err}");
    let err = c
        .put(&path, clock.now() + 400 * 24 * 3600, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "release_too_far", "{err}");
    let err = c
        .put(&work.path().join("missing"), clock.now() + 60, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_input", "{err}");
    // `start` on a joined node heartbeats again (and recounts the peers).
    assert_eq!(c.start().await.unwrap().directories_reached, 1);
    let st = c.status().await.unwrap();
    assert!(st.joined);
    assert_eq!(st.peers_known, 3);
    assert_eq!(st.pieces_held, 0);
    assert_eq!(st.directories.len(), 1);
    assert!(st.directories[0].last_success.is_some());

    // A node that does not auto-join waits for `start`.
    let home = net.root.path().join("late");
    let mut cfg = node_config(&home, &net.dir_addr(), small_params(), &net.clock);
    cfg.auto_join = false;
    let late = kairos_node::start(cfg.clone()).await.unwrap();
    let lc = kairos_node::LocalClient::new(cfg.socket_path());
    let st = lc.status().await.unwrap();
    assert!(!st.joined);
    assert!(st.directories[0].last_success.is_none());
    let started = lc.start().await.unwrap();
    assert!(started.joined);
    assert_eq!(started.directories_reached, 1);
    assert_eq!(lc.status().await.unwrap().peers_known, 4);
    late.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_moves_pieces_off_a_dead_node() {
    let clock = manual_clock();
    let mut net = Net::start(7, small_params(), clock.clock()).await;
    // The directory still lists node 6 (its record has not expired), but it is gone.
    let dead = net.node(6).public_key();
    net.stop_node(6).await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(2_000_000, 11);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 30;
    let mut warnings = 0;
    let put = net
        .client(0)
        .put(&path, release, |e| {
            if matches!(e, kairos_node::Event::Warning { .. }) {
                warnings += 1;
            }
        })
        .await
        .unwrap();
    assert!(put.retries >= 1, "{put:?}");
    assert!(warnings >= 1);
    assert_eq!(put.nodes, 6);
    clock.advance(Duration::from_secs(30));
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let (_, placement) = v2_file(&dir, &put.id).await;
    assert!(!placement.holders.contains(&dead));
    let dest = work.path().join("out");
    let got = net.client(1).get(&put.id, &dest, |_| {}).await.unwrap();
    assert!(got.unreachable.is_empty(), "{:?}", got.unreachable);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_peer_is_raced() {
    let clock = manual_clock();
    let mut net = Net::start_with(6, small_params(), clock.clock(), |c| {
        c.spare_fetch_after = Duration::from_millis(200);
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(600_000, 5);
    let path = write_file(work.path(), "f", &bytes);
    let release = clock.now() + 30;
    let put = net.client(0).put(&path, release, |_| {}).await.unwrap();
    clock.advance(Duration::from_secs(30));
    // Node 3 is replaced by a listener that accepts connections and never answers.
    let addr = net.node(3).peer_addr();
    net.stop_node(3).await;
    let mut hung = None;
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            hung = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hung = hung.expect("rebind the hung peer's port");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hung.accept().await {
            held.push(s);
        }
    });
    let dest = work.path().join("out");
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        net.client(1).get(&put.id, &dest, |_| {}),
    )
    .await
    .expect("a hung peer must not stall the download")
    .unwrap();
    assert_eq!(got.size, bytes.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    holder.abort();
    net.shutdown().await;
}

/// A put that fails after its pieces are stored (here: the directory refuses the manifest,
/// its release is further ahead than it accepts) takes every piece back from the holders.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_put_leaves_no_orphan_pieces() {
    let clock = manual_clock();
    let net = Net::start_full(
        6,
        small_params(),
        clock.clock(),
        |d| d.manifest_max_release = Duration::from_secs(600),
        |_| {},
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let path = write_file(work.path(), "f", &data(2_000_000, 41));
    let err = net
        .client(0)
        .put(&path, clock.now() + 3600, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "directory_unreachable", "{err}");
    assert!(err.to_string().contains("release"), "{err}");
    // The holders got every piece, then the deletes (sent in the background) took them back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held: u64 = (0..6)
            .map(|i| net.node(i).status().unwrap().pieces_held)
            .sum();
        if held == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{held} orphan pieces left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.shutdown().await;
}
