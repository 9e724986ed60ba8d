//! The kairos directory ("bootstrap") server and its client.
//!
//! A directory is the network's phone book and manifest store (DESIGN.md "Directories"): nodes
//! subscribe with signed records and heartbeat; uploaders publish signed manifests, which the
//! directory withholds until their release time except from their uploader; sibling
//! directories pull each other's new records incrementally and re-verify everything; expired
//! records and manifests are swept. It never sees file content. The HTTP API is documented in
//! `docs/directory-api.md`.
//!
//! Module map:
//! * [`config`] — [`DirectoryConfig`], [`Sibling`], [`Clock`], limits and their defaults;
//!   [`ConfigFile`] — the TOML file form of the same settings;
//! * `server` — [`start`], [`run`], [`DirectoryHandle`]: lifecycle of the tasks below;
//! * `routes` — the handlers (served by [`kairos_net::serve`], with bounded bodies and the
//!   per-connection rate limit of [`kairos_net::request`]); `validate` — admission rules;
//! * `store` — the redb tables; `writer` — the group-commit writer thread; `nodes` — the
//!   in-memory index of live nodes;
//! * `federation` — the sync feed and the sibling pullers; `sweep` — expiry;
//! * [`client`] — [`DirectoryClient`], used by nodes and the CLI; [`wire`] — JSON bodies;
//! * `fuzz_api` (hidden) — the pure steps that `fuzz/` feeds with arbitrary input.
//!
//! Security invariants, kept by the modules named: everything stored was verified by this
//! directory itself (`validate`, `federation`); a manifest leaves before its release only to a
//! request signed by its uploader or to a signed sibling pull (`routes`, `federation`); a
//! refused request changes nothing stored (`routes`); no network input can panic the server or
//! make it buffer more than its limits (`routes` through [`kairos_net::request`],
//! [`kairos_net::serve`]).

pub mod client;
pub mod config;
mod config_file;
mod error;
mod federation;
#[doc(hidden)]
pub mod fuzz_api;
mod nodes;
mod routes;
mod server;
mod store;
mod sweep;
mod validate;
pub mod wire;
mod writer;

pub use client::{ClientError, DirectoryClient};
pub use config::{Clock, DirectoryConfig, Limits, ManualClock, RateLimit, Sibling};
pub use config_file::{ConfigFile, LimitsFile, RateLimitFile};
pub use error::{DirectoryError, StoreError};
pub use routes::{DEFAULT_LIST_COUNT, HEADER_RELEASE};
pub use server::{run, start, start_on, DirectoryHandle};
pub use store::DB_FILE;
