//! Test harness: a `kairos devnet` child process and helpers to run the `kairos` CLI against it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KAIROS: &str = env!("CARGO_BIN_EXE_kairos");

/// A running devnet; stopped (SIGTERM, then SIGKILL) when dropped, also when a test panics.
pub struct Net {
    pub dir: tempfile::TempDir,
    child: Child,
    pub nodes: usize,
    /// The devnet's arguments but `--home`, for [`Net::restart`].
    args: Vec<String>,
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    // Called from Drop, possibly while unwinding: never panic here. Linux pids fit in an i32.
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

impl Net {
    pub fn start(nodes: usize, tor: bool) -> Net {
        Self::start_with(nodes, tor, None, &[])
    }

    pub fn start_with(nodes: usize, tor: bool, coding: Option<&str>, daemon_args: &[&str]) -> Net {
        let dir = tempfile::Builder::new()
            .prefix("kairos-test-")
            .tempdir()
            .unwrap();
        let mut args: Vec<String> = vec!["devnet".into(), "--nodes".into(), nodes.to_string()];
        if tor {
            args.push("--tor".into());
        }
        if let Some(c) = coding {
            args.extend(["--coding".into(), c.into()]);
        }
        if !daemon_args.is_empty() {
            args.push("--".into());
            args.extend(daemon_args.iter().map(|a| a.to_string()));
        }
        let child = spawn_devnet(dir.path(), &args);
        let mut net = Net {
            dir,
            child,
            nodes,
            args,
        };
        net.await_ready();
        net
    }

    /// Stops the whole devnet and starts it again on the same homes (every process on new
    /// ports; identities, stores and the test chain kept).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_devnet(self.dir.path(), &self.args);
        self.await_ready();
    }

    /// The devnet prints `ready` once every process is serving and joined.
    fn await_ready(&mut self) {
        let stdout = self.child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let logs = self.logs();
            panic!("devnet did not become ready (got {line:?}); logs:\n{logs}");
        }
    }

    /// SIGTERM to the devnet (it stops its children), SIGKILL after 30 s.
    fn stop(&mut self) {
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    /// The `key=value` lines a node (or `directory`) wrote when it became ready.
    pub fn info(&self, name: &str) -> HashMap<String, String> {
        std::fs::read_to_string(self.dir.path().join(name).join("ready"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.info(name)["pid"].parse().unwrap()
    }

    /// Kills a node (SIGKILL: no goodbye) and waits until it is gone.
    pub fn kill_node(&self, i: usize) {
        self.kill(&format!("node-{i}"));
    }

    /// Kills a process of the network (`directory`, `node-3`) and waits until it is gone.
    pub fn kill(&self, name: &str) {
        let pid = self.pid(name);
        signal(pid, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            assert!(Instant::now() < deadline, "{name} did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("logs")) {
            for e in rd.flatten() {
                out += &format!(
                    "--- {}\n{}\n",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
        }
        out
    }

    /// Runs `kairos ARGS` as a client of node `i`.
    pub fn kairos(&self, i: usize, args: &[&str]) -> Output {
        kairos_at(&self.home(i), args)
    }
}

impl Net {
    /// Runs `kairos ARGS` as a client of node `i` whose standard output is a pipe nobody reads
    /// (closed before the command writes), like `kairos ls | head -0`.
    pub fn kairos_closed_stdout(&self, i: usize, args: &[&str]) -> Output {
        let mut child = Command::new(KAIROS)
            .args(args)
            .env("KAIROS_HOME", self.home(i))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed at once: the command asks its daemon first, so it writes only later.
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    }

    /// Runs `kairos ARGS` as a client of node `i` with `input` on its standard input.
    pub fn kairos_stdin(&self, i: usize, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(KAIROS)
            .args(args)
            .env("KAIROS_HOME", self.home(i))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kairos <args> --home <home>` with stdout piped (for `ready`).
fn spawn_devnet(home: &Path, args: &[String]) -> Child {
    // `--home` goes before a `--` that passes daemon arguments.
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    Command::new(KAIROS)
        .args(&args[..split])
        .arg("--home")
        .arg(home)
        .args(&args[split..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Random bytes of `len`.
pub fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut data);
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// `kairos put` → the file id (last line of stdout), asserting success.
pub fn put(net: &Net, node: usize, path: &Path, release: &str) -> String {
    put_with(net, node, path, release, &[]).0
}

/// `kairos put … extra` → the file id and what put said on stderr, asserting success.
pub fn put_with(
    net: &Net,
    node: usize,
    path: &Path,
    release: &str,
    extra: &[&str],
) -> (String, String) {
    let mut args = vec!["put", path.to_str().unwrap(), "--release-time", release];
    args.extend(extra);
    let o = net.kairos(node, &args);
    assert!(
        o.status.success(),
        "put failed: {}\n{}",
        stderr(&o),
        net.logs()
    );
    let id = stdout(&o)
        .lines()
        .last()
        .expect("put printed the file id")
        .trim()
        .to_owned();
    (id, stderr(&o))
}

/// Sleeps until the Unix time `t` has passed (time-lock tests use short real delays).
pub fn wait_until(t: u64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now > t {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs `kairos ARGS` as a client of the daemon whose home is `home`.
pub fn kairos_at(home: &Path, args: &[&str]) -> Output {
    Command::new(KAIROS)
        .args(args)
        .env("KAIROS_HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
