//! Legitimate puts and gets while the network is under the cheap attacks of a hostile
//! stranger: success rate and latency, next to the same workload undisturbed, in one run.
//!
//! ```text
//! cargo run --release -p kairos-node --example attack_bench -- [--rounds 8] [--size-kib 1024]
//! ```
//!
//! A directory (reaching nodes before listing them, default limits) and 6 nodes run in this
//! process on 127.0.0.1 (direct transport). Each phase runs put + get rounds of a
//! `--size-kib` file (release 2 s ahead on a manual clock, moved past it for the get) for as
//! long as its attack runs, and at least `--rounds` of them:
//!
//! * `baseline` — nothing;
//! * `flood` — one throwaway key sends signed requests as fast as 64 connections allow
//!   (`DELETE /v1/pieces/…` to the nodes, `GET /v1/placements/…` to the directory), stamped
//!   with the latest accepted time (now + 290 s), up to 205 000 of them;
//! * `slow-bodies` — for 30 s, 40 connections per node send a validly signed store of 1 MiB at
//!   one byte per second, and 40 more do the same with a manifest publish at the directory;
//!   each is reopened as soon as the server cuts it;
//! * `fake-nodes` — 2 000 freshly signed node records at dead addresses are subscribed at the
//!   directory, 32 at a time.

use kairos_directory::{DirectoryClient, DirectoryConfig, ManualClock};
use kairos_net::Transport;
use kairos_node::piece::{hash_to_text, PieceBody};
use kairos_node::{LocalClient, NodeConfig, NodeHandle};
use kairos_proto::{Identity, NodeRecord, PublicKey};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    (args.iter().position(|a| a == name))
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

struct Net {
    directory: kairos_directory::DirectoryHandle,
    clock: ManualClock,
    dir_addr: String,
    dir_key: PublicKey,
    nodes: Vec<NodeHandle>,
    work: std::path::PathBuf,
}

/// Stop flag and counters of one attack.
#[derive(Default)]
struct Attack {
    stop: AtomicBool,
    sent: AtomicU64,
    refused: AtomicU64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rounds = arg("--rounds", 8);
    let size = arg("--size-kib", 1024) << 10;
    let root = tempfile::tempdir().unwrap();
    let net = start(root.path()).await;
    println!(
        "attack bench: 6 nodes, 1 directory; put+get rounds of {size} bytes while each attack runs (at least {rounds})"
    );
    for phase in ["baseline", "flood", "slow-bodies", "fake-nodes"] {
        let attack = Arc::new(Attack::default());
        let started = Instant::now();
        let task = tokio::spawn(run_attack(phase, net_view(&net), attack.clone()));
        // Legitimate rounds for as long as the attack runs, and at least `rounds` of them.
        let (mut ok, mut put_ms, mut get_ms) = (0, Vec::new(), Vec::new());
        let mut r = 0;
        while r < rounds || !task.is_finished() {
            let (o, p, g) = workload(&net, &format!("{phase}-{r}"), 1, size).await;
            (ok, r) = (ok + o, r + 1);
            put_ms.extend(p);
            get_ms.extend(g);
        }
        attack.stop.store(true, Ordering::SeqCst);
        let _ = task.await;
        let secs = started.elapsed().as_secs_f64();
        let (sent, refused) = (
            attack.sent.load(Ordering::SeqCst),
            attack.refused.load(Ordering::SeqCst),
        );
        println!(
            "{phase:<12} {secs:>5.1} s: legit {ok}/{r} ok; put p50 {} ms max {} ms; get p50 {} ms max {} ms; attacker sent {sent} ({:.0}/s), refused {refused}",
            pct(&put_ms, 50), pct(&put_ms, 100), pct(&get_ms, 50), pct(&get_ms, 100), sent as f64 / secs
        );
    }
    for n in net.nodes {
        n.shutdown().await;
    }
    net.directory.shutdown().await;
}

fn pct(v: &[u64], p: usize) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get((v.len().saturating_sub(1)) * p / 100)
        .copied()
        .unwrap_or(0)
}

