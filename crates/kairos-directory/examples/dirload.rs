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
//! A large directory is populated once and measured many times with `--home` and `--reuse`
//! (the first run publishes and keeps the database and its ids there):
//!
//! ```text
//! cargo run --release -p kairos-directory --example dirload -- --mode lookups \
//!     --manifests 1000000 --nodes 10000 --home /tmp/dir1m --reuse --warmup 5
//! ```
//!
//! Lookups are anonymous `GET /v1/manifests/{id}` of uniformly random released manifests (≈ 650-byte bodies,
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
use rand::Rng;
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
    /// The directory's home (kept after the run) instead of a temporary one.
    #[arg(long)]
    home: Option<std::path::PathBuf>,
    /// With `--home`: if an earlier run left its published ids there (`dirload-ids`), look
    /// those up instead of publishing again, so a 1 M directory is populated once.
    #[arg(long, requires = "home")]
    reuse: bool,
    /// The directory's redb page cache, MiB (default: the directory's default).
    #[arg(long)]
    db_cache_mib: Option<usize>,
    /// Seconds of lookups run and discarded before the measured ones (warms the caches).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
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
    /// CPU time the server's and the client's threads spent during the run (Linux; 0
    /// elsewhere).
    cpu: std::sync::Mutex<(Duration, Duration)>,
}

/// CPU time used so far by this process's threads named `name` (Linux `/proc`, 10 ms ticks).
/// Rates on a shared machine swing with the neighbours' load; CPU per request does much less,
/// so it is what tells two runs apart.
fn thread_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        for i in [11, 12] {
            ticks += f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_millis(ticks * 10)
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
    let (cpu, client) = *stats.cpu.lock().unwrap();
    println!(
        "{what}: {ok} ok, {failed} failed in {:.2} s = {:.0}/s; latency p50 {} µs, p99 {} µs; server CPU {:.1} µs/request, client CPU {:.1}",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        cpu.as_secs_f64() * 1e6 / ok.max(1) as f64,
        client.as_secs_f64() * 1e6 / ok.max(1) as f64
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
        cpu: std::sync::Mutex::new((Duration::ZERO, Duration::ZERO)),
    });
    let before = (thread_cpu(SERVER_THREADS), thread_cpu(CLIENT_THREADS));
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
    *stats.cpu.lock().unwrap() = (
        thread_cpu(SERVER_THREADS).saturating_sub(before.0),
        thread_cpu(CLIENT_THREADS).saturating_sub(before.1),
    );
    for t in tasks {
        let _ = t.await;
    }
    (stats, start.elapsed())
}

/// Name of the in-process server's runtime threads.
const SERVER_THREADS: &str = "dir-server";
/// Name of the load client's runtime threads.
const CLIENT_THREADS: &str = "load-client";

/// An in-process directory with limits raised so the rate limiter does not stand in the way.
fn server_config(args: &Args, home: &std::path::Path, clock: &ManualClock) -> DirectoryConfig {
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
    if let Some(mib) = args.db_cache_mib {
        cfg.limits.db_cache_bytes = mib << 20;
    }
    cfg
}

/// Measures anonymous lookups of released manifests: published now, or those an earlier run
/// left in `--home` with `--reuse`.
async fn lookups(args: &Args, clock: &ManualClock, addr: &str) {
    hold_records(args, clock.now(), addr).await;
    let ids = match saved_ids(args) {
        Some(ids) => {
            println!(
                "looking up the {} manifests an earlier run published",
                ids.len()
            );
            ids
        }
        None => publish(args, clock, addr).await,
    };
    clock.advance(Duration::from_secs(11)); // all released
    let (ids, addr) = (Arc::new(ids), addr.to_owned());
    let lookup = move |_c, client: reqwest::Client, _i| {
        // Uniformly random existing ids, whatever the size: every run sees the same access
        // pattern (no id is favoured, none is left out). The URL is formatted per request so
        // the client's cost does not grow with the count (a million prebuilt URLs miss the
        // CPU caches; 32-byte ids much less).
        let id = ids[rand::thread_rng().gen_range(0..ids.len())];
        let url = format!("http://{addr}/v1/manifests/{id}");
        async move {
            match client.get(url).send().await {
                Ok(r) if r.status() == 200 => Some(r.bytes().await.is_ok()),
                _ => Some(false),
            }
        }
    };
    if args.warmup > 0 {
        let (stats, elapsed) = run_load(args.connections, args.warmup, lookup.clone()).await;
        report("warm-up lookups (not counted)", &stats, elapsed);
    }
    let (stats, elapsed) = run_load(args.connections, args.seconds, lookup).await;
    report("manifest lookups", &stats, elapsed);
}

/// File in `--home` listing the ids a run published (32 bytes each).
const IDS_FILE: &str = "dirload-ids";

/// The ids an earlier run published into `--home`, if `--reuse` and it left them.
fn saved_ids(args: &Args) -> Option<Vec<FileId>> {
    let path = args.home.as_ref()?.join(IDS_FILE);
    if !args.reuse || !path.exists() {
        return None;
    }
    let raw = std::fs::read(path).unwrap();
    Some(
        raw.chunks_exact(32)
            .map(|c| FileId(c.try_into().unwrap()))
            .collect(),
    )
}

/// Publishes `args.manifests` manifests (release 10 s from now) and returns their ids; with
/// `--home`, also saves them there for `--reuse`.
async fn publish(args: &Args, clock: &ManualClock, addr: &str) -> Vec<FileId> {
    let uploader = Identity::generate();
    let now = clock.now();
    let dc =
        kairos_directory::DirectoryClient::new(Transport::Direct, vec![addr.to_owned()]).unwrap();
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
    if let Some(home) = &args.home {
        let raw: Vec<u8> = ids.iter().flat_map(|id| id.0).collect();
        std::fs::write(home.join(IDS_FILE), raw).unwrap();
    }
    ids
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
    let temp = tempfile::tempdir().unwrap();
    let home = args
        .home
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&home).unwrap();
    let clock = ManualClock::new(kairos_proto::time::now_unix());
    let cfg = server_config(&args, &home, &clock);

    // The server gets its own runtime and threads, as in the real process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        // Named apart from the client's threads, so a profile separates server from load.
        .thread_name(SERVER_THREADS)
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
        .thread_name(CLIENT_THREADS)
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
    // Server and client together; what changes between runs is the server's page cache.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(peak) = status.lines().find(|l| l.starts_with("VmHWM")) {
        println!(
            "process peak RSS: {}",
            peak.trim_start_matches("VmHWM:").trim()
        );
    }
}
