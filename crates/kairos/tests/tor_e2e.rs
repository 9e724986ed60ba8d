//! The whole story over a private Tor network of real `tor` processes on 127.0.0.1: a
//! directory and 5 nodes as onion services (coding 3+1), put, get refused before release, get
//! after release, one node stopped and get still works — while every kairos process is watched
//! to make sure it talks to nothing but its own tor.

mod common;
use common::*;
use std::collections::HashSet;

/// `(local_port, remote_ip, remote_port, state)` of every TCP socket the process has open, and
/// whether it has any UDP socket (a DNS lookup would need one).
fn sockets(pid: u32) -> (Vec<(u16, String, u16, u8)>, bool) {
    let mut inodes = HashSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                if let Some(i) = t
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                {
                    inodes.insert(i.to_owned());
                }
            }
        }
    }
    let parse_addr = |s: &str| -> (String, u16) {
        let (ip, port) = s.split_once(':').unwrap();
        let port = u16::from_str_radix(port, 16).unwrap();
        let ip = if ip.len() == 8 {
            let v = u32::from_str_radix(ip, 16).unwrap();
            std::net::Ipv4Addr::from(v.swap_bytes()).to_string()
        } else {
            ip.to_owned()
        };
        (ip, port)
    };
    let mut tcp = Vec::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.contains(f[9]) {
                let (_, lport) = parse_addr(f[1]);
                let (rip, rport) = parse_addr(f[2]);
                tcp.push((lport, rip, rport, u8::from_str_radix(f[3], 16).unwrap()));
            }
        }
    }
    let mut udp = false;
    for file in ["udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        udp |= text.lines().skip(1).any(|l| {
            l.split_whitespace()
                .nth(9)
                .is_some_and(|i| inodes.contains(i))
        });
    }
    (tcp, udp)
}

/// Asserts every connection of a kairos process goes to its own tor (SOCKS or control port) or
/// to or on its own loopback listener (which only its tor knows; a node storing a piece on
/// itself connects to it directly).
fn assert_only_tor(net: &Net, name: &str) {
    let info = net.info(name);
    let pid: u32 = info["pid"].parse().unwrap();
    let port = |k: &str| info[k].rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let (socks, control, listen) = (port("tor_socks"), port("tor_control"), port("listen"));
    let (tcp, udp) = sockets(pid);
    assert!(!udp, "{name} has a UDP socket (DNS outside Tor?)");
    for (lport, rip, rport, state) in tcp {
        if state == 0x0A {
            // LISTEN: must be the loopback peer/directory API
            assert_eq!(
                lport, listen,
                "{name} listens on an unexpected port {lport}"
            );
            continue;
        }
        assert!(
            rip.starts_with("127.")
                || rip.starts_with("0000000000000000FFFF00000100007F")
                || rip == "00000000000000000000000001000000",
            "{name} connected to a non-loopback address {rip}"
        );
        assert!(
            rport == socks || rport == control || lport == listen || rport == listen,
            "{name} has a connection {lport} -> {rip}:{rport} that is neither to its tor (socks {socks}, control {control}) nor to or on its listener {listen}"
        );
    }
}

#[test]
fn onion_network_put_get_with_time_lock() {
    let net = Net::start_with(5, true, Some("3+1"), &[]);
    let check_all = |net: &Net| {
        assert_only_tor(net, "directory");
        for i in 0..net.nodes {
            assert_only_tor(net, &format!("node-{i}"));
        }
    };
    // Addresses are onion addresses derived from the keys.
    for i in 0..net.nodes {
        let info = net.info(&format!("node-{i}"));
        assert!(info["addr"].ends_with(".onion:80"), "{:?}", info["addr"]);
    }

    let (path, data) = random_file(net.dir.path(), "onion.bin", 2 * 1024 * 1024 + 5);
    let release = now() + 40;
    let release_text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(release),
    )
    .to_string();
    // The devnet's daemons lock to its test chain: the beacon that opens the file reaches the
    // directory from the chain's onion service, through SOCKS (check_all watches for anything
    // else).
    let (id, said) = put_with(&net, 0, &path, &release_text, &[]);
    assert!(said.contains("drand lock, round"), "{said}");
    check_all(&net);

    let out = net.dir.path().join("out.bin");
    let o = net.kairos(4, &["get", &id, "--output", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!out.exists());

    wait_until(release);
    let o = net.kairos(4, &["get", &id, "--output", out.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "get over Tor failed: {}\n{}",
        stderr(&o),
        net.logs()
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
    check_all(&net);

    net.kill_node(1);
    let out2 = net.dir.path().join("out2.bin");
    let o = net.kairos(4, &["get", &id, "--output", out2.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "get with a node down failed: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&out2).unwrap(), data);
}

#[test]
fn daemon_without_tor_fails_clearly_and_never_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(KAIROS)
        .args(["daemon", "--home"])
        .arg(dir.path())
        .args([
            "--directory",
            "abc.onion:80",
            "--tor-binary",
            "/nonexistent/tor",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("tor"), "{err}");
    assert!(err.contains("does not fall back"), "{err}");
}
