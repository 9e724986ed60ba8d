//! Put + get throughput on a loopback devnet, compared with the piece store's own durable
//! write rate on the same disk in the same run.
//!
//! ```text
//! cargo run --release -p kairos-node --example putget_bench -- [--size-mib 1024] [--nodes 6] [--dir DIR]
//! ```
//!
//! Starts a directory and `--nodes` nodes in this one process (direct transport on
//! 127.0.0.1, default coding parameters k = 4, m = 2, shards of 1 MiB − 4 KiB), each with its
//! own home under a temporary directory in `--dir` (default: the system temp dir). Then:
//!
//! 1. store rate: writes the volume of pieces the put will store (size × n / k) straight into
//!    a fresh piece store (same tables, same group-commit writer, 16 stores in flight);
//! 2. put: generates a file of `--size-mib` MiB (fsync'd, not timed) and uploads it through
//!    the local API of node 0 (sealing, placement, HTTP, signatures, durable stores on all
//!    nodes, manifest), with the release a minute ahead on a manual clock;
//! 3. get: moves the clock past the release and downloads through node 1's local API into a
//!    fsync'd, verified output file, then checks its BLAKE3 against the input.
//!
//! Peak RSS (VmHWM) is reset before each phase (`/proc/self/clear_refs`) and read after it;
//! it is the whole process: directory, every node and the client together.

use kairos_directory::{DirectoryConfig, ManualClock};
use kairos_net::Transport;
use kairos_node::{LocalClient, NodeConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn vm_hwm_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user, system) used by this process so far.
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (get(11), get(12))
}

fn cpu_since(start: (f64, f64)) -> String {
    let now = cpu_secs();
    format!(
        "CPU {:.2} s user + {:.2} s sys",
        now.0 - start.0,
        now.1 - start.1
    )
}

/// Resets the peak-RSS counter (Linux: writing 5 to clear_refs).
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn generate(path: &Path, size: u64) -> blake3::Hash {
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut x: u64 = 0x243F_6A88_85A3_08D3;
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    f.into_inner().unwrap().sync_all().unwrap();
    hasher.finalize()
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let size_mib: u64 = arg("--size-mib").map_or(1024, |s| s.parse().expect("--size-mib N"));
    let nodes: usize = arg("--nodes").map_or(6, |s| s.parse().expect("--nodes N"));
    let base: PathBuf = arg("--dir").map_or_else(std::env::temp_dir, PathBuf::from);
    let size = size_mib << 20;
    let root = tempfile::Builder::new()
        .prefix("kairos-bench-")
        .tempdir_in(&base)
        .unwrap();
    let params = kairos_seal::Params::default();
    let piece_volume = size * params.total_shards() as u64 / params.k() as u64;
    println!(
        "kairos put/get bench: {size_mib} MiB, {nodes} nodes, k={} m={} shard={} B, in {}",
        params.k(),
        params.m(),
        params.shard_size,
        base.display()
    );

    // 1. The store on its own.
    reset_hwm();
    let cpu = cpu_secs();
    let store_rate = kairos_node::bench_support::store_write_rate(
        &root.path().join("store-bench"),
        piece_volume,
        params.shard_size as usize + kairos_seal::SHARE_LEN,
        16,
    )
    .await
    .unwrap();
    let store_rss = vm_hwm_mib();
    let store_cpu = cpu_since(cpu);
    std::fs::remove_dir_all(root.path().join("store-bench")).unwrap();
    println!(
        "store:  {:>7.1} MB/s durable ({} MiB of pieces into one node's store), {store_cpu}, peak RSS {store_rss:.0} MiB",
        store_rate / 1e6,
        piece_volume >> 20
    );

    // The network.
    let clock = ManualClock::new(kairos_proto::time::now_unix());
    let mut dcfg = DirectoryConfig {
        home: root.path().join("directory"),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Direct,
        allow_loopback_nodes: true,
        clock: clock.clock(),
        node_ttl: Duration::from_secs(3600),
        ..DirectoryConfig::default()
    };
    dcfg.limits.shutdown_grace = Duration::from_secs(2);
    let directory = kairos_directory::start(dcfg).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..nodes {
        let mut cfg = NodeConfig {
            home: root.path().join(format!("node-{i}")),
            directories: vec![directory.local_addr().to_string()],
            transport: Transport::Direct,
            auto_join: true,
            clock: clock.clock(),
            params,
            ..NodeConfig::default()
        };
        cfg.limits.shutdown_grace = Duration::from_secs(2);
        if let Some(c) = arg("--upload-concurrency") {
            cfg.upload_concurrency = c.parse().expect("--upload-concurrency N");
        }
        if let Some(c) = arg("--download-concurrency") {
            cfg.download_concurrency = c.parse().expect("--download-concurrency N");
        }
        if let Some(c) = arg("--db-cache-mib") {
            cfg.limits.db_cache_bytes = c.parse::<usize>().expect("--db-cache-mib N") << 20;
        }
        handles.push(kairos_node::start(cfg).await.unwrap());
    }

    println!(
        "network up: directory + {nodes} nodes in this process, RSS {:.0} MiB",
        status_mib("VmRSS:")
    );
    let input = root.path().join("input.bin");
    let want = generate(&input, size);

    // 2. Put.
    let client = LocalClient::new(handles[0].socket_path());
    let release = clock.now() + 60;
    reset_hwm();
    let cpu = cpu_secs();
    let t = Instant::now();
    let put = client.put(&input, release, |_| {}).await.unwrap();
    let put_secs = t.elapsed().as_secs_f64();
    let put_rss = vm_hwm_mib();
    let put_cpu = cpu_since(cpu);
    let put_piece_rate = mbps(piece_volume, put_secs);
    println!(
        "put:    {:>7.1} MB/s of file ({:.1} MB/s of pieces stored durably = {:.2}x the store rate), {:.2} s, {} retries, {put_cpu}, peak RSS {put_rss:.0} MiB",
        mbps(size, put_secs),
        put_piece_rate,
        put_piece_rate * 1e6 / store_rate,
        put_secs,
        put.retries
    );

    // 3. Get.
    clock.advance(Duration::from_secs(61));
    let output = root.path().join("output.bin");
    let client = LocalClient::new(handles[1 % nodes].socket_path());
    reset_hwm();
    let cpu = cpu_secs();
    let t = Instant::now();
    let got = client.get(&put.id, &output, |_| {}).await.unwrap();
    let get_secs = t.elapsed().as_secs_f64();
    let get_rss = vm_hwm_mib();
    let get_cpu = cpu_since(cpu);
    assert_eq!(got.blake3, want.to_hex().to_string(), "output differs");
    println!(
        "get:    {:>7.1} MB/s of file (written and fsync'd = {:.2}x the store rate), {:.2} s, {get_cpu}, peak RSS {get_rss:.0} MiB",
        mbps(size, get_secs),
        mbps(size, get_secs) * 1e6 / store_rate,
        get_secs
    );
    println!("verified: output BLAKE3 matches the input");

    for h in handles {
        h.shutdown().await;
    }
    directory.shutdown().await;
}