async fn start(root: &std::path::Path) -> Net {
    let clock = ManualClock::new(kairos_proto::time::now_unix());
    let dcfg = DirectoryConfig {
        home: root.join("directory"),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        clock: clock.clock(),
        node_ttl: Duration::from_secs(3600),
        ..DirectoryConfig::default()
    };
    let directory = kairos_directory::start(dcfg).await.unwrap();
    let (dir_addr, dir_key) = (directory.local_addr().to_string(), directory.public_key());
    let mut nodes = Vec::new();
    for i in 0..6 {
        let cfg = NodeConfig {
            home: root.join(format!("node-{i}")),
            directories: vec![dir_addr.clone()],
            transport: Transport::Direct,
            auto_join: true,
            clock: clock.clock(),
            // The manual clock moves 3 s per round: keep the records fresh.
            heartbeat: Duration::from_secs(5),
            ..NodeConfig::default()
        };
        nodes.push(kairos_node::start(cfg).await.unwrap());
    }
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    Net {
        directory,
        clock,
        dir_addr,
        dir_key,
        nodes,
        work,
    }
}

/// What the attacks need to know of the network.
#[derive(Clone)]
struct View {
    clock: ManualClock,
    dir_addr: String,
    dir_key: PublicKey,
    nodes: Vec<(String, PublicKey)>,
}

fn net_view(net: &Net) -> View {
    View {
        clock: net.clock.clone(),
        dir_addr: net.dir_addr.clone(),
        dir_key: net.dir_key,
        nodes: (net.nodes.iter())
            .map(|n| (n.peer_addr().to_string(), n.public_key()))
            .collect(),
    }
}

/// `rounds` put + get rounds; (successes, put ms, get ms).
async fn workload(net: &Net, phase: &str, rounds: u64, size: u64) -> (u64, Vec<u64>, Vec<u64>) {
    let (mut ok, mut puts, mut gets) = (0, Vec::new(), Vec::new());
    for r in 0..rounds {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 31 + r) as u8).collect();
        let path = net.work.join(format!("{phase}-in-{r}"));
        std::fs::write(&path, &bytes).unwrap();
        let t = Instant::now();
        let release = net.clock.now() + 2;
        let put = LocalClient::new(net.nodes[0].socket_path())
            .put(&path, release, |_| {})
            .await;
        puts.push(t.elapsed().as_millis() as u64);
        let Ok(put) = put else {
            eprintln!("put failed: {}", put.unwrap_err());
            continue;
        };
        net.clock.advance(Duration::from_secs(3));
        let t = Instant::now();
        let out = net.work.join(format!("{phase}-out-{r}"));
        let got = LocalClient::new(net.nodes[1].socket_path())
            .get(&put.id, &out, |_| {})
            .await;
        gets.push(t.elapsed().as_millis() as u64);
        match got {
            Ok(g) if std::fs::read(&g.path).unwrap() == bytes => ok += 1,
            Ok(_) => eprintln!("get returned other bytes"),
            Err(e) => eprintln!("get failed: {e}"),
        }
    }
    (ok, puts, gets)
}

async fn run_attack(phase: &str, view: View, attack: Arc<Attack>) {
    match phase {
        "flood" => flood(view, attack).await,
        "slow-bodies" => slow_bodies(view, attack).await,
        "fake-nodes" => fake_nodes(view, attack).await,
        _ => {}
    }
}

