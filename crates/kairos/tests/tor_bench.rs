//! Benchmark over a private Tor network (not a test: it asserts nothing about speed).
//!
//! ```sh
//! cargo test --release -p kairos --test tor_bench -- --ignored --nocapture
//! ```
//!
//! On one private Tor network (5 daemons, coding 3+1, 16 requests in flight) it measures, in
//! the same run:
//! * the **raw circuit rate**: plain HTTP servers published as onion services on the holders'
//!   own tors, fetched from and posted to through the uploader's tor by the same Rust HTTP
//!   client kairos uses, on 16 isolated circuits, 1 MiB per request, [`size`] bytes each way;
//! * kairos put and get of a [`size`]-byte file, as file bytes per second and as bytes on the
//!   wire (a put sends n/k × the file; a get fetches about k of n pieces, 1×; less the pieces
//!   the node holds itself, which go over loopback), and each divided by the raw rate in the
//!   same direction; the get twice by a daemon that joined after the put (it holds nothing of
//!   the file, as almost every downloader in a real network), the second time with its
//!   circuits to the holders already built, as the raw rate's are; then once by a holder;
//! * that downloader's start → reachable and joined, with its phases.
//!
//! `KAIROS_BENCH_LOGS=DIR` keeps the processes' logs there (`KAIROS_LOG` sets their filter);
//! `KAIROS_BENCH_MIB` sets the size moved each way (default 64 MiB).

mod common;
use common::*;
use kairos_net::Transport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes moved each way and the file's size: `KAIROS_BENCH_MIB` MiB (default 64, at least 16).
fn size() -> usize {
    let mib = std::env::var("KAIROS_BENCH_MIB").map_or(64, |v| {
        v.parse().expect("KAIROS_BENCH_MIB: a number of MiB")
    });
    mib.max(16) << 20
}
const CHUNK: usize = 1024 * 1024;
const IN_FLIGHT: usize = 16;
/// The coding: a put sends (K + M) / K × the file.
const K: usize = 3;
const M: usize = 1;

fn mbps(bytes: f64, d: Duration) -> f64 {
    bytes / d.as_secs_f64() / 1e6
}

/// A bare HTTP/1.1 server: `GET /` answers [`CHUNK`] bytes, `POST /` reads its body; keep-alive.
async fn raw_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve_conn(conn));
        }
    });
    addr
}

