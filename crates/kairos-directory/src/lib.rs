//! The kairos directory ("bootstrap") server. Its client is the `kairos-directory-client`
//! crate (re-exported here as [`client`] and [`wire`]).
//!
//! A directory is the network's phone book and manifest store: nodes subscribe with signed
//! records and heartbeat; uploaders publish signed manifests, which the directory withholds
//! until their release time except from their uploader; sibling directories pull each other's
//! new records incrementally and re-verify everything; expired records and manifests are swept.
//! It never sees file content. The HTTP API is documented in `docs/directory-api.md`.
//!
//! Module map:
//! * [`config`] — [`DirectoryConfig`], [`Sibling`], limits and their defaults ([`Clock`] comes
//!   from `kairos-proto`); [`ConfigFile`] — the TOML file form of the same settings;
//! * `server` — [`start`], [`run`], [`DirectoryHandle`]: start-up and shutdown of the tasks
//!   below, under one [`kairos_host::Service`]; `state` — `App`, the state those tasks share;
//! * `routes` — the handlers (served by [`kairos_net::serve`], with bounded bodies and the
//!   per-connection rate limit of [`kairos_net::request`]), `placements` — the placement
//!   routes; `handler` — what handlers share (ids, bodies, request signers); `api_error` — the
//!   error answers they share; `validate` — admission rules, pure functions of (input, now,
//!   settings);
//! * `store` — the redb tables (opened with [`kairos_host::open_db`]); `writer` — the
//!   directory's ops and how a batch is applied, run by the host's group-commit writer
//!   ([`kairos_host::writer`]); `nodes` — the in-memory index of live nodes;
//! * `federation` — the sync feed and the sibling pullers; `sweep` — expiry;
//! * `beacons` — the drand beacon relay (cache in `store`, upstream fetches through the
//!   transport, one flight per missing round); `beacon_routes` — its route;
//! * `error` — [`DirectoryError`] (start-up); storage fails with the host layer's
//!   [`StoreError`];
//! * [`client`], [`wire`] — re-exported from `kairos-directory-client`: [`DirectoryClient`],
//!   used by nodes and the CLI, and the JSON bodies both sides share;
//! * `fuzz_api` (hidden) — the pure steps that `fuzz/` feeds with arbitrary input.
//!
//! Module graph (`a → b`: `a` imports `b`). It has no cycles: shared state sits apart from
//! start-up, which nothing imports, and errors import nothing back.
//!
//! ```text
//! server      → beacons, config, error, federation, nodes, routes, state, store, sweep, writer
//! routes      → api_error, beacon_routes, federation, handler, nodes, placements, state, store,
//!               validate, writer
//! placements  → api_error, handler, state, store, validate, writer
//! handler     → api_error, state, writer
//! beacon_routes → beacons, state
//! beacons     → config, store, writer
//! federation  → api_error, config, state, store, validate, writer
//! sweep       → state, store, writer
//! state       → beacons, config, nodes, store, validate, writer
//! writer      → nodes, store
//! config_file → config
//! fuzz_api    → config, federation, validate
//! validate    → config
//! api_error, config, error, nodes, store → (nothing)
//! ```
//!
//! Security invariants, kept by the modules named: everything stored was verified by this
//! directory itself (`validate`, `federation`, `beacons`: a beacon verified against its
//! chain's key); a manifest or placement leaves before its release only to a request signed by
//! its uploader or to a signed sibling pull (`routes`, `placements`, `federation`); a
//! refused request changes nothing stored (`routes`); no network input can panic the server or
//! make it buffer more than its limits (`routes` through [`kairos_net::request`],
//! [`kairos_net::serve`]).

mod api_error;
mod beacon_routes;
mod beacons;
pub mod config;
mod config_file;
mod error;
mod federation;
#[doc(hidden)]
pub mod fuzz_api;
mod handler;
mod nodes;
mod placements;
mod reach;
mod routes;
mod server;
mod state;
mod store;
mod sweep;
mod tombstones;
mod validate;
mod writer;

pub use config::{
    DirectoryConfig, Limits, RateLimit, RelayedChain, Sibling, TestChainSource,
    DRAND_PUBLIC_UPSTREAMS,
};
pub use config_file::{ChainInfoValue, ConfigFile, LimitsFile, RateLimitFile, TestChainFile};
pub use error::{DirectoryError, StoreError};
pub use routes::{DEFAULT_LIST_COUNT, HEADER_RELEASE};
pub use server::{run, start, start_on, DirectoryHandle};
pub use store::DB_FILE;

// The client side lives in `kairos-directory-client`; re-exported so server users (tests,
// the CLI) need one import path.
pub use kairos_directory_client::{client, wire, ClientError, DirectoryClient};
pub use kairos_proto::clock::{Clock, ManualClock};
