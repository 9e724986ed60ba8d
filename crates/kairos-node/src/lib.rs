//! The kairos node daemon as a library: the piece store, the peer API, the local API for the
//! CLI, and the put/get engine (`docs/architecture.md`).
//!
//! A node holds an Ed25519 identity (`home/identity.key`, 0600), keeps the pieces others
//! upload to it in `home/node.redb`, serves them back only after their release time, and runs
//! uploads and downloads for its own user, who drives it through `home/kairos.sock`. The APIs
//! are documented in `docs/node-api.md`.
//!
//! Module map:
//! * [`config`] — [`NodeConfig`] and its defaults; [`Clock`] for the time-lock;
//! * `state` — [`Node`](crate::state), the state every task shares; `start` — [`start`],
//!   [`run`], [`NodeHandle`]: lifecycle of the tasks below (on [`kairos_host::Service`]);
//! * `socket` — the 0600 local socket (both APIs are served by [`kairos_net::serve`]);
//! * `peer_api` — what peers may ask (`peer_delete` — an uploader taking a piece back); `admission` — its pure store rules; [`piece`] — the piece
//!   body on the wire;
//! * `store` — the redb tables (`history` — this node's own uploads; `info` — what the
//!   network says about a file; `check` — where an upload's pieces stand); `writer` — the node's ops for the host layer's group-commit
//!   writer ([`kairos_host::writer`]); `sweep` — retention;
//! * `membership` — standing with the directories; `heartbeat` — joining and re-subscribing;
//! * `put` / `placement` / `get` — the engines (`file_keys` — a put's salt, per-file key and
//!   lock; `plan` — what a get needs of a v1 or v2 file, holders resolved; `unlock` — the drand
//!   beacon that opens it; `fetch` — one block of a get; `stream_out` — its verified bytes to
//!   the CLI); `peer_client` — their HTTP client;
//! * [`target`] — where the CLI writes a download (checks, temporary file, atomic rename);
//!   `output` — that file, written and flushed on its own threads;
//! * `local_api` — the daemon side of the CLI's API; [`local_client`] — the CLI side;
//!   [`wire`] — their JSON shapes; [`ops`] — their typed errors and events;
//! * `bench_support` — the piece store measured on its own, for `examples/putget_bench.rs`.
//!
//! Security invariants, kept by the modules named: a piece's bytes leave the node only after
//! its release time by the node's own clock (`peer_api`, `store`); a refused store changes
//! nothing and an accepted one is durable before it is acknowledged, immutable after
//! (`peer_api`, `writer`); no piece id or file name from the network becomes a path (`piece`,
//! `get`); only the daemon's user can reach the local API (`socket`); a download's output
//! appears only once it verified as a whole (`get`, `target`), and never through a link.

mod admission;
mod auditor;
#[doc(hidden)]
pub mod bench_support;
mod check;
mod commits;
pub mod config;
mod error;
mod fetch;
mod file_keys;
mod get;
mod heartbeat;
mod history;
mod info;
mod local_api;
pub mod local_client;
mod membership;
pub mod ops;
mod output;
mod own_file;
mod peer_api;
mod peer_audit;
mod peer_book;
mod peer_client;
mod peer_commit;
mod peer_delete;
mod pending;
pub mod piece;
mod placement;
mod plan;
mod put;
mod repair;
mod revoke;
mod socket;
mod start;
mod state;
mod store;
#[cfg(test)]
mod store_model;
mod stream_out;
mod survey;
mod sweep;
pub mod target;
mod unlock;
pub mod wire;
mod writer;

pub use config::{Chain, Clock, ManualClock, NodeConfig, PeerLimits, SOCKET_FILE};
pub use error::{NodeError, StoreError};
pub use local_client::{LocalClient, LocalError, PutOptions};
pub use peer_api::{InfoResponse, StoreResponse};
pub use start::{run, start, NodeHandle};
pub use store::DB_FILE;
pub use wire::{
    BadPiece, BlockHealth, CheckReport, Event, FileReport, GetResult, LockChoice, LockReport,
    ManifestReport, PutResult, Status, Upload, Uploads,
};
