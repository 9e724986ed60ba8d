//! End-to-end over real processes: `kairos devnet` (a directory + 6 daemons on loopback) and
//! the `kairos` CLI as a user runs it.

mod common;
use common::*;

#[test]
fn put_locked_get_then_released_get() {
    let net = Net::start(6, false);
    let (path, data) = random_file(net.dir.path(), "report.bin", 3 * 1024 * 1024 + 17);
    let release = now() + 6;
    let release_text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(release),
    )
    .to_string();
    // The devnet's daemons seal with the drand lock on its local test chain by default.
    let (id, said) = put_with(&net, 0, &path, &release_text, &[]);
    assert_eq!(id.len(), 52, "file id {id:?}");
    assert!(
        said.contains("drand lock, round") && said.contains("TEST chain"),
        "{said}"
    );

    // `info`: the uploader sees the manifest's lock before release; anyone else only the
    // release time. `ls` lists the upload on its node only.
    let json = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let own = json(&net.kairos(0, &["info", &id, "--json"]));
    assert_eq!(own["own"], true);
    assert_eq!(own["release"], release);
    assert_eq!(own["manifest"]["lock"]["kind"], "drand");
    assert_eq!(own["manifest"]["lock"]["test_chain"], true);
    assert!(own["manifest"]["lock"]["round"].as_u64().is_some(), "{own}");
    let other = json(&net.kairos(5, &["info", &id, "--json"]));
    assert_eq!(other["own"], false);
    assert_eq!(other["released"], false);
    assert_eq!(other["release"], release);
    assert!(other.get("manifest").is_none(), "{other}");
    let listed = json(&net.kairos(0, &["ls", "--json"]));
    assert_eq!(listed["uploads"][0]["id"], id.as_str());
    assert_eq!(listed["uploads"][0]["name"], "report.bin");
    let elsewhere = json(&net.kairos(5, &["ls", "--json"]));
    // `check`: every piece of every block held; only the uploader may ask.
    let health = json(&net.kairos(0, &["check", &id, "--json"]));
    assert_eq!(health["weakest"], 6, "{health}");
    let o = net.kairos(5, &["check", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not an upload of this node"),
        "{}",
        stderr(&o)
    );
    // A reader that went away is no failure and no panic.
    for args in [
        &["ls"][..],
        &["ls", "--json"],
        &["status", "--json"],
        &["info", &id],
    ] {
        let o = net.kairos_closed_stdout(0, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(elsewhere["uploads"].as_array().unwrap().len(), 0);

    // Before the release: exit code 3, the message names the release time, no file appears.
    let out = net.dir.path().join("out.bin");
    let o = net.kairos(5, &["get", &id, "--output", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("locked until"),
        "stderr: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&release_text), "stderr: {}", stderr(&o));
    assert!(!out.exists(), "a refused get created the output file");

    wait_until(release);
    let o = net.kairos(5, &["get", &id, "--output", out.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "get failed: {}\n{}",
        stderr(&o),
        net.logs()
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // With m = 2 nodes gone the file still comes back; into a directory it keeps its name.
    net.kill_node(1);
    net.kill_node(2);
    let dl = net.dir.path().join("downloads");
    std::fs::create_dir(&dl).unwrap();
    let o = net.kairos(5, &["get", &id, "--output", dl.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "get with 2 nodes down failed: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(dl.join("report.bin")).unwrap(), data);

    // `check` sees the two holders gone, every block still rebuildable (exit 0).
    let health = json(&net.kairos(0, &["check", &id, "--json"]));
    assert_eq!(health["weakest"], 4, "{health}");
    assert_eq!(
        health["blocks"][0]["unreachable"].as_array().unwrap().len(),
        2
    );
    // A third node gone: more than m pieces of some block are missing → a clear error.
    net.kill_node(3);
    let out3 = net.dir.path().join("out3.bin");
    let o = net.kairos(5, &["get", &id, "--output", out3.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(!out3.exists());
    let err = stderr(&o);
    assert!(
        err.contains("block") || err.contains("pieces"),
        "unclear error: {err}"
    );
    // … and `check` says so, with exit code 1.
    let o = net.kairos(0, &["check", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("cannot be rebuilt"), "{}", stderr(&o));
}

/// Holders are named by identity: a whole devnet restarted on its homes (every process on a
/// new port) still serves every earlier file, drand-locked or not.
#[test]
fn files_survive_a_devnet_restart_on_new_ports() {
    let mut net = Net::start(6, false);
    let (path, data) = random_file(net.dir.path(), "kept.bin", 700 * 1024 + 3);
    let release = now() + 4;
    let release_text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(release),
    )
    .to_string();
    let (drand, _) = put_with(&net, 0, &path, &release_text, &[]);
    let (peer, said) = put_with(&net, 1, &path, &release_text, &["--lock", "peer"]);
    assert!(said.contains("peer lock only"), "{said}");
    let before: Vec<String> = (0..6)
        .map(|i| net.info(&format!("node-{i}"))["addr"].clone())
        .collect();
    // Node records are ordered by their signing second: restart in a later one, as any real
    // restart is.
    wait_until(release);
    net.restart();
    let after: Vec<String> = (0..6)
        .map(|i| net.info(&format!("node-{i}"))["addr"].clone())
        .collect();
    assert!(
        before.iter().zip(&after).all(|(b, a)| b != a),
        "the restart kept some address: {before:?} → {after:?}"
    );
    for (id, name) in [(&drand, "drand.bin"), (&peer, "peer.bin")] {
        let out = net.dir.path().join(name);
        let o = net.kairos(5, &["get", id, "--output", out.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "get {name} after the restart: {}\n{}",
            stderr(&o),
            net.logs()
        );
        assert_eq!(std::fs::read(&out).unwrap(), data);
    }
}

#[test]
fn cli_refuses_bad_input_clearly() {
    let net = Net::start(6, false);
    let (path, _) = random_file(net.dir.path(), "a.bin", 10);
    let o = net.kairos(
        0,
        &[
            "put",
            path.to_str().unwrap(),
            "--release-time",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not in the future"), "{}", stderr(&o));
    let o = net.kairos(0, &["put", "/nonexistent/file", "--release-time", "+1m"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    let o = net.kairos(0, &["get", "not-an-id"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a kairos file id"),
        "{}",
        stderr(&o)
    );
    // A well-formed id nobody published.
    let o = net.kairos(0, &["get", &"a".repeat(52)]);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(3));
    // --json put result is machine-readable.
    let o = net.kairos(
        0,
        &[
            "put",
            path.to_str().unwrap(),
            "--release-time",
            "+1h",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["id"].as_str().unwrap().len(), 52);
    // status works and reports the node's pieces.
    let o = net.kairos(0, &["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
}

#[test]
fn selftest_round_trips() {
    let o = std::process::Command::new(KAIROS)
        .args(["selftest", "--size-mib", "9"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("selftest: OK"));
}
