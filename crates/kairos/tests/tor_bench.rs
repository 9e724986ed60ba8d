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
//!   client kairos uses, on 16 isolated circuits, 1 MiB per request, [`SIZE`] bytes each way;
//! * kairos put and get of a [`SIZE`]-byte file, as file bytes per second and as bytes on the
//!   wire (a put sends n/k × the file; a get fetches about k of n pieces, 1×), and each
//!   divided by the raw rate in the same direction; the get twice, the second time with its
//!   circuits to the holders already built, as the raw rate's are;
//! * a fresh daemon's start → reachable and joined, with its phases.

mod common;
use common::*;
use kairos_net::Transport;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 64 * 1024 * 1024;
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

/// Moves [`SIZE`] bytes in [`CHUNK`] requests, [`IN_FLIGHT`] at once, each client (circuit)
/// to one onion; `upload` posts, else fetches. Returns the time taken.
async fn raw_transfer(socks: SocketAddr, onions: &[String], upload: bool) -> Duration {
    let transport = Transport::Tor { socks };
    let clients: Vec<_> = (0..IN_FLIGHT)
        .map(|i| transport.client(&format!("raw-{upload}-{i}")).unwrap())
        .collect();
    // The caller runs one round first, so circuits and descriptors are in place.
    let started = Instant::now();
    let per_client = SIZE / CHUNK / IN_FLIGHT;
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

/// Starts a fresh daemon on the running network and returns its start → ready time and the
/// phases it printed into its ready file.
fn late_daemon(net: &Net) -> (Duration, String) {
    let home = net.dir.path().join("late-node");
    let ready = home.join("ready");
    let t = Instant::now();
    let mut child = Command::new(KAIROS)
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
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The ready file is written in one rename once the daemon is reachable and joined.
    while !ready.exists() {
        assert!(child.try_wait().unwrap().is_none(), "late daemon exited");
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
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits in an i32")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
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
    let (raw_up, raw_down) = rt.block_on(async {
        let target = raw_server().await;
        let onions = publish_raw(&net, &[1, 2, 3, 4], target).await;
        // The first requests build circuits and fetch descriptors; time a second round.
        raw_transfer(socks, &onions, false).await;
        let down = raw_transfer(socks, &onions, false).await;
        let up = raw_transfer(socks, &onions, true).await;
        (mbps(SIZE as f64, up), mbps(SIZE as f64, down))
    });

    let (path, data) = random_file(net.dir.path(), "bench.bin", SIZE);
    let margin = 90u64;
    let release = now() + margin;
    let t = Instant::now();
    let id = put(&net, 0, &path, &format!("+{margin}s"));
    let put_time = t.elapsed();
    wait_until(release);
    let out = net.dir.path().join("out.bin");
    let t = Instant::now();
    let o = net.kairos(4, &["get", &id, "--output", out.to_str().unwrap()]);
    let get_time = t.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // Again, with the circuits to the holders built (as the raw rate is measured).
    let again = net.dir.path().join("again.bin");
    let t = Instant::now();
    let o = net.kairos(4, &["get", &id, "--output", again.to_str().unwrap()]);
    let warm_time = t.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));

    let put_file = mbps(SIZE as f64, put_time);
    let put_wire = put_file * (K + M) as f64 / K as f64;
    let get_file = mbps(SIZE as f64, get_time);
    println!(
        "private Tor network, {IN_FLIGHT} requests in flight, coding {K}+{M}, {} MiB",
        SIZE >> 20
    );
    println!("raw onion HTTP, same client and tors: upload {raw_up:6.2} MB/s, download {raw_down:6.2} MB/s");
    println!(
        "kairos put: {put_file:6.2} MB/s of file = {put_wire:6.2} MB/s on the wire = {:.2}x raw upload ({put_time:.1?})",
        put_wire / raw_up
    );
    let warm_file = mbps(SIZE as f64, warm_time);
    println!(
        "kairos get: {get_file:6.2} MB/s of file ≈ wire = {:.2}x raw download ({get_time:.1?}, circuits to the holders built on the way)",
        get_file / raw_down
    );
    println!(
        "kairos get again: {warm_file:6.2} MB/s = {:.2}x raw download ({warm_time:.1?}, circuits built)",
        warm_file / raw_down
    );
    let (took, phases) = late_daemon(&net);
    println!("daemon start -> reachable onion service + joined: {took:.1?} ({phases})");
}
