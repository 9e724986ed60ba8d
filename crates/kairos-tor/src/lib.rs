//! kairos-tor: everything that talks to the real `tor` binary.
//!
//! * [`control`] — a strict client for Tor's control protocol (PROTOCOLINFO, SAFECOOKIE
//!   authentication, GETINFO, SETCONF, events, ADD_ONION, …).
//! * [`launch`] — starts the system `tor` as an owned child process ([`TorProcess`]) or attaches
//!   to a running one, waits for bootstrap, and exposes its SOCKS port.
//! * [`onion`] — publishes a kairos [`kairos_proto::Identity`] as an onion service and checks
//!   that tor's address is the one kairos derives from the key.
//! * [`socks`] — a minimal SOCKS5 client (hostnames resolved by tor, per-stream isolation).
//! * [`testnet`] — a private Tor network on 127.0.0.1 for tests and `kairos devnet --tor`.
//!
//! Invariants kept crate-wide: every socket this crate opens or asks tor to open is on
//! 127.0.0.1; every tor process it starts is killed when its handle is dropped and also exits
//! by itself when this process dies (`__OwningControllerProcess` + `TAKEOWNERSHIP`).
#![forbid(unsafe_code)]

pub mod control;
pub mod launch;
pub mod onion;
pub mod reply;
pub mod socks;
pub mod testnet;

pub use control::{Control, ControlAuth, ControlError};
pub use launch::{LaunchConfig, TorError, TorProcess};
pub use onion::publish_onion;
pub use testnet::TestNetwork;
