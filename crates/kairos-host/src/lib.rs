//! The host layer: what every kairos server (the directory and the node daemon) needs around
//! its own logic, written once.
//!
//! * [`db`] — one storage error type ([`StoreError`]) and [`open_db`]: open or create a redb
//!   file, refuse one already open in another process, check or stamp the schema version, and
//!   create the tables, all in the first transaction;
//! * [`writer`] — the group-commit writer: one OS thread owns every write transaction and
//!   commits queued operations in batches, answering each caller only once its change is
//!   durable. A store plugs in by implementing [`writer::Apply`];
//! * [`service`] — the lifecycle of a server's tasks: one cancellation token every task
//!   watches, one tracker that shutdown waits on.
//!
//! Nothing here knows about pieces, manifests or the network; the node and directory crates
//! depend on this one, never the other way round.

pub mod db;
pub mod service;
pub mod writer;

pub use db::{open_db, StoreError};
pub use service::Service;
pub use writer::{Apply, BatchLimits, Writer};
