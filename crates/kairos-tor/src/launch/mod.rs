//! Starting the system `tor` as an owned child process, or attaching to a running one.
//!
//! * [`config`] — [`LaunchConfig`]: what to launch and how long to wait;
//! * [`binary`] — finding `tor` and its helper programs on this system;
//! * [`torrc`] — the torrc we write (complete on its own) and its quoting;
//! * [`spawn`] — starting tor on a torrc and taking ownership of it over the control port
//!   ([`spawn_tor`], [`SpawnedTor`]); also the building block of `kairos-tor-testnet`;
//! * `log_tail.rs` — the last lines tor printed, for error messages;
//! * `bootstrap.rs` — waiting for bootstrap, with progress reports;
//! * [`process`] — [`TorProcess`]: the launched or attached tor the rest of kairos uses.
//!
//! Invariants:
//! * A launched tor runs with its own DataDirectory, binds its control and SOCKS ports to
//!   127.0.0.1 on ports the kernel picks (`auto`), and is told our PID
//!   (`__OwningControllerProcess`) before we even connect; once connected we send
//!   `TAKEOWNERSHIP`, so tor exits as soon as our control connection closes — including when
//!   this process crashes.
//! * [`TorProcess`] kills its child on drop. We keep the child's PID ourselves (tor deletes its
//!   own PidFile as soon as a clean exit starts).
//! * The torrc we write is complete on its own: `--defaults-torrc` points at an empty file in
//!   the DataDirectory, so no system-wide torrc can change the behaviour.
//! * Errors say what to do: a missing binary names the Debian package, an early exit or a
//!   bootstrap timeout carries the tail of tor's log.

pub mod binary;
mod bootstrap;
pub mod config;
mod log_tail;
pub mod process;
pub mod spawn;
pub mod torrc;

pub use crate::error::TorError;
pub use binary::{find_tool, find_tor};
pub use config::{LaunchConfig, ProgressFn, DEFAULT_BOOTSTRAP_TIMEOUT};
pub use process::{socks_proxy_url, Starting, TorProcess};
pub use spawn::{prepare_dir, spawn_tor, SpawnedTor};
pub use torrc::torrc_quote;
