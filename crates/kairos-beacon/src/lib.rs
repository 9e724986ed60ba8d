//! A local drand: the HTTP beacon server of a kairos test chain ([`kairos_lock::TestChain`]),
//! for `kairos devnet`, `kairos demo` and tests. Directories configured with the test chain
//! use its URL as the chain's upstream.
//!
//! It serves drand's HTTP API (v1) for its one chain:
//! * `GET /info` and `GET /{chain hash}/info` — the chain info JSON;
//! * `GET /{chain hash}/public/{round}` — the beacon JSON of `round`, signed on request, but
//!   only once the round's time has come by the server's [`Clock`]; before that
//!   `425 not_yet` with `Retry-After` (seconds until the round's time), like drand;
//! * `GET /{chain hash}/public/latest` — the newest round whose time has come.
//!
//! Other chains are `404 unknown_chain`, malformed rounds `400 bad_round`.
//!
//! Why a crate of its own: `kairos-lock` stays pure (no sockets, no files, no clock), and the
//! directory should not carry a signing server; the CLI (devnet, demo), the directory's tests
//! and the node's tests can all start this one.
//!
//! Invariants: a round is never signed before its time (by the given clock); the test chain's
//! secret is read from and written to its file only with mode 0600 ([`load_or_create`]) and
//! never logged; every start says loudly that this is a test chain, not drand.
//!
//! Modules: `routes` — the router; `server` — [`start`] and [`BeaconServer`]; `file` — the
//! secret file.

mod file;
mod routes;
mod server;

pub use file::{load_or_create, FileError};
pub use kairos_proto::clock::Clock;
pub use routes::router;
pub use server::{start, BeaconServer};
