//! Benchmark over a private Tor network (not a test: it asserts nothing about speed).
//!
//! ```sh
//! cargo test --release -p kairos --test tor_bench -- --ignored --nocapture
//! ```
//!
//! Prints: the time from `kairos daemon` start to "reachable as an onion service" (its ready
//! file is written after the descriptor upload), and put/get throughput of a 20 MiB file with
//! 16 pieces in flight (each on an isolated circuit) versus one at a time, as the original
//! prototype uploaded.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: usize = 20 * 1024 * 1024;

fn mbps(d: Duration) -> f64 {
    SIZE as f64 / d.as_secs_f64() / 1e6
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn tor_throughput_and_startup() {
    let mut rows = Vec::new();
    for (label, conc, margin) in [
        ("16 pieces in flight", "16", 60u64),
        ("1 piece at a time (seed-like)", "1", 150),
    ] {
        let net = Net::start_with(
            5,
            true,
            Some("3+1"),
            &["--upload-concurrency", conc, "--download-concurrency", conc],
        );
        let (path, data) = random_file(net.dir.path(), "bench.bin", SIZE);
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
        println!(
            "{label:32} put {:6.2} MB/s ({put_time:.1?})   get {:6.2} MB/s ({get_time:.1?})",
            mbps(put_time),
            mbps(get_time)
        );
        rows.push((mbps(put_time), mbps(get_time)));

        if conc == "16" {
            // A fresh daemon on the running network: start → onion service published.
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
            while !ready.exists() {
                assert!(child.try_wait().unwrap().is_none(), "late daemon exited");
                assert!(
                    t.elapsed() < Duration::from_secs(180),
                    "late daemon not ready"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            println!(
                "daemon start -> reachable onion service + joined: {:.1?}",
                t.elapsed()
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits in an i32")),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
    println!(
        "parallel / sequential: put {:.1}x, get {:.1}x",
        rows[0].0 / rows[1].0,
        rows[0].1 / rows[1].1
    );
}
