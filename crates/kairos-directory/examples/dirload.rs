//! Load generator for the directory: manifest lookups/s and subscribes/s with many concurrent
//! clients on loopback.
//!
//! By default it starts a real directory in-process (its own runtime and threads, a temporary
//! home, limits raised so the rate limiter does not stand in the way) and drives it over HTTP:
//!
//! ```text
//! cargo run --release -p kairos-directory --example dirload -- --connections 64 --seconds 5
//! ```
//!
//! Lookups are anonymous `GET /v1/manifests/{id}` of released manifests (≈ 650-byte bodies,
//! status checked, signature not re-verified: that is the client's cost, not the server's).
//! Subscribes are `POST /v1/nodes` of distinct pre-signed records (each verified and durably
//! committed by the server before it answers).

use clap::Parser;
use futures::StreamExt;
use kairos_directory::{DirectoryConfig, ManualClock, RateLimit};
use kairos_net::Transport;
use kairos_proto::{
    BlockEntry, FileId, Identity, Manifest, NodeRecord, Peer, PieceEntry, SignedNodeRecord,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Concurrent client connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Manifests published before the lookup run.
    #[arg(long, default_value_t = 2000)]
    manifests: usize,
    /// Node records the directory holds during the lookup run.
    #[arg(long, default_value_t = 0)]
    nodes: usize,
    /// Pre-signed records available to the subscribe run.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Which measurements: lookups, subscribes or both.
    #[arg(long, default_value = "both")]
    mode: String,
    /// Worker threads of the in-process server runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

fn manifest(uploader: &Identity, now: u64, salt: u32) -> kairos_proto::SignedManifest {
    let params = kairos_seal::Params::default();
    let n = params.total_shards();
    let peers: Vec<Peer> = (0..n)
        .map(|i| {
            let key = Identity::from_seed(&[i as u8 + 1; 32]).public();
            Peer {
                addr: format!("{}:80", key.onion_address()),
                key,
            }
        })
        .collect();
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&salt.to_le_bytes());
    Manifest {
        uploader: uploader.public(),
        created: now,
        release: now + 10,
        salt: s,
        params,
        peers,
        blocks: vec![BlockEntry {
            cipher_len: 100,
            pieces: (0..n)
                .map(|i| PieceEntry {
                    peer: i as u16,
                    hash: [i as u8; 32],
                })
                .collect(),
        }],
    }
    .sign(uploader)
    .unwrap()
}

struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    latencies: std::sync::Mutex<Vec<u32>>,
}

