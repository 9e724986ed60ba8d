//! Seal/open throughput.
//!
//! `cargo bench -p kairos-seal` first prints a table (MB/s of sealing and opening a 256 MiB
//! buffer with the default parameters, next to a memcpy of the same buffer measured in the same
//! run, for 1 and 2 threads, healthy and with `m` data shards lost), then runs short criterion
//! benchmarks of the per-block functions. The `cores` column (CPU time / wall time) shows how
//! many cores the runs actually got: on a shared machine the 2-thread rows may get fewer than 2. `KAIROS_BENCH_MIB` changes the buffer size;
//! `KAIROS_BENCH_TABLE_ONLY=1` skips criterion; `KAIROS_BENCH_ROWS=text` runs only the table
//! rows whose name contains `text` (and the memcpy row), e.g. for `perf record`.

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use kairos_seal::{
    open_block, seal_block, BlockPieces, BlockPos, Opener, Params, PieceHash, SealedBlock, Sealer,
};

const REPS: usize = 5;

fn test_data(len: usize) -> Vec<u8> {
    // xorshift: incompressible-looking bytes, cheap to make.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// CPU time (user + system, all threads) of this process so far, from `/proc/self/stat`
/// (Linux; 100 ticks per second). `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// A measurement: median wall time of `REPS` runs, and the cores the runs kept busy on average
/// (CPU time / wall time; below the thread count when the machine is shared).
struct Timing {
    median: Duration,
    cores: f64,
}

fn time(mut f: impl FnMut()) -> Timing {
    let cpu0 = cpu_seconds();
    let all = Instant::now();
    let mut t: Vec<Duration> = (0..REPS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    let wall = all.elapsed().as_secs_f64();
    let cores = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) / wall,
        _ => f64::NAN,
    };
    t.sort();
    Timing {
        median: t[REPS / 2],
        cores,
    }
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn seal_all(
    data: &[u8],
    params: Params,
    threads: usize,
) -> (kairos_seal::FileSalt, Vec<SealedBlock>) {
    let sealer = Sealer::new(data, params, "bench.bin", threads).unwrap();
    let salt = sealer.salt();
    (salt, sealer.map(Result::unwrap).collect())
}

fn open_all(
    params: Params,
    salt: kairos_seal::FileSalt,
    blocks: &[SealedBlock],
    hashes: &[Vec<PieceHash>],
    lose: usize,
    threads: usize,
) {
    let mut opener = Opener::new(io::sink(), params, salt, blocks.len() as u32);
    let inputs = blocks.iter().zip(hashes).map(|(b, h)| {
        let mut p = BlockPieces::from_sealed(b, h);
        for slot in p.pieces.iter_mut().take(lose) {
            *slot = None;
        }
        p
    });
    opener.push_blocks(inputs, threads).unwrap();
    let info = opener.finish().unwrap();
    black_box(info);
}

fn table() {
    let mib: usize = std::env::var("KAIROS_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let len = mib << 20;
    let params = Params::default();
    let data = test_data(len);
    let mut copy = vec![0u8; len];
    let memcpy = time(|| {
        copy.copy_from_slice(&data);
        black_box(&copy);
    });
    let memcpy_median = memcpy.median;
    drop(copy);
    println!(
        "kairos-seal throughput: {mib} MiB buffer, k={} m={} shard={} B, median of {REPS} \
         (cores = CPU time / wall time)",
        params.k(),
        params.m(),
        params.shard_size
    );
    println!(
        "{:<34} {:>8} {:>9} {:>6}",
        "operation", "MB/s", "x memcpy", "cores"
    );
    let filter = std::env::var("KAIROS_BENCH_ROWS").unwrap_or_default();
    let wanted = |name: &str| name.contains(filter.as_str());
    let row = |name: &str, t: Timing| {
        println!(
            "{:<34} {:>8.0} {:>9.3} {:>6.2}",
            name,
            mbps(len, t.median),
            memcpy_median.as_secs_f64() / t.median.as_secs_f64(),
            t.cores
        );
    };
    row("memcpy", memcpy);
    for threads in [1, 2] {
        let name = format!("seal, {threads} thread(s)");
        if !wanted(&name) {
            continue;
        }
        let d = time(|| {
            let mut sealer = Sealer::new(&data[..], params, "bench.bin", threads).unwrap();
            while let Some(b) = sealer.next() {
                // The consumer stores the pieces, then hands the buffers back.
                sealer.recycle(black_box(b.unwrap()));
            }
        });
        row(&name, d);
    }
    let open_rows = ["open healthy", "open, m data shards lost"];
    if !open_rows.iter().any(|l| {
        [1, 2]
            .iter()
            .any(|t| wanted(&format!("{l}, {t} thread(s)")))
    }) {
        return;
    }
    let (salt, blocks) = seal_all(&data, params, 2);
    let hashes: Vec<Vec<PieceHash>> = blocks.iter().map(SealedBlock::hashes).collect();
    for (lose, label) in [
        (0, "open healthy"),
        (params.m(), "open, m data shards lost"),
    ] {
        for threads in [1, 2] {
            let name = format!("{label}, {threads} thread(s)");
            if !wanted(&name) {
                continue;
            }
            let d = time(|| open_all(params, salt, &blocks, &hashes, lose, threads));
            row(&name, d);
        }
    }
}

fn per_block(c: &mut Criterion) {
    let params = Params::default();
    let salt = [7u8; 32];
    let plain = test_data(params.block_plaintext_size());
    let mut g = c.benchmark_group("block");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("seal_block", |b| {
        b.iter(|| black_box(seal_block(&params, BlockPos::new(salt, 0, false), &plain).unwrap()))
    });
    let sealed = seal_block(&params, BlockPos::new(salt, 0, false), &plain).unwrap();
    let hashes = sealed.hashes();
    for lose in [0, params.m()] {
        let mut refs = sealed.piece_refs();
        for slot in refs.iter_mut().take(lose) {
            *slot = None;
        }
        g.bench_with_input(
            BenchmarkId::new("open_block_lost", lose),
            &refs,
            |b, refs| {
                b.iter(|| {
                    black_box(
                        open_block(
                            &params,
                            BlockPos::new(salt, 0, false),
                            sealed.cipher_len,
                            &hashes,
                            refs,
                        )
                        .unwrap(),
                    )
                })
            },
        );
    }
    g.finish();
}

/// What an audit costs a holder (proving `AUDIT_CHUNKS` random chunks of a default-size piece,
/// which hashes the piece once per chunk) and the auditor (verifying them).
fn audit(c: &mut Criterion) {
    use kairos_seal::audit::{self, AUDIT_CHUNKS};
    let piece: Vec<u8> = (0..Params::default().shard_size as usize + kairos_seal::SHARE_LEN)
        .map(|i| (i * 31) as u8)
        .collect();
    let (share, shard) = piece.split_at(kairos_seal::SHARE_LEN);
    let hash = kairos_seal::piece_hash(share, shard);
    let share: [u8; kairos_seal::SHARE_LEN] = share.try_into().unwrap();
    let count = audit::chunk_count(piece.len() as u64);
    let chunks: Vec<u64> = (0..AUDIT_CHUNKS as u64)
        .map(|i| i * count / AUDIT_CHUNKS as u64)
        .collect();
    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Bytes(piece.len() as u64));
    g.bench_function("prove 8 chunks of one piece", |b| {
        b.iter(|| {
            let proofs: Vec<_> = chunks
                .iter()
                .map(|&i| audit::prove(&piece, i).unwrap())
                .collect();
            std::hint::black_box(audit::encode(&proofs))
        })
    });
    let proofs: Vec<_> = chunks
        .iter()
        .map(|&i| audit::prove(&piece, i).unwrap())
        .collect();
    println!(
        "audit answer: {} bytes for {AUDIT_CHUNKS} chunks of a {}-byte piece",
        audit::encode(&proofs).len(),
        piece.len()
    );
    g.bench_function("verify 8 chunks", |b| {
        b.iter(|| {
            proofs
                .iter()
                .all(|p| audit::verify(&hash, piece.len() as u64, &share, p))
        })
    });
    g.finish();
}

criterion_group!(benches, per_block, audit);

fn main() {
    table();
    if std::env::var_os("KAIROS_BENCH_TABLE_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
