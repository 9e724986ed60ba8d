//! One test per layer for both server commands: a flag beats its `KAIROS_*` variable, which
//! beats the config file, which beats the default; and unknown keys are refused.
//!
//! Arguments go through the real clap parser, so a flag not given is `None` exactly as in the
//! binary. Tests that need a variable run in a child process (this test binary, re-run with
//! the variable set): setting it here would leak into the tests running in parallel.

use super::{daemon, directory};
use crate::cli::{Cli, Command, DaemonArgs, DirectoryArgs, TransportKind};
use clap::Parser;
use std::path::Path;
use std::time::Duration;

const GIB: u64 = 1 << 30;

fn parse(argv: &[&str]) -> Command {
    Cli::try_parse_from(std::iter::once("kairos").chain(argv.iter().copied()))
        .expect("arguments parse")
        .command
}

/// `kairos daemon --home HOME --directory 127.0.0.1:7700 EXTRA...`
fn daemon_args(home: &Path, extra: &[&str]) -> DaemonArgs {
    let home = home.to_str().unwrap();
    let argv = [
        &["daemon", "--home", home, "--directory", "127.0.0.1:7700"],
        extra,
    ]
    .concat();
    match parse(&argv) {
        Command::Daemon(a) => a,
        other => panic!("parsed as {other:?}"),
    }
}

/// `kairos directory --home HOME EXTRA...`
fn directory_args(home: &Path, extra: &[&str]) -> DirectoryArgs {
    let argv = [&["directory", "--home", home.to_str().unwrap()], extra].concat();
    match parse(&argv) {
        Command::Directory(a) => a,
        other => panic!("parsed as {other:?}"),
    }
}

fn home_with_file(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), text).unwrap();
    dir
}