async fn flood(view: View, attack: Arc<Attack>) {
    let key = Arc::new(Identity::generate());
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..64u64 {
        let (view, attack, key, http) = (view.clone(), attack.clone(), key.clone(), http.clone());
        tasks.spawn(async move {
            let mut i = w;
            while !attack.stop.load(Ordering::SeqCst)
                && attack.sent.load(Ordering::SeqCst) < 205_000
            {
                let hash = hash_to_text(blake3::hash(&i.to_le_bytes()).as_bytes());
                let (req, to, path, method) = if i % 2 == 0 {
                    let (addr, to) = &view.nodes[(i as usize / 2) % view.nodes.len()];
                    let path = format!("/v1/pieces/{hash}");
                    (
                        http.delete(Transport::url(addr, &path)),
                        *to,
                        path,
                        "DELETE",
                    )
                } else {
                    let path = format!("/v1/placements/{hash}");
                    (
                        http.get(Transport::url(&view.dir_addr, &path)),
                        view.dir_key,
                        path,
                        "GET",
                    )
                };
                let now = view.clock.now() + 290;
                let req = kairos_net::signed::sign(req, &key, &to, method, &path, b"", now);
                attack.sent.fetch_add(1, Ordering::SeqCst);
                if let Ok(r) = req.send().await {
                    if r.status().is_client_error() || r.status().is_server_error() {
                        attack.refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
                i += 64;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One slow connection: headers and the first bytes of a body, then a byte a second until the
/// server cuts it or the attack stops.
async fn trickle(addr: String, head: String, first: Vec<u8>, attack: Arc<Attack>) {
    while !attack.stop.load(Ordering::SeqCst) {
        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
            return;
        };
        attack.sent.fetch_add(1, Ordering::SeqCst);
        if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&first).await.is_err() {
            continue;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if attack.stop.load(Ordering::SeqCst) {
                return;
            }
            if s.write_all(b"x").await.is_err() {
                attack.refused.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
    }
}

async fn slow_bodies(view: View, attack: Arc<Attack>) {
    let mut tasks = tokio::task::JoinSet::new();
    let now = view.clock.now();
    for (addr, key) in &view.nodes {
        for c in 0..40u64 {
            let stranger = Identity::generate();
            let mut share = [3u8; kairos_seal::SHARE_LEN];
            share[0] = 1;
            let shard = vec![c as u8; 1 << 20];
            let hash = kairos_seal::piece_hash(&share, &shard);
            let body = PieceBody::encode(now + 3600, 0, 0, &share, &shard);
            let path = format!("/v1/pieces/{}", hash_to_text(&hash));
            let signed = PieceBody::signed_bytes_of(&body, &hash);
            let req = reqwest::Client::new().put(Transport::url(addr, &path));
            let req = kairos_net::signed::sign(req, &stranger, key, "PUT", &path, &signed, now)
                .build()
                .unwrap();
            let mut head = format!(
                "PUT {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (k, v) in req.headers() {
                head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
            }
            head.push_str("\r\n");
            tasks.spawn(trickle(
                addr.clone(),
                head,
                body[..32].to_vec(),
                attack.clone(),
            ));
        }
    }
    for c in 0..40u64 {
        let id = hash_to_text(blake3::hash(&c.to_le_bytes()).as_bytes());
        let head = format!(
            "PUT /v1/manifests/{id} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n",
            view.dir_addr,
            1 << 20
        );
        tasks.spawn(trickle(
            view.dir_addr.clone(),
            head,
            vec![0],
            attack.clone(),
        ));
    }
    // Long enough for the servers to cut the first trickles and for them to come back.
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
    attack.stop.store(true, Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
}

async fn fake_nodes(view: View, attack: Arc<Attack>) {
    let dir = DirectoryClient::new(Transport::Direct, vec![view.dir_addr.clone()])
        .unwrap()
        .with_clock(view.clock.clock());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let records: Vec<_> = (0..2000)
        .map(|i| {
            let id = Identity::generate();
            let addr = format!("127.0.{}.{}:{port}", 1 + i / 250, 1 + i % 250);
            NodeRecord::new(&id, addr, 1 << 40, view.clock.now())
                .sign(&id)
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    let subscribe = |rec| {
        let (dir, attack) = (&dir, &attack);
        async move {
            attack.sent.fetch_add(1, Ordering::SeqCst);
            if dir.subscribe(&rec).await.is_err() {
                attack.refused.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    use futures::StreamExt;
    futures::stream::iter(records)
        .for_each_concurrent(32, subscribe)
        .await;
    eprintln!(
        "fake-nodes: 2000 subscriptions answered in {:?}",
        t.elapsed()
    );
}
