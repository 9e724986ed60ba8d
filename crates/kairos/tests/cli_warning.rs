//! The loud "direct transport is not anonymous" warning, counted in real processes' stderr:
//! exactly once per process start — `kairos devnet` says it once on its own terminal (its
//! children write to their own log files, not to it), and each child (the directory, every
//! daemon) says it once in its log, never twice through both the log and a plain line.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

const WARNING: &str = "DIRECT TRANSPORT";

/// A devnet child process stopped (SIGTERM, then SIGKILL) also when the test fails.
struct Devnet(Option<Child>);

impl Devnet {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// SIGTERM, then everything it wrote to stderr once it exited.
    fn stop(mut self) -> String {
        let mut child = self.0.take().expect("running");
        terminate(&child);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(child.wait().unwrap().success(), "devnet failed: {err}");
        err
    }
}

fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            terminate(&child);
            let _ = child.wait();
        }
    }
}

#[test]
fn direct_warning_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(KAIROS)
        .args(["devnet", "--nodes", "3", "--coding", "2+1", "--home"])
        .arg(dir.path())
        // The default log level: a warning event is logged to stderr.
        .env_remove("KAIROS_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut net = Devnet(Some(child));
    let mut line = String::new();
    BufReader::new(net.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let err = net.stop();
    assert_eq!(err.matches(WARNING).count(), 1, "devnet's stderr:\n{err}");
    for name in ["directory", "node-0", "node-1", "node-2"] {
        let log = std::fs::read_to_string(dir.path().join(format!("logs/{name}.log"))).unwrap();
        assert_eq!(log.matches(WARNING).count(), 1, "{name}'s log:\n{log}");
    }
}

#[test]
fn direct_warning_also_with_warnings_not_logged() {
    // `--log error` hides warning events: the warning is then a plain line, still once.
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(KAIROS)
        .args(["--log", "error", "devnet", "--nodes", "3"])
        .args(["--coding", "2+1", "--home"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut net = Devnet(Some(child));
    let mut line = String::new();
    BufReader::new(net.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let err = net.stop();
    assert_eq!(
        err.matches(&format!("WARNING: {WARNING}")).count(),
        1,
        "devnet's stderr:\n{err}"
    );
}