/// Re-runs the test `name` of this binary in a child process with `vars` set; true in the
/// child, where the caller goes on with its assertions.
fn in_child_with(name: &str, vars: &[(&str, &str)]) -> bool {
    const CHILD: &str = "KAIROS_SETTINGS_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child run of {name} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

const DAEMON_FILE: &str = "quota = \"1GiB\"\nheartbeat = \"7s\"\n[tor]\ntor_timeout = 9\n";

#[test]
fn daemon_default_when_nothing_set() {
    let home = tempfile::tempdir().unwrap();
    let d = daemon::resolve(&daemon_args(home.path(), &[])).unwrap();
    let defaults = kairos_node::NodeConfig::default();
    assert_eq!(d.config.quota, defaults.quota);
    assert_eq!(d.config.heartbeat, defaults.heartbeat);
    assert_eq!(d.config.params, defaults.params);
    assert_eq!(d.transport, TransportKind::Tor);
    assert_eq!(d.tor.tor_timeout, None);
    assert!(!d.join);
}

#[test]
fn daemon_file_beats_default() {
    let home = home_with_file(&format!("transport = \"direct\"\n{DAEMON_FILE}"));
    let d = daemon::resolve(&daemon_args(home.path(), &[])).unwrap();
    assert_eq!(d.config.quota, GIB);
    assert_eq!(d.config.heartbeat, Duration::from_secs(7));
    assert_eq!(d.transport, TransportKind::Direct);
    assert_eq!(d.tor.tor_timeout, Some(9));
    assert_eq!(d.config.directories, ["127.0.0.1:7700"], "the flag's list");
}

#[test]
fn daemon_flag_beats_file() {
    let home = home_with_file(&format!("directories = [\"127.0.0.1:1\"]\n{DAEMON_FILE}"));
    let flags = ["--quota", "2GiB", "--tor-timeout", "3"];
    let d = daemon::resolve(&daemon_args(home.path(), &flags)).unwrap();
    assert_eq!(d.config.quota, 2 * GIB);
    assert_eq!(
        d.config.heartbeat,
        Duration::from_secs(7),
        "unset flags keep the file's"
    );
    assert_eq!(
        d.tor.tor_timeout,
        Some(3),
        "a flag overrides one key of [tor]"
    );
    assert_eq!(
        d.config.directories,
        ["127.0.0.1:7700"],
        "a list is replaced"
    );
}

#[test]
fn daemon_env_beats_file_and_flag_beats_env() {
    let vars = [("KAIROS_QUOTA", "3GiB"), ("KAIROS_TOR_TIMEOUT", "4")];
    if !in_child_with(
        "settings::tests::daemon_env_beats_file_and_flag_beats_env",
        &vars,
    ) {
        return;
    }
    let home = home_with_file(DAEMON_FILE);
    let d = daemon::resolve(&daemon_args(home.path(), &[])).unwrap();
    assert_eq!(d.config.quota, 3 * GIB, "env beats file");
    assert_eq!(d.tor.tor_timeout, Some(4), "env beats file in [tor]");
    assert_eq!(d.config.heartbeat, Duration::from_secs(7));
    let d = daemon::resolve(&daemon_args(home.path(), &["--quota", "2GiB"])).unwrap();
    assert_eq!(d.config.quota, 2 * GIB, "flag beats env");
}

#[test]
fn daemon_refuses_unknown_keys_and_bad_values() {
    for text in [
        "bogus = 1\n",
        "[tor]\ntor_tiemout = 3\n",
        "quota = \"lots\"\n",
    ] {
        let home = home_with_file(text);
        let err = daemon::resolve(&daemon_args(home.path(), &[])).unwrap_err();
        assert!(
            format!("{err:#}").contains("config.toml"),
            "{text}: {err:#}"
        );
    }
    let missing = tempfile::tempdir().unwrap();
    let explicit = missing.path().join("nope.toml");
    let args = daemon_args(missing.path(), &["--config", explicit.to_str().unwrap()]);
    assert!(
        daemon::resolve(&args).is_err(),
        "an explicit file must exist"
    );
}

const DIRECTORY_FILE: &str = "node_ttl = \"2m\"\nmanifest_retention = \"3d\"\n\
allow_loopback_nodes = false\n[limits]\nmax_nodes = 10\n[tor]\ntor_timeout = 5\n";

#[test]
fn directory_default_when_nothing_set() {
    let home = tempfile::tempdir().unwrap();
    let d = directory::resolve(&directory_args(home.path(), &[])).unwrap();
    let defaults = kairos_directory::DirectoryConfig::default();
    assert_eq!(d.config.node_ttl, defaults.node_ttl);
    assert_eq!(d.config.manifest_retention, defaults.manifest_retention);
    assert_eq!(d.config.limits.max_nodes, defaults.limits.max_nodes);
    assert_eq!(d.config.home, home.path());
    assert_eq!(d.transport, TransportKind::Tor);
    assert_eq!(d.listen, None);
    assert_eq!(d.allow_loopback_nodes, None, "the transport decides");
}

#[test]
fn directory_file_beats_default() {
    let home = home_with_file(&format!("transport = \"direct\"\n{DIRECTORY_FILE}"));
    let d = directory::resolve(&directory_args(home.path(), &[])).unwrap();
    assert_eq!(d.transport, TransportKind::Direct);
    assert_eq!(d.config.node_ttl, Duration::from_secs(120));
    assert_eq!(d.config.manifest_retention, Duration::from_secs(3 * 86400));
    assert_eq!(d.config.limits.max_nodes, 10);
    assert_eq!(
        d.allow_loopback_nodes,
        Some(false),
        "the file's choice is kept"
    );
    assert_eq!(d.tor.tor_timeout, Some(5));
}

#[test]
fn directory_flag_beats_file() {
    let home = home_with_file(DIRECTORY_FILE);
    let key = kairos_proto::Identity::generate().public();
    let sibling = format!("{key}@127.0.0.1:7702");
    let flags = [
        "--node-ttl",
        "1m",
        "--retention",
        "1d",
        "--allow-loopback-nodes",
        "true",
        "--listen",
        "127.0.0.2:0",
        "--sibling",
        &sibling,
        "--tor-timeout",
        "6",
    ];
    let d = directory::resolve(&directory_args(home.path(), &flags)).unwrap();
    assert_eq!(d.config.node_ttl, Duration::from_secs(60));
    assert_eq!(d.config.manifest_retention, Duration::from_secs(86400));
    assert_eq!(d.allow_loopback_nodes, Some(true));
    assert_eq!(d.listen, Some("127.0.0.2:0".parse().unwrap()));
    assert_eq!(d.config.siblings[0].key, key);
    assert_eq!(d.tor.tor_timeout, Some(6));
    assert_eq!(
        d.config.limits.max_nodes, 10,
        "keys without a flag keep the file's"
    );
}

#[test]
fn directory_env_beats_file_and_flag_beats_env() {
    let vars = [
        ("KAIROS_NODE_TTL", "3m"),
        ("KAIROS_TRANSPORT", "direct"),
        ("KAIROS_TOR_TIMEOUT", "4"),
    ];
    if !in_child_with(
        "settings::tests::directory_env_beats_file_and_flag_beats_env",
        &vars,
    ) {
        return;
    }
    let home = home_with_file(&format!("transport = \"tor\"\n{DIRECTORY_FILE}"));
    let d = directory::resolve(&directory_args(home.path(), &[])).unwrap();
    assert_eq!(
        d.config.node_ttl,
        Duration::from_secs(180),
        "env beats file"
    );
    assert_eq!(d.transport, TransportKind::Direct, "env beats file");
    assert_eq!(d.tor.tor_timeout, Some(4), "env beats file in [tor]");
    assert_eq!(d.config.manifest_retention, Duration::from_secs(3 * 86400));
    let d = directory::resolve(&directory_args(home.path(), &["--node-ttl", "1m"])).unwrap();
    assert_eq!(d.config.node_ttl, Duration::from_secs(60), "flag beats env");
}

#[test]
fn directory_refuses_unknown_keys_and_bad_values() {
    for text in [
        "node_tll = \"5m\"\n",
        "[limits]\nmax_nodse = 1\n",
        "[tor]\ntor_tiemout = 3\n",
        "transport = \"carrier-pigeon\"\n",
        "node_ttl = \"soon\"\n",
        "siblings = [\"nokey\"]\n",
    ] {
        let home = home_with_file(text);
        let err = directory::resolve(&directory_args(home.path(), &[])).unwrap_err();
        assert!(
            format!("{err:#}").contains("config.toml"),
            "{text}: {err:#}"
        );
    }
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for argv in [
        &["daemon", "--quota", "lots"][..],
        &["daemon", "--coding", "4"],
        &["directory", "--node-ttl", "soon"],
        &["directory", "--sibling", "nokey"],
    ] {
        let err =
            Cli::try_parse_from(std::iter::once("kairos").chain(argv.iter().copied())).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{argv:?}");
        assert!(err.to_string().contains(argv[1]), "{argv:?}: {err}");
    }
}