fn report(what: &str, stats: &Stats, elapsed: Duration) {
    let ok = stats.ok.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    let mut lat = stats.latencies.lock().unwrap();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{what}: {ok} ok, {failed} failed in {:.2} s = {:.0}/s; latency p50 {} µs, p99 {} µs",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

async fn run_load<F, Fut>(connections: usize, seconds: u64, work: F) -> (Arc<Stats>, Duration)
where
    F: Fn(usize, reqwest::Client, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<bool>> + Send,
{
    let stats = Arc::new(Stats {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latencies: std::sync::Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (stats, stop, work) = (stats.clone(), stop.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = Transport::Direct.client(&format!("load-{c}")).unwrap();
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match work(c, client.clone(), i).await {
                    None => break,
                    Some(true) => {
                        stats.ok.fetch_add(1, Ordering::Relaxed);
                        lat.push(t.elapsed().as_micros() as u32);
                    }
                    Some(false) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            stats.latencies.lock().unwrap().extend(lat);
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (stats, start.elapsed())
}

/// An in-process directory with limits raised so the rate limiter does not stand in the way.
fn server_config(home: &std::path::Path, clock: &ManualClock) -> DirectoryConfig {
    let mut cfg = DirectoryConfig {
        home: home.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        // The load generator lists fabricated records at addresses nobody serves.
        reach_nodes: false,
        clock: clock.clock(),
        ..DirectoryConfig::default()
    };
    let unlimited = RateLimit {
        per_second: 1e9,
        burst: 1e9,
    };
    cfg.limits.per_connection = unlimited;
    cfg.limits.per_identity = unlimited;
    cfg.limits.max_connections = 4096;
    cfg.limits.max_nodes = 10_000_000;
    cfg
}

/// Publishes `args.manifests` manifests, releases them, then measures anonymous lookups.
async fn lookups(args: &Args, clock: &ManualClock, addr: &str) {
    let uploader = Identity::generate();
    let now = clock.now();
    let dc =
        kairos_directory::DirectoryClient::new(Transport::Direct, vec![addr.to_owned()]).unwrap();
    hold_records(args, now, addr).await;
    // Published 64 at a time, so the directory's writer commits them in batches.
    let started = std::time::Instant::now();
    let ids: Vec<FileId> = futures::stream::iter(0..args.manifests)
        .map(|i| {
            let m = manifest(&uploader, now, i as u32);
            let dc = &dc;
            async move {
                dc.publish(&m).await.unwrap();
                m.id()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    println!(
        "published {} manifests in {:.1?}; the directory holds them and {} node records",
        ids.len(),
        started.elapsed(),
        args.nodes
    );
    clock.advance(Duration::from_secs(11)); // all released
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("http://{addr}/v1/manifests/{id}"))
            .collect(),
    );
    let (stats, elapsed) = run_load(args.connections, args.seconds, move |c, client, i| {
        let url = urls[(c * 7919 + i as usize) % urls.len()].clone();
        async move {
            match client.get(url).send().await {
                Ok(r) if r.status() == 200 => Some(r.bytes().await.is_ok()),
                _ => Some(false),
            }
        }
    })
    .await;
    report("manifest lookups", &stats, elapsed);
}

/// Subscribes `args.nodes` distinct node records, so lookups run against a directory that
/// holds them too.
async fn hold_records(args: &Args, now: u64, addr: &str) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/nodes");
    let records = signed_records(1, args.nodes, now);
    futures::stream::iter(records[0].iter())
        .map(|body| {
            let req = client.post(&url).body(body.clone());
            async move {
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 200, "{:?}", r.text().await);
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

/// `per` distinct freshly signed loopback node records for each of `connections` clients.
fn signed_records(connections: usize, per: usize, now: u64) -> Vec<Arc<Vec<Vec<u8>>>> {
    (0..connections)
        .map(|_| {
            Arc::new(
                (0..per)
                    .map(|_| {
                        let id = Identity::generate();
                        let r: SignedNodeRecord =
                            NodeRecord::new(&id, "127.0.0.1:4100".into(), 1, now)
                                .sign(&id)
                                .unwrap();
                        r.into_bytes()
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Measures subscribes of distinct pre-signed records.
async fn subscribes(args: &Args, clock: &ManualClock, addr: &str) {
    let per = args.records.div_ceil(args.connections);
    print!("signing {} node records ... ", per * args.connections);
    let records = Arc::new(signed_records(args.connections, per, clock.now()));
    println!("done");
    let url = Arc::new(format!("http://{addr}/v1/nodes"));
    let (stats, elapsed) = run_load(args.connections, args.seconds, move |c, client, i| {
        let body = records[c].get(i as usize).cloned();
        let url = url.clone();
        async move {
            let body = body?;
            match client.post(url.as_str()).body(body).send().await {
                Ok(r) if r.status() == 200 => Some(r.bytes().await.is_ok()),
                _ => Some(false),
            }
        }
    })
    .await;
    report("subscribes", &stats, elapsed);
}

fn main() {
    let args = Args::parse();
    let home = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(kairos_proto::time::now_unix());
    let cfg = server_config(home.path(), &clock);

    // The server gets its own runtime and threads, as in the real process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()
        .unwrap();
    let handle = server_rt.block_on(kairos_directory::start(cfg)).unwrap();
    let addr = handle.local_addr().to_string();
    println!(
        "directory on {addr}, {} client connections",
        args.connections
    );

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        if args.mode == "both" || args.mode == "lookups" {
            lookups(&args, &clock, &addr).await;
        }
        if args.mode == "both" || args.mode == "subscribes" {
            subscribes(&args, &clock, &addr).await;
        }
    });
    server_rt.block_on(handle.shutdown());
}
