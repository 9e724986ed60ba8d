//! kairos-tor: everything that talks to the real `tor` binary.
//!
//! * [`control`] — a strict client for Tor's control protocol (PROTOCOLINFO, SAFECOOKIE
//!   authentication, GETINFO, SETCONF, events, ADD_ONION, …).
//! * [`launch`] — starts the system `tor` as an owned child process ([`TorProcess`]) or attaches
//!   to a running one, waits for bootstrap, and exposes its SOCKS port.
//! * [`onion`] — publishes a kairos [`kairos_proto::Identity`] as an onion service and checks
//!   that tor's address is the one kairos derives from the key.
//! * [`socks`] — a minimal SOCKS5 client (hostnames resolved by tor, per-stream isolation).
//! * [`reply`] — the strict parser for control-port replies and their `KEY=VALUE` grammar.
//! * [`error`] — [`ControlError`] and [`TorError`].
//!
//! The private Tor network used by tests, `kairos devnet --tor` and `kairos demo --tor` is
//! not part of this library: it lives in the `kairos-tor-testnet` crate, built on
//! [`launch::spawn_tor`].
//!
//! Invariants kept crate-wide: every socket this crate opens or asks tor to open is on
//! 127.0.0.1; every tor process it starts is killed when its handle is dropped and also exits
//! by itself when this process dies (`__OwningControllerProcess` + `TAKEOWNERSHIP`).
//!
//! ```no_run
//! # async fn demo(identity: kairos_proto::Identity, kairos_home: std::path::PathBuf) -> Result<(), kairos_tor::TorError> {
//! use kairos_tor::{LaunchConfig, TorProcess};
//! use std::time::Duration;
//! // Start the system tor with its state in the kairos home, report bootstrap progress.
//! let mut tor = TorProcess::launch(
//!     LaunchConfig::new(kairos_home.join("tor"))
//!         .on_progress(|s| eprintln!("tor {}%: {}", s.progress, s.summary)),
//! )
//! .await?;
//! // Publish the node's API (listening on 127.0.0.1:8080) as <its key>.onion:80.
//! let host = kairos_tor::onion::publish_onion_and_wait(
//!     tor.control(), &identity, 80, "127.0.0.1:8080".parse().unwrap(), Duration::from_secs(120),
//! ).await?;
//! // Outgoing HTTP goes through tor, one isolated circuit per worker.
//! let proxy = tor.socks_proxy_url("worker-1"); // socks5h://worker-1:x@127.0.0.1:<port>
//! # let _ = (host, proxy);
//! # Ok(()) }
//! ```

pub mod control;
pub mod error;
pub mod launch;
pub mod onion;
pub mod reply;
pub mod socks;

pub use control::{Control, ControlAuth};
pub use error::{ControlError, TorError};
pub use launch::{LaunchConfig, Starting, TorProcess};
pub use onion::publish_onion;