async fn serve_conn(mut conn: tokio::net::TcpStream) {
    let body = vec![7u8; CHUNK];
    let mut buf = Vec::new();
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&scratch[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = (head.lines())
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        let mut have = buf.len() - end;
        while have < length {
            match conn.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        buf.drain(..end + length.min(buf.len() - end));
        let answer: &[u8] = if head.starts_with("get") { &body } else { b"" };
        let header = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if conn.write_all(header.as_bytes()).await.is_err() || conn.write_all(answer).await.is_err()
        {
            return;
        }
    }
}

/// Publishes the raw server on each holder's own tor (attached by its control port) and
/// returns the onion addresses.
async fn publish_raw(net: &Net, holders: &[usize], target: SocketAddr) -> Vec<String> {
    let mut onions = Vec::new();
    for &i in holders {
        let control: SocketAddr = net.info(&format!("node-{i}"))["tor_control"]
            .parse()
            .unwrap();
        let mut tor =
            kairos_tor::TorProcess::attach(control, kairos_tor::ControlAuth::Cookie(None))
                .await
                .unwrap();
        let id = kairos_proto::Identity::generate();
        let host = kairos_tor::onion::publish_onion_and_wait(
            tor.control(),
            &id,
            80,
            target,
            Duration::from_secs(120),
        )
        .await
        .unwrap();
        onions.push(host);
    }
    onions
}

/// Moves [`size`] bytes in [`CHUNK`] requests, [`IN_FLIGHT`] at once, each client (circuit)
/// to one onion; `upload` posts, else fetches. Returns the time taken.
async fn raw_transfer(socks: SocketAddr, onions: &[String], upload: bool) -> Duration {
    let transport = Transport::Tor { socks };
    let clients: Vec<_> = (0..IN_FLIGHT)
        .map(|i| transport.client(&format!("raw-{upload}-{i}")).unwrap())
        .collect();
    // The caller runs one round first, so circuits and descriptors are in place.
    let started = Instant::now();
    let per_client = size() / CHUNK / IN_FLIGHT;
    let tasks = clients.into_iter().enumerate().map(|(i, client)| {
        let url = format!("http://{}/", onions[i % onions.len()]);
        tokio::spawn(async move {
            for _ in 0..per_client {
                let resp = if upload {
                    client.post(&url).body(vec![9u8; CHUNK]).send().await
                } else {
                    client.get(&url).send().await
                };
                let bytes = resp.unwrap().bytes().await.unwrap();
                assert_eq!(bytes.len(), if upload { 0 } else { CHUNK });
            }
        })
    });
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    started.elapsed()
}

/// Waits until every onion answers: a client can ask an HSDir before the fresh descriptor
/// reached it (seen: tor's SOCKS error for a descriptor not found), and then asks again.
async fn reach_all(socks: SocketAddr, onions: &[String]) {
    let client = Transport::Tor { socks }.client("raw-reach").unwrap();
    for onion in onions {
        let started = Instant::now();
        loop {
            match client.get(format!("http://{onion}/")).send().await {
                Ok(r) if r.status().is_success() => break,
                other => assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{onion} not reachable: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// CPU time (user + system) so far of every process, by pid: `(parent pid, command, seconds)`.
/// Also the CLI runs the bench has waited for, as `cutime + cstime` of this process (pid 0).
fn cpu_snapshot() -> BTreeMap<u32, (u32, String, f64)> {
    let mut all = BTreeMap::new();
    let read = |path: &str| -> Option<(u32, String, Vec<u64>)> {
        let stat = std::fs::read_to_string(path).ok()?;
        let comm = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
        let fields: Vec<u64> = stat[stat.rfind(')')? + 2..]
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        Some((u32::try_from(fields[1]).ok()?, comm, fields))
    };
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, comm, f)) = read(&format!("/proc/{pid}/stat")) {
            all.insert(pid, (ppid, comm, (f[11] + f[12]) as f64 / 100.0));
        }
    }
    if let Some((_, _, f)) = read("/proc/self/stat") {
        all.insert(0, (0, "CLI".into(), (f[13] + f[14]) as f64 / 100.0));
    }
    all
}

/// What each part of the network spent of the CPU between two snapshots, in cores (CPU
/// seconds per wall second): the bench's own client, the CLI, each daemon and the tor it
/// launched, and the private network's relays and authorities together. On two cores, a sum
/// near 2 means the phase was bound by the CPU, and the shares say who had it.
fn cpu_line(net: &Net, before: &BTreeMap<u32, (u32, String, f64)>, wall: Duration) -> String {
    cpu_line_with(net, None, before, wall)
}

/// [`cpu_line`], with a late daemon (`name`, pid) and its tor shown apart from the relays.
fn cpu_line_with(
    net: &Net,
    late: Option<(&str, u32)>,
    before: &BTreeMap<u32, (u32, String, f64)>,
    wall: Duration,
) -> String {
    let after = cpu_snapshot();
    let spent =
        |pid: u32| after.get(&pid).map_or(0.0, |a| a.2) - before.get(&pid).map_or(0.0, |b| b.2);
    let cores = |s: f64| s / wall.as_secs_f64();
    let me = std::process::id();
    let mut parts = vec![
        ("bench".to_owned(), spent(me)),
        ("CLI".to_owned(), spent(0)),
    ];
    let mut daemon_tors = Vec::new();
    let daemons = (0..net.nodes)
        .map(|i| format!("node-{i}"))
        .chain(["directory".into()])
        .map(|name| {
            let pid = net.pid(&name);
            (name, pid)
        });
    let late = late.map(|(name, pid)| (name.to_owned(), pid));
    for (name, pid) in daemons.chain(late) {
        let tors: f64 = (after.iter())
            .filter(|(_, (ppid, comm, _))| *ppid == pid && comm == "tor")
            .map(|(&p, _)| {
                daemon_tors.push(p);
                spent(p)
            })
            .sum();
        parts.push((name.clone(), spent(pid)));
        parts.push((format!("{name} tor"), tors));
    }
    let network: f64 = (after.iter())
        .filter(|(p, (_, comm, _))| comm == "tor" && !daemon_tors.contains(p))
        .map(|(&p, _)| spent(p))
        .sum();
    parts.push(("relays".into(), network));
    let total: f64 = parts.iter().map(|p| p.1).sum();
    let shown: Vec<String> = (parts.iter())
        .filter(|p| cores(p.1) >= 0.01)
        .map(|(n, s)| format!("{n} {:.2}", cores(*s)))
        .collect();
    format!("cores {:.2}: {}", cores(total), shown.join(", "))
}

/// A daemon started on the running network after the others (see [`start_late`]).
struct Late {
    child: std::process::Child,
    home: std::path::PathBuf,
}

impl Drop for Late {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in an i32");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Starts a daemon with its home at `name` on the running network (fresh, unless that home
/// was used before), with `extra` daemon flags, and returns it with its start → ready time and
/// the phases it printed into its ready file. Its log goes to `<name>.log` beside the home.
fn start_late(net: &Net, name: &str, extra: &[&str]) -> (Late, Duration, String) {
    let home = net.dir.path().join(name);
    let ready = home.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(net.dir.path().join(format!("{name}.log"))).unwrap();
    let t = Instant::now();
    let child = Command::new(KAIROS)
        .args(["daemon", "--transport", "tor", "--join", "true", "--home"])
        .arg(&home)
        .arg("--tor-config")
        .arg(net.dir.path().join("tor-network/client.torrc"))
        .args([
            "--directory",
            &net.info("directory")["addr"],
            "--ready-file",
        ])
        .arg(&ready)
        .args(extra)
        // As the devnet's daemons: info, so its get prints how many requests were in flight.
        .env(
            "KAIROS_LOG",
            std::env::var("KAIROS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut late = Late { child, home };
    // The ready file is written in one rename once the daemon is reachable and joined.
    while !ready.exists() {
        assert!(
            late.child.try_wait().unwrap().is_none(),
            "late daemon exited"
        );
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "late daemon not ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t.elapsed();
    let text = std::fs::read_to_string(&ready).unwrap();
    let phases = (text.lines())
        .find_map(|l| l.strip_prefix("startup="))
        .unwrap_or("")
        .to_owned();
    (late, took, phases)
}

/// [`start_late`], then stops it: its start → ready time and phases.
fn late_daemon(net: &Net, name: &str) -> (Duration, String) {
    let (_late, took, phases) = start_late(net, name, &[]);
    (took, phases)
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn tor_throughput_against_the_raw_circuit_rate() {
    let conc = IN_FLIGHT.to_string();
    let net = Net::start_with(
        5,
        true,
        Some(&format!("{K}+{M}")),
        &[
            "--upload-concurrency",
            &conc,
            "--download-concurrency",
            &conc,
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let socks: SocketAddr = net.info("node-0")["tor_socks"].parse().unwrap();
    let (raw_up, raw_down, raw_cpu) = rt.block_on(async {
        let target = raw_server().await;
        let onions = publish_raw(&net, &[1, 2, 3, 4], target).await;
        // The first requests build circuits and fetch descriptors; time a second round.
        reach_all(socks, &onions).await;
        raw_transfer(socks, &onions, false).await;
        let cpu = cpu_snapshot();
        let down = raw_transfer(socks, &onions, false).await;
        let down_cpu = cpu_line(&net, &cpu, down);
        let cpu = cpu_snapshot();
        let up = raw_transfer(socks, &onions, true).await;
        let up_cpu = cpu_line(&net, &cpu, up);
        let (up, down) = (mbps(size() as f64, up), mbps(size() as f64, down));
        (up, down, [up_cpu, down_cpu])
    });

    let (path, data) = random_file(net.dir.path(), "bench.bin", size());
    let margin = 90u64;
    let release = now() + margin;
    let held_before = held_bytes(&net, 0);
    let (t, cpu) = (Instant::now(), cpu_snapshot());
    let (id, put_said) = put_with(&net, 0, &path, &format!("+{margin}s"), &[]);
    let put_time = t.elapsed();
    // The pieces the uploader holds itself never cross tor (its own loopback listener).
    let own_put = held_bytes(&net, 0).saturating_sub(held_before) as f64;
    let put_cpu = cpu_line(&net, &cpu, put_time);
    // The downloader holds nothing of the file, as almost every downloader in a real
    // network: a daemon that joins after the put. Its start is the start-up figure too.
    let chain = net.dir.path().join("beacon/chain-info.json");
    let (downloader, start_took, start_phases) = start_late(
        &net,
        "downloader",
        &[
            "--download-concurrency",
            &conc,
            // The devnet's files are locked to its test chain.
            "--lock-chain",
            chain.to_str().unwrap(),
        ],
    );
    wait_until(release);
    let downloader_pid = downloader.child.id();
    let get = |home: &std::path::Path, own: f64, name: &str| {
        let out = net.dir.path().join(name);
        let (t, cpu) = (Instant::now(), cpu_snapshot());
        let o = kairos_at(
            home,
            &["get", &id, "--json", "--output", out.to_str().unwrap()],
        );
        let took = t.elapsed();
        let cpu = cpu_line_with(&net, Some(("downloader", downloader_pid)), &cpu, took);
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
        assert_eq!(std::fs::read(&out).unwrap(), data);
        let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // At most the pieces the downloader holds itself came over loopback, not tor: this
        // counts all of them as such, so the rate on the wire is, if anything, understated.
        let wire = result["fetched_bytes"].as_u64().unwrap() as f64 - own;
        (took, wire, cpu)
    };
    let (get_time, get_bytes, get_cpu) = get(&downloader.home, 0.0, "out.bin");
    // Again, with the circuits to the holders built (as the raw rate is measured).
    let (warm_time, warm_bytes, warm_cpu) = get(&downloader.home, 0.0, "again.bin");
    drop(downloader);
    // A holder downloading: the pieces it holds come over loopback.
    let holder = net.home(4);
    let (held_time, held_bytes_wire, held_cpu) =
        get(&holder, held_bytes(&net, 4) as f64, "holder.bin");

    let put_file = mbps(size() as f64, put_time);
    let put_wire = mbps(
        size() as f64 * (K + M) as f64 / K as f64 - own_put,
        put_time,
    );
    println!(
        "private Tor network, {IN_FLIGHT} requests in flight, coding {K}+{M}, {} MiB",
        size() >> 20
    );
    println!("raw onion HTTP, same client and tors: upload {raw_up:6.2} MB/s, download {raw_down:6.2} MB/s");
    println!("  raw upload   {}", raw_cpu[0]);
    println!("  raw download {}", raw_cpu[1]);
    println!(
        "kairos put: {put_file:6.2} MB/s of file = {put_wire:6.2} MB/s on the wire = {:.2}x raw upload ({put_time:.1?})",
        put_wire / raw_up
    );
    println!("  {put_cpu}");
    for line in put_said.lines().filter(|l| l.contains("failed")) {
        println!("  put: {line}");
    }
    for (what, time, bytes, cpu, when) in [
        (
            "get",
            get_time,
            get_bytes,
            get_cpu,
            "circuits to the holders built on the way",
        ),
        (
            "get again",
            warm_time,
            warm_bytes,
            warm_cpu,
            "circuits built",
        ),
        (
            "get by a holder",
            held_time,
            held_bytes_wire,
            held_cpu,
            "node-4; its own pieces over loopback",
        ),
    ] {
        let (file, wire) = (mbps(size() as f64, time), mbps(bytes, time));
        println!(
            "kairos {what}: {file:6.2} MB/s of file = {wire:6.2} MB/s on the wire ({:.2}x the file) = {:.2}x raw download ({time:.1?}, {when})",
            bytes / size() as f64,
            wire / raw_down
        );
        println!("  {cpu}");
    }
    let logs = net.logs()
        + &std::fs::read_to_string(net.dir.path().join("downloader.log")).unwrap_or_default();
    for line in (logs.lines())
        .filter(|l| l.contains("in flight on average") || l.contains("seal and upload"))
    {
        println!("  daemon: {}", line.trim());
    }
    println!("daemon start -> reachable onion service + joined: {start_took:.1?} ({start_phases})");
    keep_logs(&net);
}

/// Daemon start → reachable and joined, several times: `KAIROS_BENCH_STARTS` fresh daemons
/// (default 5) one after another on one private Tor network, then the first of them again on
/// its home (tor's cached directory), each with its phases, and the median of the fresh starts.
///
/// ```sh
/// cargo test --release -p kairos --test tor_bench tor_daemon_start -- --ignored --nocapture
/// ```
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn tor_daemon_start() {
    let starts: usize = std::env::var("KAIROS_BENCH_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let net = Net::start_with(3, true, Some("2+1"), &[]);
    let mut fresh = Vec::new();
    for i in 0..starts {
        let (took, phases) = late_daemon(&net, &format!("late-{i}"));
        println!("fresh daemon {i}: start -> reachable + joined {took:.1?} ({phases})");
        fresh.push(took);
    }
    fresh.sort();
    if let Some(median) = fresh.get(fresh.len() / 2) {
        println!(
            "fresh daemons: median {median:.1?}, fastest {:.1?}, slowest {:.1?}",
            fresh[0],
            fresh[fresh.len() - 1]
        );
    }
    if starts > 0 {
        let (took, phases) = late_daemon(&net, "late-0");
        println!("restarted daemon (tor's directory cached): {took:.1?} ({phases})");
    }
    keep_logs(&net);
}

/// Piece bytes node `i` holds (`kairos status`).
fn held_bytes(net: &Net, i: usize) -> u64 {
    let o = net.kairos(i, &["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    status["bytes_used"].as_u64().unwrap()
}

/// Copies the logs (the network's and the late daemons') to `KAIROS_BENCH_LOGS` if set, to see
/// where the time went.
fn keep_logs(net: &Net) {
    let Some(keep) = std::env::var_os("KAIROS_BENCH_LOGS") else {
        return;
    };
    let keep = std::path::Path::new(&keep);
    std::fs::create_dir_all(keep).unwrap();
    for dir in [net.dir.path().to_owned(), net.dir.path().join("logs")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                std::fs::copy(e.path(), keep.join(e.file_name())).unwrap();
            }
        }
    }
}
