//! Status and errors as a user meets them, over a real devnet: exit codes, each cause said
//! once, `--json` errors on stdout with a stable code, human sizes, `start` failing when no
//! directory answers.

mod common;
use common::*;

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

#[test]
fn errors_are_clear_once_and_machine_readable() {
    let net = Net::start(6, false);
    // A malformed id is a usage error (exit 2), as text or as JSON on stdout.
    let o = net.kairos(0, &["get", "not-an-id"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a kairos file id"),
        "{}",
        stderr(&o)
    );
    let o = net.kairos(0, &["get", "not-an-id", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["error"], "usage");
    // A locked file with --json: exit 3 and code `locked`.
    let (path, _) = random_file(net.dir.path(), "a.bin", 1000);
    let id = put(&net, 0, &path, "+1h");
    let out = net.dir.path().join("out.bin");
    let o = net.kairos(1, &["get", &id, "-o", out.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["error"], "locked");
    assert!(v["message"].as_str().unwrap().contains(" (in "), "{v}");
    // A bad release time: a usage error with a suggestion, before asking the daemon.
    let o = net.kairos(0, &["put", path.to_str().unwrap(), "-r", "2h"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean +2h"), "{}", stderr(&o));
    let o = net.kairos(0, &["put", path.to_str().unwrap(), "-r", "+10000y"]);
    assert!(stderr(&o).contains("year 9999"), "{}", stderr(&o));
    // Human sizes in status.
    let o = net.kairos(0, &["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("GiB used") || stdout(&o).contains("GiB of"),
        "{}",
        stdout(&o)
    );
    // No daemon: the cause is said once.
    let empty = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(KAIROS)
        .args(["status"])
        .env("KAIROS_HOME", empty.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&o)
    );
    // No directory reachable: `start` fails.
    net.kill("directory");
    let o = net.kairos(0, &["start"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("not joined"), "{}", stderr(&o));
    // The hint fits the transport: a direct devnet has no Tor to check.
    assert!(
        stderr(&o).contains("the directories are running") && !stderr(&o).contains("Tor"),
        "{}",
        stderr(&o)
    );
}

/// A directory refuses a node's home (it would serve with the node's identity key), found
/// through KAIROS_DIRECTORY_HOME; a node refuses a directory's home.
#[test]
fn homes_are_per_role() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("role"), "node\n").unwrap();
    let o = std::process::Command::new(KAIROS)
        .args([
            "directory",
            "--transport",
            "direct",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("KAIROS_DIRECTORY_HOME", home.path())
        .env_remove("KAIROS_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("home of a node"), "{}", stderr(&o));
    assert!(!home.path().join("identity.key").exists());

    let dir_home = tempfile::tempdir().unwrap();
    std::fs::write(dir_home.path().join("role"), "directory\n").unwrap();
    let o = std::process::Command::new(KAIROS)
        .args([
            "daemon",
            "--transport",
            "direct",
            "--directory",
            "127.0.0.1:9",
            "--home",
        ])
        .arg(dir_home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("home of a directory"), "{}", stderr(&o));
}
