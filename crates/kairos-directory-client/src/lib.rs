//! The client side of the kairos directory API: [`DirectoryClient`], its [`ClientError`], and
//! the JSON bodies ([`wire`]) that the client and the server (`kairos-directory`) share.
//!
//! This crate exists so that nodes and the CLI can talk to directories without linking the
//! server (its database, routes and federation). The HTTP API is documented in
//! `docs/directory-api.md`.
//!
//! Module map:
//! * [`client`] — [`DirectoryClient`]: tries the configured directories in random order, and
//!   verifies everything they return (nothing a directory sends is trusted);
//! * `lock_and_placement` — the calls of a version 2 download: the newest placement record
//!   over every directory, and verified drand beacons from the directories' relay;
//! * [`wire`] — the JSON request/response bodies, one definition for both sides.
//!
//! Dependency rule: this crate depends on `kairos-proto`, `kairos-lock` (pure) and `kairos-net` only (no storage, no
//! server); `kairos-directory` depends on it for [`wire`], never the other way round.

pub mod client;
mod lock_and_placement;
pub mod wire;

pub use client::{ClientError, DirectoryClient};
pub use kairos_proto::clock::{Clock, ManualClock};
